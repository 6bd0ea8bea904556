-- Mentions: whom a message addresses, as its JSON says ({"users": [...], "room": bool}, NULL
-- for no one), on the message and on each version its edits replaced.
ALTER TABLE messages ADD COLUMN mentions text;
ALTER TABLE message_edits ADD COLUMN mentions text;

-- The keys a message's mentions are filed under: each user it names, or the room's key (the
-- nil id) alone when it addresses the room.
CREATE FUNCTION mention_keys(mentions text) RETURNS uuid[]
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN CASE WHEN (mentions::jsonb ->> 'room')::boolean
                THEN ARRAY['00000000-0000-0000-0000-000000000000'::uuid]
                ELSE ARRAY(SELECT jsonb_array_elements_text(mentions::jsonb -> 'users')::uuid)
           END;

-- ...kept beside the message as it changes (NULL for a message that addresses no one), and in
-- the live messages' index beside the author: a reader's unread messages and the mentions
-- among them are counted in one index-only pass over the range after their position.
ALTER TABLE messages ADD COLUMN mention_keys uuid[] GENERATED ALWAYS AS (mention_keys(mentions)) STORED;
CREATE INDEX messages_live_seq_keys ON messages (thread_id, seq) INCLUDE (user_id, mention_keys)
    WHERE deleted_at IS NULL;
DROP INDEX messages_live_seq_by;
-- The same for a root's live replies: a conversation's unread replies and its mentions.
CREATE INDEX messages_replies_keys ON messages (thread_id, root_id, seq)
    INCLUDE (user_id, mention_keys) WHERE root_id IS NOT NULL AND deleted_at IS NULL;
DROP INDEX messages_replies;

-- Each live message that addresses someone, filed under each user it names, or under the
-- room's key (the nil id) alone when it addresses the room, with its author and id beside the
-- key: a reader's mentions in a thread are one index-only range of this key (others'
-- messages), and the newest of them across threads are chosen by id from the index before a
-- message is read (`GET /mentions`). Creates file the rows, edits refile them, a delete removes them,
-- each in its own statement and by the primary key (the keys a message's `mentions` names), so
-- a mention costs a create one row and one index entry. Keyed by `thread_id` first, as every
-- table is.
CREATE TABLE mentions (
    thread_id uuid NOT NULL,
    user_id uuid NOT NULL,
    seq bigint NOT NULL,
    author uuid NOT NULL,
    id uuid NOT NULL,
    PRIMARY KEY (thread_id, user_id, seq) INCLUDE (author, id)
);
