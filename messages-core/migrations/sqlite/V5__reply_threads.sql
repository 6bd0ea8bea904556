-- Reply threads: the conversation a reply belongs to, and what a root shows of its replies.

-- The root of a reply's conversation (NULL for a root): the message reply_to names, or that
-- message's root when it is a reply itself. It never changes.
ALTER TABLE messages ADD COLUMN root_id BLOB;

-- A root's summary: how many live replies it has, the newest one, and the users who replied
-- most recently, most recent first, as 32 hex digits each, comma-separated.
ALTER TABLE messages ADD COLUMN reply_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN last_reply_at INTEGER;
ALTER TABLE messages ADD COLUMN last_reply_id BLOB;
ALTER TABLE messages ADD COLUMN reply_users TEXT NOT NULL DEFAULT '';

-- The replies written before this version: each one's root is the first message up its chain
-- of reply_to that replies to nothing.
WITH RECURSIVE up(thread_id, id, root) AS (
    SELECT thread_id, id, reply_to FROM messages WHERE reply_to IS NOT NULL
    UNION ALL
    SELECT up.thread_id, up.id, m.reply_to
    FROM up JOIN messages m ON m.thread_id = up.thread_id AND m.id = up.root
    WHERE m.reply_to IS NOT NULL
)
UPDATE messages SET root_id = (
    SELECT up.root FROM up
    WHERE up.thread_id = messages.thread_id AND up.id = messages.id
      AND NOT EXISTS (
          SELECT 1 FROM messages r
          WHERE r.thread_id = up.thread_id AND r.id = up.root AND r.reply_to IS NOT NULL
      )
)
WHERE reply_to IS NOT NULL;

-- A root's live replies in order, for its page of replies and its recount.
CREATE INDEX messages_replies ON messages (thread_id, root_id, seq)
    WHERE root_id IS NOT NULL AND deleted_at IS NULL;

-- The summaries of the live roots that have live replies, with five participants (the
-- setting's default).
UPDATE messages SET
    reply_count = (
        SELECT count(*) FROM messages r
        WHERE r.thread_id = messages.thread_id AND r.root_id = messages.id
          AND r.deleted_at IS NULL
    ),
    last_reply_at = (
        SELECT r.created_at FROM messages r
        WHERE r.thread_id = messages.thread_id AND r.root_id = messages.id
          AND r.deleted_at IS NULL
        ORDER BY r.seq DESC LIMIT 1
    ),
    last_reply_id = (
        SELECT r.id FROM messages r
        WHERE r.thread_id = messages.thread_id AND r.root_id = messages.id
          AND r.deleted_at IS NULL
        ORDER BY r.seq DESC LIMIT 1
    ),
    reply_users = coalesce((
        SELECT group_concat(lower(hex(p.user_id)), ',' ORDER BY p.last DESC) FROM (
            SELECT r.user_id, max(r.seq) AS last FROM messages r
            WHERE r.thread_id = messages.thread_id AND r.root_id = messages.id
              AND r.deleted_at IS NULL
            GROUP BY r.user_id ORDER BY last DESC LIMIT 5
        ) p
    ), '')
WHERE reply_to IS NULL AND deleted_at IS NULL AND EXISTS (
    SELECT 1 FROM messages r
    WHERE r.thread_id = messages.thread_id AND r.root_id = messages.id AND r.deleted_at IS NULL
);
