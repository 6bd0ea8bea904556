-- Reply threads: the conversation a reply belongs to, and what a root shows of its replies.

-- The root of a reply's conversation (NULL for a root): the message reply_to names, or that
-- message's root when it is a reply itself. It never changes. A root's summary: how many live
-- replies it has, the newest one, and the users who replied most recently, most recent
-- first. Instant on PostgreSQL 11+ (no column has a volatile default).
ALTER TABLE messages ADD COLUMN root_id uuid,
                     ADD COLUMN reply_count integer NOT NULL DEFAULT 0,
                     ADD COLUMN last_reply_at timestamptz,
                     ADD COLUMN last_reply_id uuid,
                     ADD COLUMN reply_users uuid[] NOT NULL DEFAULT '{}';

-- The replies written before this version: each one's root is the first message up its chain
-- of reply_to that replies to nothing.
WITH RECURSIVE up(thread_id, id, root) AS (
    SELECT thread_id, id, reply_to FROM messages WHERE reply_to IS NOT NULL
    UNION ALL
    SELECT up.thread_id, up.id, m.reply_to
    FROM up JOIN messages m ON m.thread_id = up.thread_id AND m.id = up.root
    WHERE m.reply_to IS NOT NULL
), roots AS (
    SELECT up.thread_id, up.id, up.root FROM up
    WHERE NOT EXISTS (
        SELECT 1 FROM messages r
        WHERE r.thread_id = up.thread_id AND r.id = up.root AND r.reply_to IS NOT NULL
    )
)
UPDATE messages m SET root_id = roots.root
FROM roots WHERE m.thread_id = roots.thread_id AND m.id = roots.id;

-- A root's live replies in order, for its page of replies and its recount; keyed by thread
-- first like every index, so it distributes by thread_id.
CREATE INDEX messages_replies ON messages (thread_id, root_id, seq) INCLUDE (user_id)
    WHERE root_id IS NOT NULL AND deleted_at IS NULL;

-- The summaries of the live roots that have live replies, with five participants (the
-- setting's default).
WITH live AS (
    SELECT thread_id, root_id, id, user_id, created_at, seq FROM messages
    WHERE root_id IS NOT NULL AND deleted_at IS NULL
), counts AS (
    SELECT DISTINCT ON (thread_id, root_id) thread_id, root_id,
           count(*) OVER (PARTITION BY thread_id, root_id) AS n, id AS last_id,
           created_at AS last_at
    FROM live ORDER BY thread_id, root_id, seq DESC
), users AS (
    SELECT thread_id, root_id, array_agg(user_id ORDER BY last DESC) AS users FROM (
        SELECT thread_id, root_id, user_id, max(seq) AS last,
               row_number() OVER (PARTITION BY thread_id, root_id ORDER BY max(seq) DESC) AS k
        FROM live GROUP BY thread_id, root_id, user_id
    ) p WHERE k <= 5 GROUP BY thread_id, root_id
)
UPDATE messages m
SET reply_count = c.n, last_reply_at = c.last_at, last_reply_id = c.last_id,
    reply_users = u.users
FROM counts c JOIN users u USING (thread_id, root_id)
WHERE m.thread_id = c.thread_id AND m.id = c.root_id AND m.reply_to IS NULL
  AND m.deleted_at IS NULL;
