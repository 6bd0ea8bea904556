//! The outbox relay: moves committed events from the store to a publisher, deleting each only
//! after the publisher accepted it.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use super::Publisher;
use crate::error::Result;
use crate::storage::MessageStore;

/// What one pass of the relay did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelayReport {
    /// Events claimed from the outbox.
    pub claimed: usize,
    /// Events the publisher accepted and the outbox dropped.
    pub published: usize,
}

/// Settings of the relay.
#[derive(Clone, Copy, Debug)]
pub struct RelayConfig {
    /// Events claimed per pass.
    pub batch: usize,
    /// How long a claim keeps other relays away from a batch.
    pub lease: Duration,
    /// How often to look for events when nobody signals.
    pub poll: Duration,
    /// The longest wait between retries after a failure.
    pub max_backoff: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            batch: 256,
            lease: Duration::from_secs(30),
            poll: Duration::from_secs(1),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// What the relay did since it started, for metrics.
#[derive(Debug, Default)]
pub struct RelayStats {
    published: AtomicU64,
    failed: AtomicU64,
}

impl RelayStats {
    /// Events the publisher accepted.
    pub fn published(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
    }

    /// Events whose publication failed (each retry counts again).
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }
}

/// Moves events from a store's outbox to a publisher.
pub struct Relay {
    store: Arc<dyn MessageStore>,
    publisher: Arc<dyn Publisher>,
    wake: Arc<Notify>,
    config: RelayConfig,
    stats: Arc<RelayStats>,
}

impl Relay {
    /// A relay; `wake` is signalled by the service after each write.
    pub fn new(
        store: Arc<dyn MessageStore>,
        publisher: Arc<dyn Publisher>,
        wake: Arc<Notify>,
        config: RelayConfig,
    ) -> Self {
        Relay {
            store,
            publisher,
            wake,
            config,
            stats: Arc::default(),
        }
    }

    /// The relay's counters, shared with whoever reports them.
    pub fn stats(&self) -> Arc<RelayStats> {
        Arc::clone(&self.stats)
    }

    /// One pass: claim a batch, publish it, acknowledge it. Tests call this to drain the
    /// outbox deterministically.
    pub async fn relay_once(&self) -> Result<RelayReport> {
        let events = self
            .store
            .claim_events(self.config.batch, self.config.lease)
            .await?;
        if events.is_empty() {
            return Ok(RelayReport::default());
        }
        let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
        if let Err(error) = self.publisher.publish(&events).await {
            self.stats
                .failed
                .fetch_add(events.len() as u64, Ordering::Relaxed);
            // Best effort: if the store is unreachable too, the lease frees them later.
            if let Err(release) = self.store.release_events(&seqs).await {
                tracing::warn!(error = %release, "could not release claimed events");
            }
            return Err(error);
        }
        self.stats
            .published
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        self.store.ack_events(&seqs).await?;
        Ok(RelayReport {
            claimed: events.len(),
            published: events.len(),
        })
    }

    /// Relays until `shutdown` completes, finishing the batch in flight first.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut backoff = Duration::from_millis(50);
        loop {
            let pass = self.relay_once().await;
            match pass {
                Ok(report) if report.claimed == self.config.batch => {
                    backoff = Duration::from_millis(50);
                    // A full batch: more may be waiting. Check for shutdown without waiting.
                    tokio::select! {
                        biased;
                        _ = &mut shutdown => return,
                        _ = std::future::ready(()) => {}
                    }
                }
                Ok(_) => {
                    backoff = Duration::from_millis(50);
                    tokio::select! {
                        _ = &mut shutdown => return,
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(self.config.poll) => {}
                    }
                }
                Err(error) => {
                    tracing::warn!(
                        error = %error,
                        retry_in_ms = backoff.as_millis() as u64,
                        "outbox relay failed; events stay in the outbox"
                    );
                    // Writes do not shorten the back-off: the failing side needs time.
                    tokio::select! {
                        _ = &mut shutdown => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(self.config.max_backoff);
                }
            }
        }
    }
}
