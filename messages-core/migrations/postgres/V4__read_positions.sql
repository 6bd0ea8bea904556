-- Read state: where each user stopped reading each thread (a seq: every message numbered up
-- to it is read). Keyed by thread first, like the messages, so it distributes with them.
CREATE TABLE read_positions (
    thread_id uuid   NOT NULL,
    user_id   uuid   NOT NULL,
    seq       bigint NOT NULL,
    PRIMARY KEY (thread_id, user_id)
);

-- Unread counts read the live messages after a position and skip the reader's own: with
-- the author in the index, that is a range of the index alone (an index-only scan once the
-- pages are all-visible), never a visit to each row. It replaces the index of pages, which
-- has the same key.
CREATE INDEX messages_live_seq_by ON messages (thread_id, seq) INCLUDE (user_id)
    WHERE deleted_at IS NULL;
DROP INDEX messages_live_seq;
