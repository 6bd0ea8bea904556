//! Event encoding: the types, the bodies consumers receive, and a decode for consumers.
//!
//! A created or updated event carries the message JSON exactly as the HTTP API returns it (the
//! body consumers of the old service read); a deleted event carries
//! `{"id", "thread_id", "deleted_at"}`.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::message::{Message, MessageId, ThreadId, Timestamp};
use crate::storage::OutboxEvent;

/// Type (and routing key) of the event for a new message.
pub const CREATED: &str = "message.created";
/// Type (and routing key) of the event for an edit.
pub const UPDATED: &str = "message.updated";
/// Type (and routing key) of the event for a deletion.
pub const DELETED: &str = "message.deleted";

/// The body of a deleted event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deleted {
    /// The deleted message.
    pub id: MessageId,
    /// Its thread.
    pub thread_id: ThreadId,
    /// When it was deleted.
    pub deleted_at: Timestamp,
}

/// The event announcing `message`.
pub fn created(message: &Message) -> OutboxEvent {
    OutboxEvent {
        id: Uuid::now_v7(),
        kind: CREATED,
        thread_id: message.thread_id,
        time: message.created_at,
        payload: message.to_json(),
    }
}

/// The event announcing an edit; `message` is the message after it.
pub fn updated(message: &Message) -> OutboxEvent {
    OutboxEvent {
        id: Uuid::now_v7(),
        kind: UPDATED,
        thread_id: message.thread_id,
        time: message.updated_at,
        payload: message.to_json(),
    }
}

/// The event announcing a deletion.
pub fn deleted(thread_id: ThreadId, id: MessageId, deleted_at: Timestamp) -> OutboxEvent {
    let body = Deleted {
        id,
        thread_id,
        deleted_at,
    };
    OutboxEvent {
        id: Uuid::now_v7(),
        kind: DELETED,
        thread_id,
        time: deleted_at,
        // A struct of ids and a time always serialises.
        payload: serde_json::to_vec(&body).unwrap_or_default(),
    }
}

/// An event's body, decoded by its type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventBody {
    /// A new message.
    Created(Message),
    /// An edited message, after the edit.
    Updated(Message),
    /// A deletion.
    Deleted(Deleted),
}

/// Decodes a body given the event's type, for consumers and tests.
pub fn decode(kind: &str, payload: &[u8]) -> Result<EventBody> {
    let bad = |e: serde_json::Error| Error::invalid("event", e.to_string());
    match kind {
        CREATED => serde_json::from_slice(payload)
            .map(EventBody::Created)
            .map_err(bad),
        UPDATED => serde_json::from_slice(payload)
            .map(EventBody::Updated)
            .map_err(bad),
        DELETED => serde_json::from_slice(payload)
            .map(EventBody::Deleted)
            .map_err(bad),
        other => Err(Error::invalid("event", format!("unknown type {other}"))),
    }
}
