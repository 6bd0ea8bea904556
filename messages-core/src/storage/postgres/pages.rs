//! Reads of messages on PostgreSQL: one statement each, the thread's position read in the same
//! snapshot as the rows.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::rows::{COLUMNS, deletion_from_row, head_and_messages, message_from_row};
use super::{PostgresStore, db, decode};
use crate::changes::{Change, Changes, ChangesLimit};
use crate::error::{Error, Result};
use crate::history::{History, Replaced};
use crate::message::{Message, MessageId, ThreadId, Timestamp};
use crate::page::{Around, Page, PageQuery, PageSize};
use crate::storage::PageStore;

/// The newest page: the position, then up to $2 live messages newest first.
const PAGE_NEWEST: &str = r#"
SELECT h.head, m.thread_id, m.id, m.user_id, m.kind, m.content, m.paths, m.created_at,
       m.updated_at, m.seq, m.rev, m.reply_to, m.reactions, m.root_id, m.reply_count,
       m.last_reply_at, m.last_reply_id, m.reply_users, m.mentions
FROM (SELECT COALESCE((SELECT head FROM threads WHERE thread_id = $1), 0) AS head) h
LEFT JOIN LATERAL (
    SELECT thread_id, id, user_id, kind, content, paths, created_at, updated_at, seq, rev,
           reply_to, reactions, root_id, reply_count, last_reply_at, last_reply_id,
       reply_users, mentions
    FROM messages
    WHERE thread_id = $1 AND deleted_at IS NULL
    ORDER BY seq DESC
    LIMIT $2
) m ON true
"#;

/// The page before `seq` $3, newest first.
const PAGE_BEFORE: &str = r#"
SELECT h.head, m.thread_id, m.id, m.user_id, m.kind, m.content, m.paths, m.created_at,
       m.updated_at, m.seq, m.rev, m.reply_to, m.reactions, m.root_id, m.reply_count,
       m.last_reply_at, m.last_reply_id, m.reply_users, m.mentions
FROM (SELECT COALESCE((SELECT head FROM threads WHERE thread_id = $1), 0) AS head) h
LEFT JOIN LATERAL (
    SELECT thread_id, id, user_id, kind, content, paths, created_at, updated_at, seq, rev,
           reply_to, reactions, root_id, reply_count, last_reply_at, last_reply_id,
       reply_users, mentions
    FROM messages
    WHERE thread_id = $1 AND deleted_at IS NULL AND seq < $3
    ORDER BY seq DESC
    LIMIT $2
) m ON true
"#;

/// The page after `seq` $3, oldest first.
const PAGE_AFTER: &str = r#"
SELECT h.head, m.thread_id, m.id, m.user_id, m.kind, m.content, m.paths, m.created_at,
       m.updated_at, m.seq, m.rev, m.reply_to, m.reactions, m.root_id, m.reply_count,
       m.last_reply_at, m.last_reply_id, m.reply_users, m.mentions
FROM (SELECT COALESCE((SELECT head FROM threads WHERE thread_id = $1), 0) AS head) h
LEFT JOIN LATERAL (
    SELECT thread_id, id, user_id, kind, content, paths, created_at, updated_at, seq, rev,
           reply_to, reactions, root_id, reply_count, last_reply_at, last_reply_id,
       reply_users, mentions
    FROM messages
    WHERE thread_id = $1 AND deleted_at IS NULL AND seq > $3
    ORDER BY seq ASC
    LIMIT $2
) m ON true
"#;

/// One live message.
const GET: &str = r#"
SELECT thread_id, id, user_id, kind, content, paths, created_at, updated_at, seq, rev,
       reply_to, reactions, root_id, reply_count, last_reply_at, last_reply_id,
       reply_users, mentions
FROM messages
WHERE thread_id = $1 AND id = $2 AND deleted_at IS NULL
"#;

