//! Events about message changes: how they are encoded, the relay that moves them from the
//! store's outbox to a publisher, and the publishers.

use async_trait::async_trait;

use crate::error::Result;
use crate::storage::StoredEvent;

#[cfg(feature = "amqp")]
pub mod amqp;
pub mod codec;
pub mod memory;
pub mod outbox;

/// Delivers events to their consumers.
#[async_trait]
pub trait Publisher: Send + Sync + 'static {
    /// Delivers every event of `events`, returning only once all of them are accepted (for a
    /// broker: confirmed). An error means none may be assumed delivered; the relay retries
    /// them, so consumers de-duplicate by event id.
    async fn publish(&self, events: &[StoredEvent]) -> Result<()>;
}
