//! The outbox relay: moves committed events from the store's outbox to a publisher, deleting
//! each only after the publisher accepted it. [`ServiceBuilder::build`](crate::ServiceBuilder::build)
//! hands it back beside the service: until it runs, the events stay in the store.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::Publisher;
use crate::error::Result;
use crate::storage::MessageStore;

/// What one pass of the relay did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelayReport {
    /// Events the publisher accepted and the outbox dropped.
    pub published: usize,
}

/// Settings of the relay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RelayConfig {
    /// Events claimed per pass. Default 256.
    pub batch: usize,
    /// How long a claim keeps other relays away from a batch. Default 30 s.
    pub lease: Duration,
    /// How often to look for events when nobody signals: this process's writes wake the relay
    /// at once, so the poll only finds other replicas' events and leases that ran out.
    /// Default 500 ms.
    pub poll: Duration,
    /// The longest wait between retries after a failure. Default 5 s.
    pub max_backoff: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            batch: 256,
            lease: Duration::from_secs(30),
            poll: Duration::from_millis(500),
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

/// Moves events from a store's outbox to a publisher: [`Relay::spawn`] it, or await
/// [`Relay::run`] beside the service, or step it with [`Relay::relay_once`] in tests.
#[must_use = "the relay delivers the events writes leave in the store: run it"]
pub struct Relay {
    outbox: Arc<dyn MessageStore>,
    publisher: Arc<dyn Publisher>,
    wake: Arc<Notify>,
    config: RelayConfig,
    stats: Arc<RelayStats>,
}

impl Relay {
    /// A relay over `outbox`, the service's store; `wake` is signalled by the service after
    /// each write.
    pub(crate) fn new(
        outbox: Arc<dyn MessageStore>,
        publisher: Arc<dyn Publisher>,
        wake: Arc<Notify>,
        config: RelayConfig,
    ) -> Self {
        Relay {
            outbox,
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

    /// Runs the relay on a task of its own until [`RelayHandle::stop`] (or the handle's drop,
    /// which stops it at once). Needs a tokio runtime.
    pub fn spawn(self) -> RelayHandle {
        let (finish, finished) = tokio::sync::oneshot::channel::<Instant>();
        let task = tokio::spawn(self.run(async move {
            // A dropped handle stops the relay at once.
            finished.await.unwrap_or_else(|_| Instant::now())
        }));
        RelayHandle { finish, task }
    }

    /// One pass: claim a batch, publish it, acknowledge it. Tests call this to drain the
    /// outbox deterministically.
    pub async fn relay_once(&self) -> Result<RelayReport> {
        let events = self
            .outbox
            .claim(self.config.batch, self.config.lease)
            .await?;
        if events.is_empty() {
            return Ok(RelayReport::default());
        }
        let positions: Vec<i64> = events.iter().map(|e| e.position).collect();
        if let Err(error) = self.publisher.publish(&events).await {
            self.stats
                .failed
                .fetch_add(events.len() as u64, Ordering::Relaxed);
            // Best effort: if the store is unreachable too, the lease frees them later.
            if let Err(release) = self.outbox.release(&positions).await {
                tracing::warn!(error = %release, "could not release claimed events");
            }
            return Err(error);
        }
        self.stats
            .published
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        self.outbox.ack(&positions).await?;
        Ok(RelayReport {
            published: events.len(),
        })
    }

    /// Relays until `finish` completes with a deadline, then delivers what is still pending
    /// until the outbox is empty or the deadline passes, and returns.
    ///
    /// The server completes `finish` only after in-flight requests have drained, so the events
    /// of writes that finish during the drain are delivered too.
    pub async fn run(self, finish: impl Future<Output = Instant>) {
        tokio::pin!(finish);
        let mut backoff = Duration::from_millis(50);
        let deadline = loop {
            let pass = self.relay_once().await;
            match pass {
                Ok(report) if report.published == self.config.batch => {
                    backoff = Duration::from_millis(50);
                    // A full batch: more may be waiting. Check for the end without waiting.
                    tokio::select! {
                        biased;
                        deadline = &mut finish => break deadline,
                        () = std::future::ready(()) => {}
                    }
                }
                Ok(_) => {
                    backoff = Duration::from_millis(50);
                    tokio::select! {
                        deadline = &mut finish => break deadline,
                        () = self.wake.notified() => {}
                        () = tokio::time::sleep(self.config.poll) => {}
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
                        deadline = &mut finish => break deadline,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(self.config.max_backoff);
                }
            }
        };
        self.deliver_pending(deadline).await;
    }

    /// Passes until one finds nothing to claim, or until `deadline`.
    async fn deliver_pending(&self, deadline: Instant) {
        let mut delivered = 0usize;
        let mut backoff = Duration::from_millis(50);
        loop {
            match tokio::time::timeout_at(deadline, self.relay_once()).await {
                Ok(Ok(report)) if report.published == 0 => {
                    tracing::info!(delivered, "outbox relay stopped; nothing left to deliver");
                    return;
                }
                Ok(Ok(report)) => delivered += report.published,
                Ok(Err(error)) => {
                    tracing::warn!(error = %error, "outbox relay failed while draining");
                    if tokio::time::timeout_at(deadline, tokio::time::sleep(backoff))
                        .await
                        .is_err()
                    {
                        break;
                    }
                    backoff = (backoff * 2).min(self.config.max_backoff);
                }
                Err(_) => break,
            }
        }
        let pending = self.outbox.pending().await.map(|(n, _)| n).ok();
        tracing::warn!(
            delivered,
            pending,
            "outbox relay stopped at the drain deadline; the rest stays in the outbox for the next start (lost if the outbox is in memory)"
        );
    }
}

/// A relay running on a task of its own, from [`Relay::spawn`].
#[must_use = "dropping the handle stops the relay at once; stop() delivers what is pending first"]
pub struct RelayHandle {
    finish: tokio::sync::oneshot::Sender<Instant>,
    task: tokio::task::JoinHandle<()>,
}

impl RelayHandle {
    /// Stops the relay after it has delivered what is pending, for at most `within`, and waits
    /// until it has stopped.
    pub async fn stop(self, within: Duration) {
        let _ = self.finish.send(Instant::now() + within);
        if let Err(error) = self.task.await {
            tracing::error!(%error, "outbox relay task failed");
        }
    }
}
