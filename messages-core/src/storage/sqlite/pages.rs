//! Reads of messages on SQLite, each one snapshot on a reader.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use super::error::db;
use super::rows::{
    COLUMNS, columns, decode, deletion_from_row, find, find_live, head, mentions_from_column,
    message_from_row, timestamp,
};
use crate::changes::{Change, Changes, ChangesLimit};
use crate::error::{Error, Result};
use crate::history::{History, Replaced};
use crate::message::{Message, MessageId, ThreadId};
use crate::page::{Around, Page, PageQuery, PageSize};
use crate::storage::PageStore;

/// Live messages older than ?3, newest first (?3 = i64::MAX for the newest page).
const OLDER: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM messages WHERE thread_id = ?1 AND seq < ?3 AND deleted_at IS NULL \
     ORDER BY seq DESC LIMIT ?2"
);

/// Live messages newer than ?3, oldest first.
const NEWER: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM messages WHERE thread_id = ?1 AND seq > ?3 AND deleted_at IS NULL \
     ORDER BY seq ASC LIMIT ?2"
);

/// Every message whose `rev` is past ?2, deleted ones too, in `rev` order, at most ?3.
const CHANGES: &str = concat!(
    "SELECT ",
    columns!(),
    ", deleted_at, deleted_by, delete_reason FROM messages \
     WHERE thread_id = ?1 AND rev > ?2 ORDER BY rev LIMIT ?3"
);

/// The versions a message's edits replaced, oldest first.
const REPLACED: &str = "SELECT replaced_by, content, paths, made_at, mentions FROM message_edits \
     WHERE thread_id = ?1 AND message_id = ?2 ORDER BY replaced_by";

/// Live messages by `seq`: `sql` (`OLDER` or `NEWER`) from `seq`, at most `take`.
fn messages(
    conn: &Connection,
    sql: &str,
    thread: ThreadId,
    take: i64,
    seq: i64,
) -> Result<Vec<Message>> {
    let mut stmt = conn.prepare_cached(sql).map_err(db("read messages"))?;
    let mut rows = stmt
        .query(params![thread.as_uuid(), take, seq])
        .map_err(db("read messages"))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(db("read messages"))? {
        out.push(message_from_row(row, 0)?);
    }
    Ok(out)
}

#[async_trait]
impl PageStore for SqliteStore {
    async fn get(&self, thread: ThreadId, id: MessageId) -> Result<Message> {
        self.read("get", move |tx| {
            find_live(tx, thread, id)?.ok_or(Error::NotFound)
        })
        .await
    }

    async fn page(&self, thread: ThreadId, query: PageQuery, size: PageSize) -> Result<Page> {
        let take = (size.get() + 1) as i64;
        self.read("page", move |tx| {
            let position = head(tx, thread)?;
            let rows = match query {
                PageQuery::Newest => messages(tx, OLDER, thread, take, i64::MAX)?,
                PageQuery::Before(seq) => messages(tx, OLDER, thread, take, seq)?,
                PageQuery::After(seq) => messages(tx, NEWER, thread, take, seq)?,
            };
            Ok(Page::from_overfetch(rows, size, position))
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
        let take = (size.get() + 1) as i64;
        self.read("replies", move |tx| {
            let position = head(tx, thread)?;
            match find_live(tx, thread, root)? {
                Some(m) if m.reply_to.is_none() => {}
                _ => return Err(Error::NotFound),
            }
            let rows = super::replies::page(tx, thread, root, after, take)?;
            Ok(Page::from_overfetch(rows, size, position))
        })
        .await
    }

    async fn around(&self, thread: ThreadId, id: MessageId, half: usize) -> Result<Around> {
        let take = (half + 1) as i64;
        self.read("around", move |tx| {
            let position = head(tx, thread)?;
            let (anchor, deletion) = find(tx, thread, id)?.ok_or(Error::NotFound)?;
            let before = messages(tx, OLDER, thread, take, anchor.seq)?;
            let after = messages(tx, NEWER, thread, take, anchor.seq)?;
            let anchor = deletion.is_none().then_some(anchor);
            Ok(Around::from_overfetch(
                before, anchor, after, half, position,
            ))
        })
        .await
    }

    async fn changes(&self, thread: ThreadId, since: i64, limit: ChangesLimit) -> Result<Changes> {
        let take = (limit.get() + 1) as i64;
        self.read("changes", move |tx| {
            let position = head(tx, thread)?;
            let mut stmt = tx.prepare_cached(CHANGES).map_err(db("changes"))?;
            let mut rows = stmt
                .query(params![thread.as_uuid(), since, take])
                .map_err(db("changes"))?;
            let mut changes = Vec::new();
            while let Some(row) = rows.next().map_err(db("changes"))? {
                let m = message_from_row(row, 0)?;
                changes.push(match deletion_from_row(row, COLUMNS)? {
                    None => Change::Message(m),
                    Some(deletion) => {
                        Change::Deleted(deletion.tombstone(m.id, m.thread_id, m.seq, m.rev))
                    }
                });
            }
            Ok(Changes::from_overfetch(
                changes,
                since,
                position,
                limit.get(),
            ))
        })
        .await
    }

    async fn locate(&self, thread: ThreadId, id: MessageId) -> Result<Option<i64>> {
        self.read("locate", move |tx| {
            tx.prepare_cached("SELECT seq FROM messages WHERE thread_id = ?1 AND id = ?2")
                .and_then(|mut stmt| {
                    stmt.query_row(params![thread.as_uuid(), id.as_uuid()], |row| row.get(0))
                        .optional()
                })
                .map_err(db("locate"))
        })
        .await
    }

    async fn head(&self, thread: ThreadId) -> Result<i64> {
        self.read("head", move |tx| head(tx, thread)).await
    }

    async fn history(&self, thread: ThreadId, id: MessageId) -> Result<History> {
        self.read("history", move |tx| {
            let message = find_live(tx, thread, id)?.ok_or(Error::NotFound)?;
            let mut stmt = tx.prepare_cached(REPLACED).map_err(db("history"))?;
            let mut rows = stmt
                .query(params![thread.as_uuid(), id.as_uuid()])
                .map_err(db("history"))?;
            let mut replaced = Vec::new();
            while let Some(row) = rows.next().map_err(db("history"))? {
                let paths: String = row.get(2).map_err(decode)?;
                replaced.push(Replaced {
                    replaced_by: row.get(0).map_err(decode)?,
                    content: row.get(1).map_err(decode)?,
                    paths: serde_json::from_str(&paths).map_err(decode)?,
                    made_at: timestamp(row.get(3).map_err(decode)?)?,
                    mentions: mentions_from_column(
                        row.get::<_, Option<String>>(4).map_err(decode)?.as_deref(),
                    )?,
                });
            }
            Ok(History::new(&message, replaced))
        })
        .await
    }
}
