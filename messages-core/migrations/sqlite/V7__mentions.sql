-- Mentions: whom a message addresses, as its JSON says ({"users": [...], "room": bool}, NULL
-- for no one), on the message and on each version its edits replaced.
ALTER TABLE messages ADD COLUMN mentions TEXT;
ALTER TABLE message_edits ADD COLUMN mentions TEXT;

-- Each live message that addresses someone, filed under each user it names, or under the
-- room's key (the nil id) alone when it addresses the room, with its author and id: a reader's
-- mentions after a position are one range of this key. Creates file the rows, edits
-- refile them, a delete removes them (by `mentions_by_seq`).
CREATE TABLE mentions (
    thread_id BLOB NOT NULL,
    user_id BLOB NOT NULL,
    seq INTEGER NOT NULL,
    author BLOB NOT NULL,
    id BLOB NOT NULL,
    PRIMARY KEY (thread_id, user_id, seq)
) WITHOUT ROWID;
CREATE INDEX mentions_by_seq ON mentions (thread_id, seq);
