//! Durable message history: the `MessageStore` trait, and beside it the `Outbox` trait the
//! relay uses, with one backend per file implementing both.
//!
//! A store writes a message change and the event that announces it atomically: the service
//! hands it the encoded event, and the store keeps it in its outbox until the relay has
//! delivered it. The store knows nothing of caches or brokers.

use std::time::Duration;

use async_trait::async_trait;

use crate::error::Result;
pub use crate::event::{OutboxEvent, StoredEvent};
use crate::message::{
    IdempotencyKey, Message, MessageId, MessagePatch, RequestFingerprint, ThreadId, Timestamp,
    UserId,
};
use crate::page::{Page, PageQuery, PageSize};

pub mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;

/// Builds the event for an edit once the store knows the edited message.
pub type UpdateEvent<'a> = &'a (dyn Fn(&Message) -> OutboxEvent + Send + Sync);

/// What a create did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Created {
    /// A new message was stored.
    New(Message),
    /// The idempotency key was seen before with the same request: nothing was stored, and
    /// this is the message the first request created.
    Replayed(Message),
}

impl Created {
    /// The message, new or replayed.
    pub fn message(&self) -> &Message {
        match self {
            Created::New(m) | Created::Replayed(m) => m,
        }
    }
}

/// An idempotency key and the fingerprint of the request that carries it.
#[derive(Clone, Copy, Debug)]
pub struct Idempotency<'a> {
    /// The client's key, scoped to the thread and the user.
    pub key: &'a IdempotencyKey,
    /// Tells a retry (same fingerprint) from a different request reusing the key.
    pub fingerprint: RequestFingerprint,
}

/// Where messages live. Every method names the thread, so a store can be distributed by it.
#[async_trait]
pub trait MessageStore: Send + Sync + 'static {
    /// Stores `message` and `event` atomically. With `idempotency`, a second create with the
    /// same thread, user and key returns the first message (`Created::Replayed`) or, when the
    /// request differs, `Error::IdempotencyConflict`.
    async fn create(
        &self,
        message: &Message,
        idempotency: Option<Idempotency<'_>>,
        event: OutboxEvent,
    ) -> Result<Created>;

    /// A live message of the thread, or `Error::NotFound`.
    async fn get(&self, thread: ThreadId, id: MessageId) -> Result<Message>;

    /// Applies `patch` if `user` wrote the message; stores the event `event` builds from the
    /// edited message in the same transaction. `NotFound` for a missing, deleted or
    /// other-thread message; `Forbidden` for another user's.
    async fn update(
        &self,
        thread: ThreadId,
        id: MessageId,
        user: UserId,
        patch: &MessagePatch,
        now: Timestamp,
        event: UpdateEvent<'_>,
    ) -> Result<Message>;

    /// Soft-deletes the message if `user` wrote it, storing `event` in the same transaction.
    /// Errors as for [`MessageStore::update`].
    async fn delete(
        &self,
        thread: ThreadId,
        id: MessageId,
        user: UserId,
        now: Timestamp,
        event: OutboxEvent,
    ) -> Result<()>;

    /// A page of live messages, read with `size + 1` rows so `has_more` is exact.
    async fn page(&self, thread: ThreadId, query: PageQuery, size: PageSize) -> Result<Page>;

    /// Whether the store can answer now (for readiness).
    async fn ping(&self) -> Result<()>;
}

/// The relay's side of a store: the events its writes left, until they are delivered.
#[async_trait]
pub trait Outbox: Send + Sync + 'static {
    /// Claims up to `limit` undelivered events for `lease`: other relays skip them until the
    /// lease runs out, so a relay that dies mid-batch delays its events but never loses them.
    async fn claim(&self, limit: usize, lease: Duration) -> Result<Vec<StoredEvent>>;

    /// Removes delivered events from the outbox.
    async fn ack(&self, positions: &[i64]) -> Result<()>;

    /// Gives up a claim without delivering (the publisher failed), so the events can be
    /// claimed again at once rather than when the lease runs out.
    async fn release(&self, positions: &[i64]) -> Result<()>;

    /// How many events wait in the outbox, and the time of the oldest.
    async fn pending(&self) -> Result<(u64, Option<Timestamp>)>;
}
