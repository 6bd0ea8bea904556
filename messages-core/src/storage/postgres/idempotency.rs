//! Idempotent retries on PostgreSQL: a reused key told apart from every other failure, and
//! the message it created before, answered as a replay (or the conflict when the request
//! differs). Shared by top-level creates and replies.

use super::rows::{COLUMNS, message_from_row};
use super::{db, decode};
use crate::error::{Error, Result};
use crate::message::{Message, RequestFingerprint};
use crate::write::{Created, Idempotency};
use tokio_postgres::error::SqlState;

/// The message a key created, and the fingerprint of the request that created it.
const ORIGINAL: &str = r#"
SELECT thread_id, id, user_id, kind, content, paths, created_at, updated_at, seq, rev,
       reply_to, reactions, root_id, reply_count, last_reply_at, last_reply_id,
       reply_users, mentions, request_hash
FROM messages
WHERE thread_id = $1 AND user_id = $2 AND idempotency_key = $3
"#;

/// Tells a unique violation of the idempotency index from every other failure.
pub(super) fn is_reused_key(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
        && e.as_db_error().and_then(|d| d.constraint()) == Some("messages_idempotency")
}

/// The message a key created before (`Created::Replayed`), the conflict when the request
/// differs, `None` for a key not used before.
pub(super) async fn replay_if_used(
    client: &deadpool_postgres::Object,
    message: &Message,
    idempotency: &Idempotency,
) -> Result<Option<Created>> {
    match replay(client, message, idempotency).await {
        Err(Error::NotFound) => Ok(None),
        replayed => replayed.map(Some),
    }
}

/// The message a reused key created, or the conflict.
async fn replay(
    client: &deadpool_postgres::Object,
    message: &Message,
    idempotency: &Idempotency,
) -> Result<Created> {
    let stmt = client
        .prepare_cached(ORIGINAL)
        .await
        .map_err(db("prepare"))?;
    let key = idempotency.key.as_str();
    let row = client
        .query_opt(
            &stmt,
            &[message.thread_id.as_uuid(), message.user_id.as_uuid(), &key],
        )
        .await
        .map_err(db("idempotent replay"))?
        .ok_or(Error::NotFound)?;
    let stored: Vec<u8> = row.try_get(COLUMNS).map_err(decode)?;
    let stored: [u8; 32] = stored
        .try_into()
        .map_err(|_| decode("bad request_hash length"))?;
    if RequestFingerprint::from_bytes(stored) != idempotency.fingerprint {
        return Err(Error::IdempotencyConflict);
    }
    Ok(Created::Replayed(message_from_row(&row, 0)?))
}
