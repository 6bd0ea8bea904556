-- Mentions: whom a message addresses, as its JSON says ({"users": [...], "room": bool}, NULL
-- for no one), on the message and on each version its edits replaced.
ALTER TABLE messages ADD COLUMN mentions TEXT;
ALTER TABLE message_edits ADD COLUMN mentions TEXT;

-- Each message that addresses someone, filed under each user it names, or under the room's
-- key (the nil id) alone when it addresses the room: a reader's mentions after a position are
-- a range of this key, joined to the live messages others wrote.
CREATE TABLE mentions (
    thread_id BLOB NOT NULL,
    user_id BLOB NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (thread_id, user_id, seq)
) WITHOUT ROWID;
