//! The in-process sink: the embedded default publisher. It logs each event and hands it to
//! whoever subscribed in the same process.

use async_trait::async_trait;
use tokio::sync::broadcast;

use super::Publisher;
use crate::error::Result;
use crate::storage::StoredEvent;

/// Delivers events to in-process subscribers and to the log.
#[derive(Debug)]
pub struct MemorySink {
    sender: broadcast::Sender<StoredEvent>,
}

impl MemorySink {
    /// A sink whose subscribers may fall `capacity` events behind before they miss some.
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(1));
        MemorySink { sender }
    }

    /// Receives every event delivered from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<StoredEvent> {
        self.sender.subscribe()
    }
}

impl Default for MemorySink {
    fn default() -> Self {
        MemorySink::new(1024)
    }
}

#[async_trait]
impl Publisher for MemorySink {
    async fn publish(&self, events: &[StoredEvent]) -> Result<()> {
        for event in events {
            tracing::info!(
                event_id = %event.id,
                event_type = %event.kind,
                thread_id = %event.thread_id,
                "event delivered in process"
            );
            // No subscriber is not an error: the in-process sink is best effort by design.
            let _ = self.sender.send(event.clone());
        }
        Ok(())
    }
}
