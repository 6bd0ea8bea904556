//! Reply threads on PostgreSQL: a root locked, a root recounted after replies went, a page of
//! a root's replies (a reply's own write is `reply_create`'s). The summary itself is decided
//! by the core's `replies` rules.
//!
//! Locks follow the order every write of a thread takes: the messages' rows first (the
//! root's for update, then a target that is a reply for share), the thread's counter last; a
//! group of edits and deletes locks all of its messages before its first change (see
//! `change`). A write PostgreSQL still ends to break a deadlock runs again
//! (`rerun_lost_races`).

use deadpool_postgres::GenericClient;

use super::rows::{COLUMNS, head_and_messages, message_from_row};
use super::{PostgresStore, db, decode};
use crate::error::{Error, Result};
use crate::message::ReplySummary;
use crate::message::{Message, MessageId, ThreadId, Timestamp, UserId};
use crate::page::{Page, PageSize};
use crate::replies::{self, LiveReply, Participants};

/// A live root, locked: its summary changes under this lock only.
const LOCK_ROOT: &str = r#"
SELECT thread_id, id, user_id, kind, content, paths, created_at, updated_at, seq, rev,
       reply_to, reactions, root_id, reply_count, last_reply_at, last_reply_id, reply_users, mentions
FROM messages
WHERE thread_id = $1 AND id = $2 AND deleted_at IS NULL AND reply_to IS NULL
FOR UPDATE
"#;

/// A root's summary after replies went, numbered with the thread's next number, its event
/// beside it.
const WRITE_ROOT: &str = r#"
WITH bump AS (
    INSERT INTO threads AS t (thread_id, head) VALUES ($1, 1)
    ON CONFLICT (thread_id) DO UPDATE SET head = t.head + 1
    RETURNING head
), root AS (
    UPDATE messages m
    SET reply_count = $3, last_reply_at = $4, last_reply_id = $5, reply_users = $6,
        rev = bump.head
    FROM bump
    WHERE m.thread_id = $1 AND m.id = $2
    RETURNING m.seq, m.rev
), ob AS (
    INSERT INTO outbox (id, kind, thread_id, time, payload, message_seq, rev)
    SELECT $7, $8, $1, $9, $10, seq, rev FROM root
) SELECT rev FROM root
"#;

/// A root's live replies, newest first.
const LIVE_REPLIES: &str = r#"
SELECT id, user_id, created_at FROM messages
WHERE thread_id = $1 AND root_id = $2 AND deleted_at IS NULL
ORDER BY seq DESC
"#;

/// The position, whether the root $2 is live, then up to $4 of its live replies after $3,
/// oldest first.
const PAGE: &str = r#"
SELECT h.head, m.thread_id, m.id, m.user_id, m.kind, m.content, m.paths, m.created_at,
       m.updated_at, m.seq, m.rev, m.reply_to, m.reactions, m.root_id, m.reply_count,
       m.last_reply_at, m.last_reply_id, m.reply_users, m.mentions, h.live
FROM (
    SELECT COALESCE((SELECT head FROM threads WHERE thread_id = $1), 0) AS head,
           EXISTS (SELECT 1 FROM messages WHERE thread_id = $1 AND id = $2
                   AND deleted_at IS NULL AND reply_to IS NULL) AS live
) h
LEFT JOIN LATERAL (
    SELECT thread_id, id, user_id, kind, content, paths, created_at, updated_at, seq, rev,
           reply_to, reactions, root_id, reply_count, last_reply_at, last_reply_id,
           reply_users, mentions
    FROM messages
    WHERE thread_id = $1 AND root_id = $2 AND deleted_at IS NULL AND seq > $3
    ORDER BY seq ASC
    LIMIT $4
) m ON true
"#;