/// The anchor's part (2; its columns NULL when it is deleted), the older messages (0) and the
/// newer ones (1), with the position, in one snapshot.
const AROUND: &str = r#"
WITH a AS (SELECT seq FROM messages WHERE thread_id = $1 AND id = $2)
SELECT 0::int2 AS part, h.head, m.thread_id, m.id, m.user_id, m.kind, m.content, m.paths,
       m.created_at, m.updated_at, m.seq, m.rev, m.reply_to, m.reactions, m.root_id, m.reply_count,
       m.last_reply_at, m.last_reply_id, m.reply_users, m.mentions
FROM (SELECT COALESCE((SELECT head FROM threads WHERE thread_id = $1), 0) AS head) h
CROSS JOIN a
CROSS JOIN LATERAL (
    SELECT thread_id, id, user_id, kind, content, paths, created_at, updated_at, seq, rev,
           reply_to, reactions, root_id, reply_count, last_reply_at, last_reply_id,
       reply_users, mentions
    FROM messages
    WHERE thread_id = $1 AND deleted_at IS NULL AND seq < a.seq
    ORDER BY seq DESC
    LIMIT $3
) m
UNION ALL
SELECT 1::int2, h.head, m.thread_id, m.id, m.user_id, m.kind, m.content, m.paths,
       m.created_at, m.updated_at, m.seq, m.rev, m.reply_to, m.reactions, m.root_id, m.reply_count,
       m.last_reply_at, m.last_reply_id, m.reply_users, m.mentions
FROM (SELECT COALESCE((SELECT head FROM threads WHERE thread_id = $1), 0) AS head) h
CROSS JOIN a
CROSS JOIN LATERAL (
    SELECT thread_id, id, user_id, kind, content, paths, created_at, updated_at, seq, rev,
           reply_to, reactions, root_id, reply_count, last_reply_at, last_reply_id,
       reply_users, mentions
    FROM messages
    WHERE thread_id = $1 AND deleted_at IS NULL AND seq > a.seq
    ORDER BY seq ASC
    LIMIT $3
) m
UNION ALL
SELECT 2::int2, h.head, m.thread_id, m.id, m.user_id, m.kind, m.content, m.paths,
       m.created_at, m.updated_at, m.seq, m.rev, m.reply_to, m.reactions, m.root_id, m.reply_count,
       m.last_reply_at, m.last_reply_id, m.reply_users, m.mentions
FROM (SELECT COALESCE((SELECT head FROM threads WHERE thread_id = $1), 0) AS head) h
CROSS JOIN a
LEFT JOIN messages m ON m.thread_id = $1 AND m.seq = a.seq AND m.deleted_at IS NULL
"#;

/// The changes feed: the position, then up to $3 messages whose `rev` is past $2, in `rev`
/// order, deleted ones too (`deleted_at` last).
const CHANGES: &str = r#"
SELECT h.head, m.thread_id, m.id, m.user_id, m.kind, m.content, m.paths, m.created_at,
       m.updated_at, m.seq, m.rev, m.reply_to, m.reactions, m.root_id, m.reply_count,
       m.last_reply_at, m.last_reply_id, m.reply_users, m.mentions, m.deleted_at, m.deleted_by,
       m.delete_reason
FROM (SELECT COALESCE((SELECT head FROM threads WHERE thread_id = $1), 0) AS head) h
LEFT JOIN LATERAL (
    SELECT thread_id, id, user_id, kind, content, paths, created_at, updated_at, seq, rev,
           reply_to, reactions, root_id, reply_count, last_reply_at, last_reply_id,
       reply_users, mentions, deleted_at, deleted_by, delete_reason
    FROM messages
    WHERE thread_id = $1 AND rev > $2
    ORDER BY rev
    LIMIT $3
) m ON true
"#;

const LOCATE: &str = "SELECT seq FROM messages WHERE thread_id = $1 AND id = $2";

const HEAD: &str = "SELECT head FROM threads WHERE thread_id = $1";

/// A live message and the versions its edits replaced (their columns NULL when none).
const HISTORY: &str = r#"
SELECT m.thread_id, m.id, m.user_id, m.kind, m.content, m.paths, m.created_at, m.updated_at,
       m.seq, m.rev, m.reply_to, m.reactions, m.root_id, m.reply_count,
       m.last_reply_at, m.last_reply_id, m.reply_users, m.mentions, e.replaced_by, e.content, e.paths, e.made_at,
       e.mentions
