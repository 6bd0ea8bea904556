-- Search: each live message's text as search compares it (`search_fold`, the service's own
-- folding: lower case, every run of white space one space) in an FTS5 index of its trigrams,
-- so a term of three characters or more is found anywhere in a word through the index. The
-- triggers keep it in the transaction of each write that creates, edits or deletes a
-- message; `search_fold` is a function every connection of the store registers, so a write
-- to `messages` from another program (the sqlite3 shell) fails rather than leave the index
-- behind.

-- A message of the index by its thread and seq (the messages table has no rowid).
CREATE TABLE message_text_ids (
    doc INTEGER PRIMARY KEY,
    thread_id BLOB NOT NULL,
    seq INTEGER NOT NULL,
    UNIQUE (thread_id, seq)
);

-- The trigrams alone: no copy of the text (contentless; a row can still be deleted) and no
-- positions (detail=none), so a write adds the fewest pages. A query is then a set of
-- trigrams, not their order: the candidates it gives are checked against the text by the
-- search's own rule.
CREATE VIRTUAL TABLE message_text USING fts5(
    text, tokenize = 'trigram case_sensitive 1', content = '', contentless_delete = 1,
    detail = none
);

INSERT INTO message_text_ids (thread_id, seq)
SELECT thread_id, seq FROM messages WHERE deleted_at IS NULL;
INSERT INTO message_text (rowid, text)
SELECT i.doc, search_fold(m.content)
FROM message_text_ids i JOIN messages m ON m.thread_id = i.thread_id AND m.seq = i.seq;

CREATE TRIGGER message_text_created AFTER INSERT ON messages WHEN new.deleted_at IS NULL
BEGIN
    INSERT INTO message_text_ids (thread_id, seq) VALUES (new.thread_id, new.seq);
    INSERT INTO message_text (rowid, text) VALUES (last_insert_rowid(), search_fold(new.content));
END;

CREATE TRIGGER message_text_changed AFTER UPDATE OF content, deleted_at ON messages
BEGIN
    DELETE FROM message_text WHERE rowid =
        (SELECT doc FROM message_text_ids WHERE thread_id = old.thread_id AND seq = old.seq);
    DELETE FROM message_text_ids WHERE thread_id = old.thread_id AND seq = old.seq;
    INSERT INTO message_text_ids (thread_id, seq)
    SELECT new.thread_id, new.seq WHERE new.deleted_at IS NULL;
    INSERT INTO message_text (rowid, text)
    SELECT last_insert_rowid(), search_fold(new.content) WHERE new.deleted_at IS NULL;
END;
