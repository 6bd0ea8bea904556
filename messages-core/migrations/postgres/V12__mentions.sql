-- Mentions: whom a message addresses, as its JSON says ({"users": [...], "room": bool}, NULL
-- for no one), on the message and on each version its edits replaced.
ALTER TABLE messages ADD COLUMN mentions text;
ALTER TABLE message_edits ADD COLUMN mentions text;

-- Each message that addresses someone, filed under each user it names, or under the room's
-- key (the nil id) alone when it addresses the room: a reader's mentions after a position are
-- a range of this key (an index-only scan), joined to the live messages others wrote
-- (`messages_live_seq_by`, index-only too). Rows follow edits; a deleted message leaves its
-- rows, which the join no longer finds. Keyed by `thread_id` first, as every table is.
CREATE TABLE mentions (
    thread_id uuid NOT NULL,
    user_id uuid NOT NULL,
    seq bigint NOT NULL,
    PRIMARY KEY (thread_id, user_id, seq)
);
