//! What an event is, below both the stores that keep events and the relay that delivers
//! them: the encoded event a write hands its store, and the stored event the relay reads back.

use uuid::Uuid;

use crate::message::{ThreadId, Timestamp};

/// An event to keep in the outbox, already encoded by the service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxEvent {
    /// Unique per event; consumers de-duplicate by it.
    pub id: Uuid,
    /// The event type, e.g. `message.created`; also the routing key.
    pub kind: &'static str,
    /// The thread the event concerns.
    pub thread_id: ThreadId,
    /// When the change happened.
    pub time: Timestamp,
    /// The encoded body.
    pub payload: Vec<u8>,
}

/// An event read back from the outbox for delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    /// The outbox's own position: it names the event to acknowledge or release.
    pub position: i64,
    /// Unique per event; consumers de-duplicate by it.
    pub id: Uuid,
    /// The event type, e.g. `message.created`.
    pub kind: String,
    /// The thread the event concerns.
    pub thread_id: ThreadId,
    /// When the change happened.
    pub time: Timestamp,
    /// The encoded body.
    pub payload: Vec<u8>,
}
