//! Creating messages on SQLite: one write on the writer, its statements here.

use async_trait::async_trait;
use rusqlite::{Connection, params};

use super::SqliteStore;
use super::command::{Command, Statements, Undo};
use super::conversation::follow_on_reply;
use super::error::db;
use super::read_state::move_position;
use super::replies::write_root;
use super::rows::{
    COLUMNS, bump, columns, decode, file_mentions, find_live, mentions_column, message_from_row,
    paths_json, push_event,
};
use crate::error::{Error, Result};
use crate::events::codec;
use crate::message::RequestFingerprint;
use crate::replies;
use crate::storage::CreateStore;
use crate::write::{CreateRequest, Created};

#[async_trait]
impl CreateStore for SqliteStore {
    async fn create(&self, request: CreateRequest) -> Result<Created> {
        self.write(request, Command::Create).await
    }
}

/// The message a key created before, with the fingerprint of the request that created it.
const ORIGINAL: &str = concat!(
    "SELECT ",
    columns!(),
    ", request_hash FROM messages WHERE thread_id = ?1 AND user_id = ?2 AND idempotency_key = ?3"
);

/// The message, numbered with the thread's next number, its event beside it, and its author's
/// read position moved up to it.
const INSERT: &str = "INSERT INTO messages (thread_id, seq, id, user_id, kind, content, paths, \
     created_at, updated_at, rev, idempotency_key, request_hash, reply_to, root_id, mentions) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?2, ?9, ?10, ?11, ?12, ?13)";

/// A create reads what could refuse it (a reused key, a reply's target) before it writes
/// anything, so it needs no savepoint.
impl Statements for CreateRequest {
    type Output = Created;
    const WHAT: &'static str = "create";
    const UNDO: Undo = Undo::Transaction;

    fn write(self, conn: &Connection) -> Result<Created> {
        let CreateRequest {
            mut message,
            idempotency,
            participants,
        } = self;
        if let Some(idem) = &idempotency
            && let Some(replayed) = replay(conn, &message, idem.key.as_str(), idem.fingerprint)?
        {
            return Ok(replayed);
        }
        // A reply's target, and the live root of its conversation when there is one.
        let mut root = None;
        if let Some(target) = message.reply_to {
            let target =
                find_live(conn, message.thread_id, target)?.ok_or(Error::InvalidReplyTo)?;
            let root_id = replies::root_of(&target);
            message.root_id = Some(root_id);
            root = if root_id == target.id {
                Some(target)
            } else {
                find_live(conn, message.thread_id, root_id)?
            };
        }
        let event = codec::created(&message);
        let seq = bump(conn, message.thread_id)?;
        message.seq = seq;
        message.rev = seq;
        let (key, hash) = match &idempotency {
            Some(idem) => (
                Some(idem.key.as_str()),
                Some(idem.fingerprint.as_bytes().as_slice()),
            ),
            None => (None, None),
        };
        conn.prepare_cached(INSERT)
            .and_then(|mut stmt| {
                stmt.execute(params![
                    message.thread_id.as_uuid(),
                    seq,
                    message.id.as_uuid(),
                    message.user_id.as_uuid(),
                    message.kind.as_str(),
                    message.content,
                    paths_json(&message.paths),
                    message.created_at.as_micros(),
                    key,
                    hash,
                    message.reply_to.map(|id| *id.as_uuid()),
                    message.root_id.map(|id| *id.as_uuid()),
                    mentions_column(message.mentions.as_ref()),
                ])
            })
            .map_err(db("insert message"))?;
        if message.mentions.is_some() {
            file_mentions(conn, &message, seq)?;
        }
        push_event(conn, &event, seq, seq)?;
        move_position(conn, message.thread_id, message.user_id, seq, false)?;
        let Some(root) = root else {
            return Ok(Created::New(message));
        };
        follow_on_reply(conn, &root, &message)?;
        let summary = replies::after_reply(root.replies.as_deref(), &message, participants);
        let root = write_root(conn, root, Some(summary), message.created_at)?;
        Ok(Created::Reply {
            reply: message,
            root: Box::new(root),
        })
    }
}

/// The message a reused key created, `Created::Replayed`, or the conflict when the request
/// differs; `None` for a key not used before.
fn replay(
    conn: &Connection,
    message: &crate::message::Message,
    key: &str,
    fingerprint: RequestFingerprint,
) -> Result<Option<Created>> {
    let mut stmt = conn
        .prepare_cached(ORIGINAL)
        .map_err(db("idempotent replay"))?;
    let mut rows = stmt
        .query(params![
            message.thread_id.as_uuid(),
            message.user_id.as_uuid(),
            key
        ])
        .map_err(db("idempotent replay"))?;
    let Some(row) = rows.next().map_err(db("idempotent replay"))? else {
        return Ok(None);
    };
    let stored: Vec<u8> = row.get(COLUMNS).map_err(decode)?;
    let stored: [u8; 32] = stored
        .try_into()
        .map_err(|_| decode("bad request_hash length"))?;
    if RequestFingerprint::from_bytes(stored) != fingerprint {
        return Err(Error::IdempotencyConflict);
    }
    Ok(Some(Created::Replayed(message_from_row(row, 0)?)))
}
