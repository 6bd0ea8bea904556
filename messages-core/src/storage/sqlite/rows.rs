//! The rows every concern of the SQLite store reads and writes: a message's columns, the
//! thread's counter (its next number), the event written beside a change, a message found by
//! id with its deletion.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::error::db;
use crate::error::{Error, Result};
use crate::message::{Mentions, Message, MessageId, MessageKind, ThreadId, Timestamp, UserId};
use crate::removal::Deletion;
use crate::storage::OutboxEvent;

/// A row that does not decode means the file does not hold what this crate wrote: a bug.
pub(super) fn decode(e: impl Into<crate::error::BoxError>) -> Error {
    Error::internal("decode row", e)
}

/// The columns of a message, in the order [`message_from_row`] reads them.
macro_rules! columns {
    () => {
        "thread_id, id, user_id, kind, content, paths, created_at, updated_at, seq, rev, \
         reply_to, reactions, root_id, reply_count, last_reply_at, last_reply_id, reply_users, \
         mentions"
    };
}
pub(super) use columns;

pub(super) fn timestamp(micros: i64) -> Result<Timestamp> {
    Timestamp::checked_from_micros(micros)
        .ok_or_else(|| decode(format!("time {micros} out of range")))
}

/// How many columns `columns!()` names.
pub(super) const COLUMNS: usize = 18;

/// A message from the eighteen columns of `columns!()` starting at `at`.
pub(super) fn message_from_row(row: &Row<'_>, at: usize) -> Result<Message> {
    let kind: String = row.get(at + 3).map_err(decode)?;
    let paths: String = row.get(at + 5).map_err(decode)?;
    let reply_to: Option<uuid::Uuid> = row.get(at + 10).map_err(decode)?;
    let reactions: String = row.get(at + 11).map_err(decode)?;
    let root_id: Option<uuid::Uuid> = row.get(at + 12).map_err(decode)?;
    let last_reply_at: Option<i64> = row.get(at + 14).map_err(decode)?;
    let last_reply_id: Option<uuid::Uuid> = row.get(at + 15).map_err(decode)?;
    let reply_users: String = row.get(at + 16).map_err(decode)?;
    let mentions: Option<String> = row.get(at + 17).map_err(decode)?;
    let replies = crate::replies::summary_from_columns(
        row.get(at + 13).map_err(decode)?,
        last_reply_at.map(timestamp).transpose()?,
        last_reply_id.map(MessageId::from_uuid),
        crate::replies::participants_from_text(&reply_users)?,
    )?;
    Ok(Message {
        thread_id: ThreadId::from_uuid(row.get(at).map_err(decode)?),
        id: MessageId::from_uuid(row.get(at + 1).map_err(decode)?),
        user_id: UserId::from_uuid(row.get(at + 2).map_err(decode)?),
        kind: MessageKind::parse(&kind).map_err(|_| decode(format!("unknown kind {kind:?}")))?,
        content: row.get(at + 4).map_err(decode)?,
        paths: serde_json::from_str(&paths).map_err(decode)?,
        created_at: timestamp(row.get(at + 6).map_err(decode)?)?,
        updated_at: timestamp(row.get(at + 7).map_err(decode)?)?,
        seq: row.get(at + 8).map_err(decode)?,
        rev: row.get(at + 9).map_err(decode)?,
        reply_to: reply_to.map(MessageId::from_uuid),
        root_id: root_id.map(MessageId::from_uuid),
        reactions: crate::reaction::summary_from_json(&reactions)?,
        replies: replies.map(Box::new),
        mentions: mentions_from_column(mentions.as_deref())?,
    })
}

/// A message's mentions as stored: their JSON, or NULL for none.
pub(super) fn mentions_from_column(stored: Option<&str>) -> Result<Option<Mentions>> {
    stored
        .map(|json| serde_json::from_str(json).map_err(decode))
        .transpose()
}

/// Files `message`, numbered `seq`, under its mentions' keys (see `Mentions::keys`) with its
/// author and id, in place of the rows it had: what a reader's mention count and list
/// read.
pub(super) fn file_mentions(conn: &Connection, message: &Message, seq: i64) -> Result<()> {
    let thread = message.thread_id.as_uuid();
    unfile_mentions(conn, message.thread_id, seq)?;
    for key in Mentions::keys(message.mentions.as_ref()) {
        conn.prepare_cached(
            "INSERT INTO mentions (thread_id, user_id, seq, author, id) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .and_then(|mut stmt| {
            stmt.execute(params![
                thread,
                key,
                seq,
                message.user_id.as_uuid(),
                message.id.as_uuid(),
            ])
        })
        .map_err(db("file mentions"))?;
    }
    Ok(())
}

