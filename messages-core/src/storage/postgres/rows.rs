//! The rows every concern of the PostgreSQL store reads: a message's columns (always in the
//! order `thread_id, id, user_id, kind, content, paths, created_at, updated_at, seq, rev,
//! reply_to, reactions, root_id, reply_count, last_reply_at, last_reply_id, reply_users,
//! mentions`),
//! what is kept of a deletion, and the position a read begins with.

use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use super::decode;
use crate::error::Result;
use crate::message::{Mentions, Message, MessageId, MessageKind, ThreadId, Timestamp, UserId};
use crate::removal::Deletion;

/// How many columns a message takes in a row.
pub(super) const COLUMNS: usize = 18;

/// A message from the eighteen columns starting at `at` (thread_id, id, user_id, kind,
/// content, paths, created_at, updated_at, seq, rev, reply_to, reactions, root_id,
/// reply_count, last_reply_at, last_reply_id, reply_users, mentions).
pub(super) fn message_from_row(row: &Row, at: usize) -> Result<Message> {
    let kind: &str = row.try_get(at + 3).map_err(decode)?;
    let created: DateTime<Utc> = row.try_get(at + 6).map_err(decode)?;
    let updated: DateTime<Utc> = row.try_get(at + 7).map_err(decode)?;
    let count: i32 = row.try_get(at + 13).map_err(decode)?;
    let last_reply_at: Option<DateTime<Utc>> = row.try_get(at + 14).map_err(decode)?;
    let last_reply_id: Option<uuid::Uuid> = row.try_get(at + 15).map_err(decode)?;
    let users: Vec<uuid::Uuid> = row.try_get(at + 16).map_err(decode)?;
    let replies = crate::replies::summary_from_columns(
        i64::from(count),
        last_reply_at.map(Timestamp::from),
        last_reply_id.map(MessageId::from_uuid),
        users.into_iter().map(UserId::from_uuid).collect(),
    )?;
    Ok(Message {
        thread_id: ThreadId::from_uuid(row.try_get(at).map_err(decode)?),
        id: MessageId::from_uuid(row.try_get(at + 1).map_err(decode)?),
        user_id: UserId::from_uuid(row.try_get(at + 2).map_err(decode)?),
        kind: MessageKind::parse(kind).map_err(|_| decode(format!("unknown kind {kind:?}")))?,
        content: row.try_get(at + 4).map_err(decode)?,
        paths: row.try_get(at + 5).map_err(decode)?,
        created_at: Timestamp::from(created),
        updated_at: Timestamp::from(updated),
        seq: row.try_get(at + 8).map_err(decode)?,
        rev: row.try_get(at + 9).map_err(decode)?,
        reply_to: row
            .try_get::<_, Option<uuid::Uuid>>(at + 10)
            .map_err(decode)?
            .map(MessageId::from_uuid),
        root_id: row
            .try_get::<_, Option<uuid::Uuid>>(at + 12)
            .map_err(decode)?
            .map(MessageId::from_uuid),
        reactions: crate::reaction::summary_from_json(row.try_get(at + 11).map_err(decode)?)?,
        replies: replies.map(Box::new),
        mentions: mentions_from_column(row.try_get(at + 17).map_err(decode)?)?,
    })
}

/// A message's mentions as stored: their JSON, or NULL for none.
pub(super) fn mentions_from_column(stored: Option<&str>) -> Result<Option<Mentions>> {
    stored
        .map(|json| serde_json::from_str(json).map_err(|e| decode(format!("mentions: {e}"))))
        .transpose()
}

/// The keys of a group's messages' mentions (see `Mentions::keys`), as two arrays: the
/// message's place in the group (1-based, as `WITH ORDINALITY` numbers it) and the key.
pub(super) fn group_mention_keys<'a>(
    messages: impl Iterator<Item = &'a Message>,
) -> (Vec<i64>, Vec<uuid::Uuid>) {
    let (mut places, mut keys) = (Vec::new(), Vec::new());
    for (i, message) in messages.enumerate() {
        for key in Mentions::keys(message.mentions.as_ref()) {
            places.push(i as i64 + 1);
            keys.push(key);
        }
    }
    (places, keys)
}

/// A message's mentions as stored (see `mentions_from_column`).
pub(super) fn mentions_column(mentions: Option<&Mentions>) -> Option<String> {
    mentions.map(|m| serde_json::to_string(m).expect("ids and a flag always serialise to JSON"))
}

/// Reads the position and the messages of rows shaped `head, message columns...`: a read
/// that finds no message still returns the position, its message columns NULL.
pub(super) fn head_and_messages(rows: &[Row]) -> Result<(i64, Vec<Message>)> {
    let head = match rows.first() {
        Some(row) => row.try_get(0).map_err(decode)?,
        None => 0,
    };
    let mut messages = Vec::with_capacity(rows.len());
    for row in rows {
        let id: Option<uuid::Uuid> = row.try_get(2).map_err(decode)?;
        if id.is_some() {
            messages.push(message_from_row(row, 1)?);
        }
    }
    Ok((head, messages))
}

/// The deletion kept in the columns `deleted_at, deleted_by, delete_reason` from `at`, if the
/// message was deleted.
pub(super) fn deletion_from_row(row: &Row, at: usize) -> Result<Option<Deletion>> {
    let Some(deleted_at) = row
        .try_get::<_, Option<DateTime<Utc>>>(at)
        .map_err(decode)?
    else {
        return Ok(None);
    };
    Ok(Some(Deletion {
        at: Timestamp::from(deleted_at),
        by: row
            .try_get::<_, Option<uuid::Uuid>>(at + 1)
            .map_err(decode)?
            .map(UserId::from_uuid),
        reason: row.try_get(at + 2).map_err(decode)?,
    }))
}
