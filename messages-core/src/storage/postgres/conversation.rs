//! Reply conversations on PostgreSQL: a follow or a move of a position is one statement that
//! answers the user's state; the inbox one statement, after a cheaper one that tells whether
//! the page this process made last is still exact (see `inboxes`). A reply's follows are
//! written by its create (see `replies`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::inboxes::{Asked, Fingerprint};
use super::rows::{COLUMNS, message_from_row};
use super::{PostgresStore, db, decode};
use crate::conversation::{
    Conversation, FollowRequest, Inbox, InboxCursor, InboxEntry, RepliesReadRequest, Unread,
};
use crate::error::{Error, Result};
use crate::message::{MessageId, ThreadId, UserId};
use crate::page::PageSize;
use crate::read::{ThreadList, UnreadMax};
use crate::storage::ConversationStore;

/// The state of user $3 in the conversation of root $2 after `up` (a row `following, seq`):
/// the live replies after the position that others wrote, counted up to $5, the first, and
/// how many of them are filed under the user's or the room's (the nil id) mention key.
macro_rules! state_after {
    ($up:literal) => {
        concat!(
            "WITH root AS (
                SELECT 1 FROM messages
                WHERE thread_id = $1 AND id = $2 AND deleted_at IS NULL AND reply_to IS NULL
            ), up AS (",
            $up,
            ") SELECT up.following, up.seq, u.n, u.first, u.mentions FROM up CROSS JOIN LATERAL (
                SELECT count(*) AS n, min(seq) AS first,
                       count(*) FILTER (WHERE keys && ARRAY[$3,
                           '00000000-0000-0000-0000-000000000000'::uuid]) AS mentions
                FROM (
                    SELECT seq, mention_keys AS keys FROM messages r
                    WHERE r.thread_id = $1 AND r.root_id = $2 AND r.deleted_at IS NULL
                      AND r.seq > up.seq AND r.user_id <> $3
                    ORDER BY r.seq LIMIT $5
                ) x
            ) u"
        )
    };
}

/// Follows ($4 true) or unfollows, the position kept.
const FOLLOW: &str = state_after!(
    "INSERT INTO reply_follows AS f (thread_id, root_id, user_id, following)
     SELECT $1, $2, $3, $4 FROM root
     ON CONFLICT (thread_id, root_id, user_id) DO UPDATE
     SET following = excluded.following, changed = nextval('reply_follow_changes')
     RETURNING f.following, f.seq"
);

/// Moves the position forward to $4, never past the thread's head; following kept (not
/// following for a new row).
const MOVE: &str = state_after!(
    "INSERT INTO reply_follows AS f (thread_id, root_id, user_id, following, seq)
     SELECT $1, $2, $3, false,
            LEAST(GREATEST($4::bigint, 0), COALESCE((SELECT head FROM threads WHERE thread_id = $1), 0))
     FROM root
     ON CONFLICT (thread_id, root_id, user_id) DO UPDATE
     SET seq = GREATEST(f.seq, excluded.seq), changed = nextval('reply_follow_changes')
     RETURNING f.following, f.seq"
);

/// A page of user $1's inbox in threads $2 after ($3, $4, $5) when $3 is not NULL, at most $6,
/// each with its unread replies counted up to $7: the root's columns, then following, the
/// position, the count, the first unread and the unread that mention the user or the room.
const INBOX: &str = r#"
SELECT m.thread_id, m.id, m.user_id, m.kind, m.content, m.paths, m.created_at, m.updated_at,
       m.seq, m.rev, m.reply_to, m.reactions, m.root_id, m.reply_count, m.last_reply_at,
       m.last_reply_id, m.reply_users, m.mentions, m.following, m.position, u.n, u.first,
       u.mentions
FROM (
    SELECT m.*, f.following, f.seq AS position
    FROM reply_follows f
    JOIN messages m ON m.thread_id = f.thread_id AND m.id = f.root_id
    WHERE f.user_id = $1 AND f.thread_id = ANY($2) AND f.following
      AND m.deleted_at IS NULL AND m.reply_count > 0
      AND ($3::timestamptz IS NULL OR (m.last_reply_at, m.thread_id, m.id) < ($3, $4, $5))
    ORDER BY m.last_reply_at DESC, m.thread_id DESC, m.id DESC
    LIMIT $6
) m
CROSS JOIN LATERAL (
    SELECT count(*) AS n, min(seq) AS first,
           count(*) FILTER (WHERE keys && ARRAY[$1,
               '00000000-0000-0000-0000-000000000000'::uuid]) AS mentions
    FROM (
        SELECT r.seq, r.mention_keys AS keys FROM messages r
        WHERE r.thread_id = m.thread_id AND r.root_id = m.id AND r.deleted_at IS NULL
          AND r.seq > m.position AND r.user_id <> $1
        ORDER BY r.seq LIMIT $7
    ) x
) u
ORDER BY m.last_reply_at DESC, m.thread_id DESC, m.id DESC
"#;

