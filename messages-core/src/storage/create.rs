//! Creating messages: [`CreateStore`].

use async_trait::async_trait;

use crate::error::Result;
use crate::write::{CreateRequest, Created};

/// New messages, and idempotent retries of them.
#[async_trait]
pub trait CreateStore: Send + Sync + 'static {
    /// Stores the request's message (not yet numbered) with the thread's next number as its
    /// `seq` and `rev`, and its `message.created` event closed with them, atomically; returns
    /// the numbered message. A reply whose target the thread does not hold live is
    /// `Error::InvalidReplyTo` (checked after the idempotency key, so a retry still replays
    /// after its target was deleted). With an idempotency key, a second create with the same
    /// thread, user and key returns the first message (`Created::Replayed`) and takes no
    /// number, or, when the request differs, `Error::IdempotencyConflict`. A new message moves
    /// its author's read position in the thread up to it (their own message is read), in the
    /// same transaction.
    async fn create(&self, request: CreateRequest) -> Result<Created>;
}