FROM messages m
LEFT JOIN message_edits e ON e.thread_id = m.thread_id AND e.message_id = m.id
WHERE m.thread_id = $1 AND m.id = $2 AND m.deleted_at IS NULL
ORDER BY e.replaced_by
"#;

/// The statement of a page query, and the position it starts from.
fn page_statement(query: PageQuery) -> (&'static str, i64) {
    match query {
        PageQuery::Newest => (PAGE_NEWEST, 0),
        PageQuery::Before(seq) => (PAGE_BEFORE, seq),
        PageQuery::After(seq) => (PAGE_AFTER, seq),
    }
}

impl PostgresStore {
    /// The plan PostgreSQL runs for a page query, from `EXPLAIN (ANALYZE, BUFFERS)` of the very
    /// statement [`PageStore::page`] prepares.
    pub async fn explain_page(
        &self,
        thread: ThreadId,
        query: PageQuery,
        size: PageSize,
    ) -> Result<Vec<String>> {
        let client = self.client().await?;
        let (sql, position) = page_statement(query);
        let sql = format!("EXPLAIN (ANALYZE, BUFFERS) {sql}");
        let take = (size.get() + 1) as i64;
        let rows = match query {
            PageQuery::Newest => client.query(&sql, &[thread.as_uuid(), &take]).await,
            _ => {
                client
                    .query(&sql, &[thread.as_uuid(), &take, &position])
                    .await
            }
        }
        .map_err(db("explain"))?;
        rows.iter()
            .map(|r| r.try_get::<_, String>(0).map_err(decode))
            .collect()
    }
}

#[async_trait]
impl PageStore for PostgresStore {
    async fn get(&self, thread: ThreadId, id: MessageId) -> Result<Message> {
        self.timed("get", async {
            let client = self.client().await?;
            let stmt = client.prepare_cached(GET).await.map_err(db("prepare"))?;
            let row = client
                .query_opt(&stmt, &[thread.as_uuid(), id.as_uuid()])
                .await
                .map_err(db("get message"))?;
            row.as_ref()
                .map(|r| message_from_row(r, 0))
                .ok_or(Error::NotFound)?
        })
        .await
    }

    async fn page(&self, thread: ThreadId, query: PageQuery, size: PageSize) -> Result<Page> {
        self.timed("page", async {
            let client = self.client().await?;
            let (sql, position) = page_statement(query);
            let stmt = client.prepare_cached(sql).await.map_err(db("prepare"))?;
            let take = (size.get() + 1) as i64;
            let rows = match query {
                PageQuery::Newest => client.query(&stmt, &[thread.as_uuid(), &take]).await,
                PageQuery::Before(_) | PageQuery::After(_) => {
                    client
                        .query(&stmt, &[thread.as_uuid(), &take, &position])
                        .await
                }
            }
            .map_err(db("page"))?;
            let (head, messages) = head_and_messages(&rows)?;
            Ok(Page::from_overfetch(messages, size, head))
        })
        .await
    }

    async fn replies(
        &self,
        thread: ThreadId,
        root: MessageId,
        after: i64,
        size: PageSize,
    ) -> Result<Page> {
        self.timed("replies", self.replies_page(thread, root, after, size))
            .await
    }

