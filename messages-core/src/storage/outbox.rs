//! The outbox: the `Outbox` trait a relay reads through, the encoded event a write hands its
//! store, and the stored event the relay reads back. Each store implements it beside its
//! messages (`sqlite/outbox.rs`, `postgres/outbox.rs`, `memory.rs`).

use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

use crate::error::Result;
use crate::json::close_numbered;
use crate::message::{ThreadId, Timestamp};

/// An event to keep in the outbox, encoded by the service before the store numbered the
/// change it announces.
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
    /// The body's JSON up to, not including, the change's numbers (the body of a message
    /// event is the message JSON, whose last fields are `seq` and `rev`). The store closes
    /// it once it has numbered the change: [`OutboxEvent::payload`].
    pub open_payload: Vec<u8>,
}

impl OutboxEvent {
    /// The body, closed with the numbers the store gave the change.
    pub fn payload(&self, seq: i64, rev: i64) -> Vec<u8> {
        close_payload(&self.open_payload, seq, rev)
    }
}

/// Closes an open payload with a change's numbers, for stores that keep the two apart (a
/// PostgreSQL write numbers its change and writes its event in one statement).
pub(crate) fn close_payload(open: &[u8], seq: i64, rev: i64) -> Vec<u8> {
    let mut payload = Vec::with_capacity(open.len() + 48);
    payload.extend_from_slice(open);
    close_numbered(&mut payload, seq, rev);
    payload
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
    /// `cloudEvents:sequence`: the change's `rev`, so a thread's events are numbered without
    /// gaps in the order their changes committed.
    pub sequence: i64,
    /// The body, complete.
    pub payload: Vec<u8>,
}

/// The relay's side of a store: the events its writes left, until they are delivered.
#[async_trait]
pub trait Outbox: Send + Sync + 'static {
    /// Claims up to `limit` undelivered events for `lease`: other relays skip them until the
    /// lease runs out, so a relay that dies mid-batch delays its events but never loses them.
    /// Events come in the order they were written.
    async fn claim(&self, limit: usize, lease: Duration) -> Result<Vec<StoredEvent>>;

    /// Removes delivered events from the outbox.
    async fn ack(&self, positions: &[i64]) -> Result<()>;

    /// Gives up a claim without delivering (the publisher failed), so the events can be
    /// claimed again at once rather than when the lease runs out.
    async fn release(&self, positions: &[i64]) -> Result<()>;

    /// How many events wait in the outbox, and the time of the oldest.
    async fn pending(&self) -> Result<(u64, Option<Timestamp>)>;
}
