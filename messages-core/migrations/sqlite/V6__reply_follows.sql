-- Who follows which reply conversation, and where each follower stands in its replies:
-- private to each user, like read positions. A row with following = 0 is a choice kept (a
-- user who unfollowed is not followed again by the next reply), or a position only.
CREATE TABLE reply_follows (
    thread_id BLOB    NOT NULL,
    root_id   BLOB    NOT NULL,
    user_id   BLOB    NOT NULL,
    following INTEGER NOT NULL,
    seq       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (thread_id, root_id, user_id)
) WITHOUT ROWID;

-- A user's followed conversations in the threads an inbox names.
CREATE INDEX reply_follows_by_user ON reply_follows (user_id, thread_id) WHERE following = 1;

-- The conversations of the replies written before this version: each reply's author follows
-- its root with their newest reply read, each root's author follows it.
INSERT INTO reply_follows (thread_id, root_id, user_id, following, seq)
SELECT thread_id, root_id, user_id, 1, max(seq) FROM messages
WHERE root_id IS NOT NULL AND deleted_at IS NULL
GROUP BY thread_id, root_id, user_id;
INSERT OR IGNORE INTO reply_follows (thread_id, root_id, user_id, following, seq)
SELECT r.thread_id, r.id, r.user_id, 1, 0 FROM messages r
WHERE r.reply_count > 0 AND r.deleted_at IS NULL;
