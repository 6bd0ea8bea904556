//! A circuit breaker in front of a service (the cache, and the rate limiter on the same Redis):
//! after a few consecutive failures the service is skipped for a short, growing interval while
//! a background probe checks whether it is back, so an outage costs requests at most one
//! timeout per interval instead of one each.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{Generation, Lookup, PageCache, Window};
use crate::error::{Error, Result};
use crate::message::ThreadId;

/// Settings of the breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker. Default 3.
    pub threshold: u32,
    /// How long the first opening skips the cache. Default 250 ms.
    pub first_interval: Duration,
    /// The longest interval; each failed probe doubles it up to this. Default 5 s.
    pub max_interval: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            threshold: 3,
            first_interval: Duration::from_millis(250),
            max_interval: Duration::from_secs(5),
        }
    }
}

/// What a breaker calls, in the background, to learn whether its service is back.
pub type Probe = Box<dyn Fn() -> BoxFuture<'static, Result<()>> + Send + Sync>;

/// A boxed future, as a [`Probe`] returns.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// A circuit breaker: counts consecutive failures of the calls it guards and, past a
/// threshold, fails them at once for a growing interval while a background probe checks
/// whether the service is back.
///
/// One breaker may guard several users of one service (the Redis cache and the Redis rate
/// limiter share one): a failure of either opens it for both, and one probe closes it.
pub struct Breaker {
    /// What the log lines call the service.
    name: &'static str,
    config: BreakerConfig,
    /// Instants are kept as nanoseconds since this one.
    epoch: Instant,
    failures: AtomicU32,
    /// 0 while closed; else when the next probe may run.
    open_until: AtomicU64,
    /// The current interval, in nanoseconds.
    interval: AtomicU64,
    probing: AtomicBool,
    probe: Probe,
}

impl Breaker {
    /// A closed breaker for the service `name`, probed with `probe` while open.
    pub fn new(name: &'static str, config: BreakerConfig, probe: Probe) -> Arc<Self> {
        Arc::new(Breaker {
            name,
            config,
            epoch: Instant::now(),
            failures: AtomicU32::new(0),
            open_until: AtomicU64::new(0),
            interval: AtomicU64::new(0),
            probing: AtomicBool::new(false),
            probe,
        })
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    fn close(&self) {
        self.failures.store(0, Ordering::Relaxed);
        if self.open_until.swap(0, Ordering::AcqRel) != 0 {
            tracing::info!(service = self.name, "answers again; using it");
        }
    }

    fn open(&self, interval: Duration) {
        let interval = interval.min(self.config.max_interval);
        self.interval
            .store(interval.as_nanos() as u64, Ordering::Relaxed);
        // Never 0, which means closed.
        let until = (self.now() + interval.as_nanos() as u64).max(1);
        self.open_until.store(until, Ordering::Release);
    }

    /// Whether calls go through now.
    pub fn is_closed(&self) -> bool {
        self.open_until.load(Ordering::Acquire) == 0
    }

    /// `Ok` when a call may go through; otherwise the error to fail it with, after starting a
    /// background probe if one is due.
    pub fn admit(self: &Arc<Self>) -> Result<()> {
        let until = self.open_until.load(Ordering::Acquire);
        if until == 0 {
            return Ok(());
        }
        if self.now() >= until && !self.probing.swap(true, Ordering::AcqRel) {
            let breaker = Arc::clone(self);
            tokio::spawn(async move {
                match (breaker.probe)().await {
                    Ok(()) => breaker.close(),
                    Err(error) => {
                        let next =
                            Duration::from_nanos(breaker.interval.load(Ordering::Relaxed)) * 2;
                        tracing::debug!(service = breaker.name, error = %error, next_probe_ms = next.as_millis() as u64, "probe failed");
                        breaker.open(next);
                    }
                }
                breaker.probing.store(false, Ordering::Release);
            });
        }
        Err(Error::unavailable(
            self.name,
            "skipped after consecutive failures; a background probe checks when it is back",
        ))
    }

    /// Counts the outcome of a call that [`Breaker::admit`] let through, and passes it on.
    pub fn record<T>(&self, result: Result<T>) -> Result<T> {
        match &result {
            Ok(_) => {
                if self.failures.load(Ordering::Relaxed) != 0 {
                    self.failures.store(0, Ordering::Relaxed);
                }
            }
            Err(error) => {
                let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
                if failures == self.config.threshold {
                    tracing::warn!(
                        service = self.name,
                        failures,
                        error = %error,
                        skip_ms = self.config.first_interval.as_millis() as u64,
                        "keeps failing; skipping it until a background probe succeeds"
                    );
                    self.open(self.config.first_interval);
                }
            }
        }
        result
    }
}

/// A [`PageCache`] that stops calling a failing cache for a while.
///
/// While open, every call fails at once with [`Error::Unavailable`], which the service treats
/// like any cache failure: reads go to the store, and a write whose invalidation could not be
/// confirmed keeps its thread off the cache until it is. Nothing about staleness changes.
pub struct CircuitBreaker {
    inner: Arc<dyn PageCache>,
    breaker: Arc<Breaker>,
}

impl CircuitBreaker {
    /// Wraps `inner`, probing it with its own [`PageCache::ping`].
    pub fn new(inner: Arc<dyn PageCache>, config: BreakerConfig) -> Self {
        let probed = Arc::clone(&inner);
        let probe: Probe = Box::new(move || {
            let cache = Arc::clone(&probed);
            Box::pin(async move { cache.ping().await })
        });
        CircuitBreaker {
            inner,
            breaker: Breaker::new("cache", config, probe),
        }
    }