    async fn around(&self, thread: ThreadId, id: MessageId, half: usize) -> Result<Around> {
        self.timed("around", async {
            let client = self.client().await?;
            let stmt = client.prepare_cached(AROUND).await.map_err(db("prepare"))?;
            let take = (half + 1) as i64;
            let rows = client
                .query(&stmt, &[thread.as_uuid(), id.as_uuid(), &take])
                .await
                .map_err(db("around"))?;
            let mut head = None;
            let (mut before, mut after, mut anchor) = (Vec::new(), Vec::new(), None);
            for row in &rows {
                let part: i16 = row.try_get(0).map_err(decode)?;
                head = Some(row.try_get::<_, i64>(1).map_err(decode)?);
                let live: Option<uuid::Uuid> = row.try_get(3).map_err(decode)?;
                let message = match live {
                    Some(_) => Some(message_from_row(row, 2)?),
                    None => None,
                };
                match (part, message) {
                    (0, Some(m)) => before.push(m),
                    (1, Some(m)) => after.push(m),
                    (2, m) => anchor = Some(m),
                    _ => {}
                }
            }
            // No anchor row: the id is unknown in this thread.
            let (Some(anchor), Some(head)) = (anchor, head) else {
                return Err(Error::NotFound);
            };
            before.sort_by_key(|m| std::cmp::Reverse(m.seq));
            after.sort_by_key(|m| m.seq);
            Ok(Around::from_overfetch(before, anchor, after, half, head))
        })
        .await
    }

    async fn changes(&self, thread: ThreadId, since: i64, limit: ChangesLimit) -> Result<Changes> {
        self.timed("changes", async {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(CHANGES)
                .await
                .map_err(db("prepare"))?;
            let take = (limit.get() + 1) as i64;
            let rows = client
                .query(&stmt, &[thread.as_uuid(), &since, &take])
                .await
                .map_err(db("changes"))?;
            let head = match rows.first() {
                Some(row) => row.try_get(0).map_err(decode)?,
                None => 0,
            };
            let mut changes = Vec::with_capacity(rows.len());
            for row in &rows {
                let id: Option<uuid::Uuid> = row.try_get(2).map_err(decode)?;
                if id.is_none() {
                    continue;
                }
                let m = message_from_row(row, 1)?;
                changes.push(match deletion_from_row(row, 1 + COLUMNS)? {
                    None => Change::Message(m),
                    Some(deletion) => {
                        Change::Deleted(deletion.tombstone(m.id, m.thread_id, m.seq, m.rev))
                    }
                });
            }
            Ok(Changes::from_overfetch(changes, since, head, limit.get()))
        })
        .await
    }

    async fn locate(&self, thread: ThreadId, id: MessageId) -> Result<Option<i64>> {
        self.timed("locate", async {
            let client = self.client().await?;
            let stmt = client.prepare_cached(LOCATE).await.map_err(db("prepare"))?;
            let row = client
                .query_opt(&stmt, &[thread.as_uuid(), id.as_uuid()])
                .await
                .map_err(db("locate"))?;
            row.map(|r| r.try_get(0).map_err(decode)).transpose()
        })
        .await
    }

    async fn head(&self, thread: ThreadId) -> Result<i64> {
        self.timed("head", async {
            let client = self.client().await?;
            let stmt = client.prepare_cached(HEAD).await.map_err(db("prepare"))?;
            let row = client
                .query_opt(&stmt, &[thread.as_uuid()])
                .await
                .map_err(db("head"))?;
            Ok(match row {
                Some(row) => row.try_get(0).map_err(decode)?,
                None => 0,
            })
        })
        .await
    }

    async fn history(&self, thread: ThreadId, id: MessageId) -> Result<History> {
        self.timed("history", async {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(HISTORY)
                .await
                .map_err(db("prepare"))?;
            let rows = client
                .query(&stmt, &[thread.as_uuid(), id.as_uuid()])
                .await
                .map_err(db("history"))?;
            let message = message_from_row(rows.first().ok_or(Error::NotFound)?, 0)?;
            let mut replaced = Vec::with_capacity(rows.len());
            for row in &rows {
                let Some(replaced_by) = row.try_get(COLUMNS).map_err(decode)? else {
                    continue;
                };
                let made_at: DateTime<Utc> = row.try_get(COLUMNS + 3).map_err(decode)?;
                replaced.push(Replaced {
                    replaced_by,
                    content: row.try_get(COLUMNS + 1).map_err(decode)?,
                    paths: row.try_get(COLUMNS + 2).map_err(decode)?,
                    mentions: super::rows::mentions_from_column(
                        row.try_get(COLUMNS + 4).map_err(decode)?,
                    )?,
                    made_at: Timestamp::from(made_at),
                });
            }
            Ok(History::new(&message, replaced))
        })
        .await
    }
}
