//! Prometheus metrics: request counts and latencies by route and status, recorded as requests
//! finish, and the cache, store and outbox figures, read when `/metrics` is scraped.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use messages_core::events::outbox::RelayStats;
use messages_core::storage::{
    Created, Idempotency, MessageStore, Outbox, OutboxEvent, UpdateEvent,
};
use messages_core::{
    Around, Changes, ChangesLimit, Message, MessageId, MessagePatch, MessageService, Page,
    PageQuery, PageSize, ThreadId, Timestamp, Tombstone, UserId,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Seconds of the request-latency histogram's buckets.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide Prometheus recorder once; later calls (a second application in
/// the same process, as in tests) share it. `None` if another recorder was installed first by
/// an embedding program.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let built = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("http_request_duration_seconds".into()),
                    LATENCY_BUCKETS,
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("store_operation_duration_seconds".into()),
                        LATENCY_BUCKETS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("live_notification_lag_seconds".into()),
                        LATENCY_BUCKETS,
                    )
                })
                .and_then(|b| b.install_recorder());
            match built {
                Ok(handle) => {
                    // Histograms buffer their samples until upkeep folds them into buckets;
                    // without it memory grows with every request when nobody scrapes.
                    let upkeep = handle.clone();
                    let spawned = std::thread::Builder::new()
                        .name("metrics-upkeep".into())
                        .spawn(move || loop {
                            std::thread::sleep(Duration::from_secs(5));
                            upkeep.run_upkeep();
                        });
                    if let Err(error) = spawned {
                        tracing::warn!(%error, "metrics upkeep thread not started");
                    }
                    Some(handle)
                }
                Err(error) => {
                    tracing::warn!(%error, "metrics recorder not installed; /metrics reports gauges only");
                    None
                }
            }
        })
        .clone()
}

/// A request series: route, method, status.
type Series = (&'static str, http::Method, u16);
/// The handles of one series.
type Handles = (metrics::Counter, metrics::Histogram);

/// A worker thread's handles: the series of its last request, then every series it has seen.
#[derive(Default)]
struct ThreadHandles {
    last: Option<(Series, Handles)>,
    all: std::collections::HashMap<Series, Handles, foldhash::fast::RandomState>,
}

thread_local! {
    /// Each worker thread's handles, by series: registering a labelled metric allocates and
    /// hashes its labels, so it happens once per thread and series; a run of requests of one
    /// series (the common case under load) compares one key and hashes nothing.
    static HANDLES: std::cell::RefCell<ThreadHandles> =
        std::cell::RefCell::new(ThreadHandles::default());
}

/// Records one finished request.
pub fn record_request(route: &'static str, method: &http::Method, status: u16, elapsed: Duration) {
    HANDLES.with(|handles| {
        let mut handles = handles.borrow_mut();
        let handles = &mut *handles;
        if let Some(((r, m, s), (counter, histogram))) = &handles.last
            && std::ptr::eq(*r, route)
            && *s == status
            && m == method
        {
            counter.increment(1);
            histogram.record(elapsed.as_secs_f64());
            return;
        }
        let series = (route, method.clone(), status);
        let (counter, histogram) = handles.all.entry(series.clone()).or_insert_with(|| {
            let labels = [
                ("route", route.to_owned()),
                ("method", method.as_str().to_owned()),
                ("status", status.to_string()),
            ];
            (
                metrics::counter!("http_requests_total", &labels),
                metrics::histogram!("http_request_duration_seconds", &labels),
            )
        });
        counter.increment(1);
        histogram.record(elapsed.as_secs_f64());
        handles.last = Some((series, (counter.clone(), histogram.clone())));
    });
}

/// The live-delivery metrics, registered once: events are counted per batch per stream, too
/// often to look a metric up by name each time.
struct Live {
    open: metrics::Gauge,
    sent: metrics::Counter,
    slow: metrics::Counter,
    lag: metrics::Histogram,
}

fn live() -> &'static Live {
    static LIVE: OnceLock<Live> = OnceLock::new();
    LIVE.get_or_init(|| Live {
        open: metrics::gauge!("live_streams_open"),
        sent: metrics::counter!("live_events_sent_total"),
        slow: metrics::counter!("live_slow_readers_closed_total"),
        lag: metrics::histogram!("live_notification_lag_seconds"),
    })
}

/// An event stream opened.
pub fn stream_opened() {
    live().open.increment(1.0);
}

/// An event stream closed.
pub fn stream_closed() {
    live().open.decrement(1.0);
}

/// `n` events went to a stream's reader.
pub fn stream_events_sent(n: u64) {
    live().sent.increment(n);
}

/// A stream was closed because its reader was too slow.
pub fn stream_slow_reader_closed() {
    live().slow.increment(1);
}

/// A hint from another replica arrived, `lag` after its write committed.
pub fn notification_lag(lag: Duration) {
    live().lag.record(lag.as_secs_f64());
}

/// Reads a pool's size, idle connections and waiting callers.
pub type PoolStatus = Box<dyn Fn() -> (usize, usize, usize) + Send + Sync>;

/// Where the scrape-time figures come from.
pub struct Sources {
    /// The service (cache counters).
    pub service: Arc<MessageService>,
    /// The outbox (pending events).
    pub outbox: Arc<dyn Outbox>,
    /// The relay's counters.
    pub relay: Arc<RelayStats>,
    /// PostgreSQL pool status, when the store is PostgreSQL.
    pub pool: Option<PoolStatus>,
}

