-- Mentions: whom a message addresses, as its JSON says ({"users": [...], "room": bool}, NULL
-- for no one), on the message and on each version its edits replaced.
ALTER TABLE messages ADD COLUMN mentions text;
ALTER TABLE message_edits ADD COLUMN mentions text;

-- Each live message that addresses someone, filed under each user it names, or under the
-- room's key (the nil id) alone when it addresses the room, with its author, id and root
-- beside the key: a reader's mentions after a position are one index-only range of this key
-- (others' messages, or a conversation's), and their newest are chosen by id from the index
-- before a message is read. Creates file the rows, edits refile them, a delete removes them,
-- each in its own statement and by the primary key (the keys a message's `mentions` names), so
-- a mention costs a create one row and one index entry. Keyed by `thread_id` first, as every
-- table is.
CREATE TABLE mentions (
    thread_id uuid NOT NULL,
    user_id uuid NOT NULL,
    seq bigint NOT NULL,
    author uuid NOT NULL,
    id uuid NOT NULL,
    root_id uuid,
    PRIMARY KEY (thread_id, user_id, seq) INCLUDE (author, id, root_id)
);