    /// Whether calls go through now.
    pub fn is_closed(&self) -> bool {
        self.breaker.is_closed()
    }

    /// The breaker, to guard other users of the same service with.
    pub fn breaker(&self) -> Arc<Breaker> {
        Arc::clone(&self.breaker)
    }
}

#[async_trait]
impl PageCache for CircuitBreaker {
    async fn lookup(&self, thread: ThreadId) -> Result<Lookup> {
        self.breaker.admit()?;
        self.breaker.record(self.inner.lookup(thread).await)
    }

    async fn fill(&self, thread: ThreadId, seen: Generation, window: Arc<Window>) -> Result<bool> {
        self.breaker.admit()?;
        self.breaker
            .record(self.inner.fill(thread, seen, window).await)
    }

    async fn invalidate(&self, thread: ThreadId) -> Result<()> {
        self.breaker.admit()?;
        self.breaker.record(self.inner.invalidate(thread).await)
    }

    async fn ping(&self) -> Result<()> {
        // Readiness asks the cache itself, open or not.
        self.inner.ping().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A cache that fails while `down` and counts the calls that reached it.
    #[derive(Default)]
    struct Flaky {
        down: AtomicBool,
        calls: AtomicUsize,
    }

    impl Flaky {
        fn answer(&self) -> Result<()> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.down.load(Ordering::SeqCst) {
                Err(Error::unavailable("flaky", "down"))
            } else {
                Ok(())
            }
        }
    }

    #[async_trait]
    impl PageCache for Flaky {
        async fn lookup(&self, _: ThreadId) -> Result<Lookup> {
            self.answer().map(|()| Lookup {
                window: None,
                generation: 1,
            })
        }
        async fn fill(&self, _: ThreadId, _: Generation, _: Arc<Window>) -> Result<bool> {
            self.answer().map(|()| true)
        }
        async fn invalidate(&self, _: ThreadId) -> Result<()> {
            self.answer()
        }
        async fn ping(&self) -> Result<()> {
            self.answer()
        }
    }

    #[tokio::test]
    async fn opens_after_the_threshold_probes_in_the_background_and_closes() {
        let flaky = Arc::new(Flaky::default());
        let breaker = CircuitBreaker::new(
            Arc::clone(&flaky) as Arc<dyn PageCache>,
            BreakerConfig {
                threshold: 3,
                first_interval: Duration::from_millis(50),
                max_interval: Duration::from_millis(200),
            },
        );
        let thread = ThreadId::from_uuid(uuid::Uuid::nil());
        flaky.down.store(true, Ordering::SeqCst);
        for _ in 0..3 {
            assert!(breaker.lookup(thread).await.is_err());
        }
        assert!(!breaker.is_closed());
        // Open: a thousand calls fail without reaching the cache.
        for _ in 0..1_000 {
            assert!(breaker.lookup(thread).await.is_err());
        }
        assert_eq!(flaky.calls.load(Ordering::SeqCst), 3);
        // Back up: after the interval a background probe closes the breaker.
        flaky.down.store(false, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !breaker.is_closed() {
            assert!(
                Instant::now() < deadline,
                "the probe never closed the breaker"
            );
            let _ = breaker.lookup(thread).await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(breaker.lookup(thread).await.is_ok());
    }
}
