-- Read state: where each user stopped reading each thread (a seq: every message numbered up
-- to it is read). Keyed by thread first, like the messages, so it shards with them.
CREATE TABLE read_positions (
    thread_id BLOB    NOT NULL,
    user_id   BLOB    NOT NULL,
    seq       INTEGER NOT NULL,
    PRIMARY KEY (thread_id, user_id)
) WITHOUT ROWID;