/// The metrics in Prometheus text format.
pub async fn render(handle: Option<&PrometheusHandle>, sources: &Sources) -> String {
    let cache = sources.service.cache_stats();
    for (name, value) in [
        ("cache_hits_total", cache.hits),
        ("cache_misses_total", cache.misses),
        ("cache_fills_total", cache.fills),
        ("cache_rejected_fills_total", cache.rejected_fills),
        ("cache_errors_total", cache.errors),
        ("events_published_total", sources.relay.published()),
        ("events_failed_total", sources.relay.failed()),
    ] {
        metrics::counter!(name).absolute(value);
    }
    match sources.outbox.pending().await {
        Ok((pending, oldest)) => {
            metrics::gauge!("outbox_pending_events").set(pending as f64);
            let age = oldest.map_or(0.0, |t| {
                let now = chrono_now_micros();
                ((now - t.as_micros()).max(0) as f64) / 1e6
            });
            metrics::gauge!("outbox_oldest_event_age_seconds").set(age);
            metrics::gauge!("store_up").set(1.0);
        }
        Err(_) => metrics::gauge!("store_up").set(0.0),
    }
    if let Some(pool) = &sources.pool {
        let (size, available, waiting) = pool();
        metrics::gauge!("store_pool_connections").set(size as f64);
        metrics::gauge!("store_pool_available").set(available as f64);
        metrics::gauge!("store_pool_waiting").set(waiting as f64);
    }
    handle.map(PrometheusHandle::render).unwrap_or_default()
}

fn chrono_now_micros() -> i64 {
    messages_core::Clock::new().now().as_micros()
}

/// The store operations [`TimedStore`] measures.
const OPERATIONS: [&str; 10] = [
    "create", "get", "update", "delete", "page", "ping", "around", "changes", "locate", "head",
];
/// How an operation ended: done, refused (a client's error: not found, forbidden, invalid),
/// the backend unavailable, or an internal error.
const OUTCOMES: [&str; 4] = ["ok", "refused", "unavailable", "error"];

/// A store that records how long each operation takes, as `store_operation_duration_seconds`
/// by `operation` and `outcome`. The histogram of every pair is registered once, here, so a
/// call does not look one up by its labels.
pub struct TimedStore {
    inner: Arc<dyn MessageStore>,
    histograms: Vec<metrics::Histogram>,
}

impl TimedStore {
    /// Wraps `inner`. Call after [`install`], or the histograms record nowhere.
    pub fn new(inner: Arc<dyn MessageStore>) -> Self {
        let histograms = OPERATIONS
            .iter()
            .flat_map(|operation| {
                OUTCOMES.iter().map(move |outcome| {
                    metrics::histogram!(
                        "store_operation_duration_seconds",
                        "operation" => *operation,
                        "outcome" => *outcome
                    )
                })
            })
            .collect();
        TimedStore { inner, histograms }
    }

    async fn timed<T>(
        &self,
        operation: usize,
        f: impl std::future::Future<Output = messages_core::Result<T>>,
    ) -> messages_core::Result<T> {
        let started = std::time::Instant::now();
        let result = f.await;
        let outcome = match &result {
            Ok(_) => 0,
            Err(messages_core::Error::Unavailable { .. }) => 2,
            Err(messages_core::Error::Internal { .. }) => 3,
            Err(_) => 1,
        };
        if let Some(histogram) = self.histograms.get(operation * OUTCOMES.len() + outcome) {
            histogram.record(started.elapsed().as_secs_f64());
        }
        result
    }
}

#[async_trait::async_trait]
impl MessageStore for TimedStore {
    async fn create(
        &self,
        message: &Message,
        idempotency: Option<Idempotency<'_>>,
        event: OutboxEvent,
    ) -> messages_core::Result<Created> {
        self.timed(0, self.inner.create(message, idempotency, event))
            .await
    }
    async fn get(&self, thread: ThreadId, id: MessageId) -> messages_core::Result<Message> {
        self.timed(1, self.inner.get(thread, id)).await
    }
    async fn update(
        &self,
        thread: ThreadId,
        id: MessageId,
        user: UserId,
        patch: &MessagePatch,
        now: Timestamp,
        event: UpdateEvent,
    ) -> messages_core::Result<Message> {
        self.timed(2, self.inner.update(thread, id, user, patch, now, event))
            .await
    }
    async fn delete(
        &self,
        thread: ThreadId,
        id: MessageId,
        user: UserId,
        now: Timestamp,
        event: OutboxEvent,
    ) -> messages_core::Result<Tombstone> {
        self.timed(3, self.inner.delete(thread, id, user, now, event))
            .await
    }
    async fn page(
        &self,
        thread: ThreadId,
        query: PageQuery,
        size: PageSize,
    ) -> messages_core::Result<Page> {
        self.timed(4, self.inner.page(thread, query, size)).await
    }
    async fn ping(&self) -> messages_core::Result<()> {
        self.timed(5, self.inner.ping()).await
    }
    async fn around(
        &self,
        thread: ThreadId,
        id: MessageId,
        half: usize,
    ) -> messages_core::Result<Around> {
        self.timed(6, self.inner.around(thread, id, half)).await
    }
    async fn changes(
        &self,
        thread: ThreadId,
        since: i64,
        limit: ChangesLimit,
    ) -> messages_core::Result<Changes> {
        self.timed(7, self.inner.changes(thread, since, limit))
            .await
    }
    async fn locate(&self, thread: ThreadId, id: MessageId) -> messages_core::Result<Option<i64>> {
        self.timed(8, self.inner.locate(thread, id)).await
    }
    async fn head(&self, thread: ThreadId) -> messages_core::Result<i64> {
        self.timed(9, self.inner.head(thread)).await
    }
}