/// Removes the mention rows of the message numbered `seq` (it is deleted, or refiled).
pub(super) fn unfile_mentions(conn: &Connection, thread: ThreadId, seq: i64) -> Result<()> {
    conn.prepare_cached("DELETE FROM mentions WHERE thread_id = ?1 AND seq = ?2")
        .and_then(|mut stmt| stmt.execute(params![thread.as_uuid(), seq]))
        .map(drop)
        .map_err(db("unfile mentions"))
}

/// A message's mentions as stored (see `mentions_from_column`).
pub(super) fn mentions_column(mentions: Option<&Mentions>) -> Option<String> {
    mentions.map(|m| serde_json::to_string(m).expect("ids and a flag always serialise to JSON"))
}

pub(super) fn paths_json(paths: &[String]) -> String {
    serde_json::to_string(paths).expect("a list of strings always serialises to JSON")
}

/// Takes the thread's next number.
pub(super) fn bump(conn: &Connection, thread: ThreadId) -> Result<i64> {
    conn.prepare_cached(
        "INSERT INTO threads (thread_id, head) VALUES (?1, 1) \
         ON CONFLICT (thread_id) DO UPDATE SET head = head + 1 RETURNING head",
    )
    .and_then(|mut stmt| stmt.query_row([thread.as_uuid()], |row| row.get(0)))
    .map_err(db("number the change"))
}

/// Writes `event`, closed with the change's numbers.
pub(super) fn push_event(conn: &Connection, event: &OutboxEvent, seq: i64, rev: i64) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO outbox (id, kind, thread_id, time, sequence, payload) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            event.id,
            event.kind,
            event.thread_id.as_uuid(),
            event.time.as_micros(),
            rev,
            event.payload(seq, rev),
        ])
    })
    .map(drop)
    .map_err(db("write event"))
}

/// The thread's position, 0 for a thread never written.
pub(super) fn head(conn: &Connection, thread: ThreadId) -> Result<i64> {
    conn.prepare_cached("SELECT head FROM threads WHERE thread_id = ?1")
        .and_then(|mut stmt| {
            stmt.query_row([thread.as_uuid()], |row| row.get(0))
                .optional()
        })
        .map(|head| head.unwrap_or(0))
        .map_err(db("read position"))
}

/// A message of the thread, deleted or not, with what is kept of its deletion.
pub(super) fn find(
    conn: &Connection,
    thread: ThreadId,
    id: MessageId,
) -> Result<Option<(Message, Option<Deletion>)>> {
    const FIND: &str = concat!(
        "SELECT ",
        columns!(),
        ", deleted_at, deleted_by, delete_reason FROM messages WHERE thread_id = ?1 AND id = ?2"
    );
    let mut stmt = conn.prepare_cached(FIND).map_err(db("find message"))?;
    let mut rows = stmt
        .query(params![thread.as_uuid(), id.as_uuid()])
        .map_err(db("find message"))?;
    match rows.next().map_err(db("find message"))? {
        Some(row) => Ok(Some((
            message_from_row(row, 0)?,
            deletion_from_row(row, COLUMNS)?,
        ))),
        None => Ok(None),
    }
}

/// A live message of the thread, if it holds one by that id.
pub(super) fn find_live(
    conn: &Connection,
    thread: ThreadId,
    id: MessageId,
) -> Result<Option<Message>> {
    Ok(match find(conn, thread, id)? {
        Some((message, None)) => Some(message),
        _ => None,
    })
}

/// The deletion kept in the columns `deleted_at, deleted_by, delete_reason` from `at`, if the
/// message was deleted.
pub(super) fn deletion_from_row(row: &Row<'_>, at: usize) -> Result<Option<Deletion>> {
    let Some(deleted_at) = row.get::<_, Option<i64>>(at).map_err(decode)? else {
        return Ok(None);
    };
    Ok(Some(Deletion {
        at: timestamp(deleted_at)?,
        by: row
            .get::<_, Option<uuid::Uuid>>(at + 1)
            .map_err(decode)?
            .map(UserId::from_uuid),
        reason: row.get(at + 2).map_err(decode)?,
    }))
}
