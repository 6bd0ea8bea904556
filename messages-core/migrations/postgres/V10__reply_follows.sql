-- Who follows which reply conversation, and where each follower stands in its replies:
-- private to each user, like read positions. A row with following = false is a choice kept (a
-- user who unfollowed is not followed again by the next reply), or a position only. Keyed by
-- thread first, so it distributes by thread_id with the messages.
CREATE TABLE reply_follows (
    thread_id uuid    NOT NULL,
    root_id   uuid    NOT NULL,
    user_id   uuid    NOT NULL,
    following boolean NOT NULL,
    seq       bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (thread_id, root_id, user_id)
);

-- A user's followed conversations in the threads an inbox names.
CREATE INDEX reply_follows_by_user ON reply_follows (user_id, thread_id) WHERE following;

-- The conversations of the replies written before this version: each reply's author follows
-- its root with their newest reply read, each root's author follows it.
INSERT INTO reply_follows (thread_id, root_id, user_id, following, seq)
SELECT thread_id, root_id, user_id, true, max(seq) FROM messages
WHERE root_id IS NOT NULL AND deleted_at IS NULL
GROUP BY thread_id, root_id, user_id;
INSERT INTO reply_follows (thread_id, root_id, user_id, following, seq)
SELECT thread_id, id, user_id, true, 0 FROM messages
WHERE reply_count > 0 AND deleted_at IS NULL
ON CONFLICT DO NOTHING;