/// Locks the live root `root` of the thread; `None` when it is not live (or not a root).
pub(super) async fn lock_root<C: GenericClient + Sync>(
    client: &C,
    thread: ThreadId,
    root: MessageId,
) -> Result<Option<Message>> {
    let stmt = client
        .prepare_cached(LOCK_ROOT)
        .await
        .map_err(db("prepare"))?;
    client
        .query_opt(&stmt, &[thread.as_uuid(), root.as_uuid()])
        .await
        .map_err(db("lock root"))?
        .map(|row| message_from_row(&row, 0))
        .transpose()
}

/// Recounts the locked live `root` from its live replies and numbers the change; the root in
/// its new state.
pub(super) async fn recount_root<C: GenericClient + Sync>(
    client: &C,
    mut root: Message,
    participants: Participants,
    at: Timestamp,
) -> Result<Message> {
    let stmt = client
        .prepare_cached(LIVE_REPLIES)
        .await
        .map_err(db("prepare"))?;
    let rows = client
        .query(&stmt, &[root.thread_id.as_uuid(), root.id.as_uuid()])
        .await
        .map_err(db("read replies"))?;
    let mut live = Vec::with_capacity(rows.len());
    for row in &rows {
        let created: chrono::DateTime<chrono::Utc> = row.try_get(2).map_err(decode)?;
        live.push(LiveReply {
            id: MessageId::from_uuid(row.try_get(0).map_err(decode)?),
            user_id: UserId::from_uuid(row.try_get(1).map_err(decode)?),
            created_at: Timestamp::from(created),
        });
    }
    let summary = replies::recount(live, participants);
    // Numbered by the statement: the event's body is encoded before, its numbers after.
    let event = replies::renumber_root(&mut root, summary, 0, at);
    let stmt = client
        .prepare_cached(WRITE_ROOT)
        .await
        .map_err(db("prepare"))?;
    let (count, last_at, last_id, users) = summary_columns(root.replies.as_deref());
    let row = client
        .query_one(
            &stmt,
            &[
                root.thread_id.as_uuid(),
                root.id.as_uuid(),
                &count,
                &last_at,
                &last_id,
                &users,
                &event.id,
                &event.kind,
                &event.time.to_datetime(),
                &event.open_payload,
            ],
        )
        .await
        .map_err(db("write root"))?;
    root.rev = row.try_get(0).map_err(decode)?;
    Ok(root)
}

/// A summary as its columns: count, last reply's time and id, participants.
pub(super) fn summary_columns(
    summary: Option<&ReplySummary>,
) -> (
    i32,
    Option<chrono::DateTime<chrono::Utc>>,
    Option<uuid::Uuid>,
    Vec<uuid::Uuid>,
) {
    match summary {
        None => (0, None, None, Vec::new()),
        Some(s) => (
            i32::try_from(s.count).unwrap_or(i32::MAX),
            Some(s.last_reply_at.to_datetime()),
            Some(*s.last_reply_id.as_uuid()),
            s.participants.iter().map(|u| *u.as_uuid()).collect(),
        ),
    }
}

impl PostgresStore {
    /// A page of a root's live replies after `after`, with the position; `NotFound` when the
    /// root is not live.
    pub(super) async fn replies_page(
        &self,
        thread: ThreadId,
        root: MessageId,
        after: i64,
        size: PageSize,
    ) -> Result<Page> {
        let take = (size.get() + 1) as i64;
        let client = self.client().await?;
        let stmt = client.prepare_cached(PAGE).await.map_err(db("prepare"))?;
        let rows = client
            .query(&stmt, &[thread.as_uuid(), root.as_uuid(), &after, &take])
            .await
            .map_err(db("replies"))?;
        let live: bool = match rows.first() {
            Some(row) => row.try_get(1 + COLUMNS).map_err(decode)?,
            None => false,
        };
        if !live {
            return Err(Error::NotFound);
        }
        let (head, messages) = head_and_messages(&rows)?;
        Ok(Page::from_overfetch(messages, size, head))
    }
}