/// What an inbox of user $1 in threads $2 was read from (see `inboxes`): the sum of the
/// threads' heads, the user's follow rows there, the sum of their numbers.
const INBOX_FINGERPRINT: &str = r#"
SELECT (SELECT COALESCE(sum(head), 0)::bigint FROM threads WHERE thread_id = ANY($2)),
       count(*), COALESCE(sum(changed), 0)::bigint
FROM reply_follows WHERE user_id = $1 AND thread_id = ANY($2)
"#;

impl PostgresStore {
    /// Runs `FOLLOW` or `MOVE` with `value` as $4; the state, or `NotFound` for a root the
    /// thread does not hold live.
    async fn conversation_after<V: tokio_postgres::types::ToSql + Sync>(
        &self,
        sql: &'static str,
        (thread, root, user): (ThreadId, MessageId, UserId),
        value: V,
        max: UnreadMax,
    ) -> Result<Conversation> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(sql).await.map_err(db("prepare"))?;
        let take = (max.get() + 1) as i64;
        let row = client
            .query_opt(
                &stmt,
                &[
                    thread.as_uuid(),
                    root.as_uuid(),
                    user.as_uuid(),
                    &value,
                    &take,
                ],
            )
            .await
            .map_err(db("conversation"))?
            .ok_or(Error::NotFound)?;
        let counted: i64 = row.try_get(2).map_err(decode)?;
        let mentions: i64 = row.try_get(4).map_err(decode)?;
        Ok(Conversation::from_unread(
            thread,
            root,
            row.try_get(0).map_err(decode)?,
            row.try_get(1).map_err(decode)?,
            Unread::new(
                counted.max(0) as u64,
                row.try_get(3).map_err(decode)?,
                mentions.max(0) as u64,
            ),
            max,
        ))
    }
}

#[async_trait]
impl ConversationStore for PostgresStore {
    async fn follow(&self, request: FollowRequest) -> Result<Conversation> {
        let ids = (request.thread, request.root, request.user);
        self.timed(
            "follow",
            self.conversation_after(FOLLOW, ids, request.follow, request.max),
        )
        .await
    }

    async fn mark_replies_read(&self, request: RepliesReadRequest) -> Result<Conversation> {
        let ids = (request.thread, request.root, request.user);
        self.timed(
            "mark replies read",
            self.conversation_after(MOVE, ids, request.seq, request.max),
        )
        .await
    }

    async fn inbox(
        &self,
        user: UserId,
        threads: &ThreadList,
        after: Option<InboxCursor>,
        size: PageSize,
        max: UnreadMax,
    ) -> Result<Inbox> {
        self.timed("inbox", async {
            let client = self.client().await?;
            let ids: Vec<uuid::Uuid> = threads.as_slice().iter().map(|t| *t.as_uuid()).collect();
            // Asked again while nothing it shows moved: the page made before.
            let asked = Asked {
                user,
                threads: threads.as_slice().to_vec(),
                after,
                size: size.get(),
                max: max.get(),
            };
            let stmt = client
                .prepare_cached(INBOX_FINGERPRINT)
                .await
                .map_err(db("prepare"))?;
            let row = client
                .query_one(&stmt, &[user.as_uuid(), &ids])
                .await
                .map_err(db("inbox"))?;
            let now: Fingerprint = (
                row.try_get(0).map_err(decode)?,
                row.try_get(1).map_err(decode)?,
                row.try_get(2).map_err(decode)?,
            );
            if let Some(kept) = self.inboxes.get(&asked, now) {
                return Ok(kept);
            }
            let stmt = client.prepare_cached(INBOX).await.map_err(db("prepare"))?;
            let at: Option<DateTime<Utc>> = after.map(|a| a.last_reply_at.to_datetime());
            let thread = after.map(|a| *a.thread.as_uuid());
            let root = after.map(|a| *a.root.as_uuid());
            let take = (size.get() + 1) as i64;
            let count = (max.get() + 1) as i64;
            let rows = client
                .query(
                    &stmt,
                    &[user.as_uuid(), &ids, &at, &thread, &root, &take, &count],
                )
                .await
                .map_err(db("inbox"))?;
            let mut items = Vec::with_capacity(rows.len());
            for row in &rows {
                let root = message_from_row(row, 0)?;
                let counted: i64 = row.try_get(COLUMNS + 2).map_err(decode)?;
                let mentions: i64 = row.try_get(COLUMNS + 4).map_err(decode)?;
                let conversation = Conversation::from_unread(
                    root.thread_id,
                    root.id,
                    row.try_get(COLUMNS).map_err(decode)?,
                    row.try_get(COLUMNS + 1).map_err(decode)?,
                    Unread::new(
                        counted.max(0) as u64,
                        row.try_get(COLUMNS + 3).map_err(decode)?,
                        mentions.max(0) as u64,
                    ),
                    max,
                );
                items.push(InboxEntry { root, conversation });
            }
            let inbox = Inbox::from_overfetch(items, size.get());
            self.inboxes.keep(asked, now, &inbox);
            Ok(inbox)
        })
        .await
    }
}
