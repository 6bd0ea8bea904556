//! Prometheus metrics: request counts and latencies by route and status, recorded as requests
//! finish, and the cache, store and outbox figures, read when `/metrics` is scraped.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use messages_core::MessageService;
use messages_core::events::outbox::RelayStats;
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
                    describe();
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

/// Every metric this server records, with its `# HELP` text (Prometheus's linter,
/// `promtool check metrics`, asks one of every family; the operations contract test checks
/// that none is missing).
pub const DESCRIPTIONS: &[(&str, &str)] = &[
    (
        "http_requests_total",
        "Requests answered, by route pattern, method and status.",
    ),
    (
        "http_request_duration_seconds",
        "Time to answer a request, by route pattern, method and status.",
    ),
    (
        "http_rate_limited_total",
        "Writes refused with a 429 by the per-user rate limits, by route.",
    ),
    (
        "rate_limit_unchecked_total",
        "Writes let through unchecked because the rate limiter (Redis) did not answer.",
    ),
    (
        "cache_hits_total",
        "Newest-page reads answered from the cache.",
    ),
    (
        "cache_misses_total",
        "Newest-page reads the cache could not answer.",
    ),
    ("cache_fills_total", "Pages stored in the cache."),
    (
        "cache_rejected_fills_total",
        "Pages refused by the cache because a write happened while they were read.",
    ),
    (
        "cache_errors_total",
        "Cache calls that failed; the request read the store.",
    ),
    (
        "cache_breaker_open",
        "1 while the circuit breaker in front of Redis is open (reads go to the store), else 0.",
    ),
    (
        "cache_stale_total",
        "Cached pages found behind the store's position and read again.",
    ),
    (
        "events_published_total",
        "Events the outbox relay delivered.",
    ),
    (
        "events_failed_total",
        "Delivery attempts of the outbox relay that failed (retried).",
    ),
    (
        "outbox_pending_events",
        "Events written and not yet delivered.",
    ),
    (
        "outbox_oldest_event_age_seconds",
        "How long the oldest undelivered event has waited.",
    ),
    (
        "store_operation_duration_seconds",
        "Time of a store operation, by operation and outcome.",
    ),
    (
        "store_pool_connections",
        "Connections in the PostgreSQL pool.",
    ),
    (
        "store_pool_available",
        "Idle connections in the PostgreSQL pool.",
    ),
    (
        "store_pool_waiting",
        "Callers waiting for a PostgreSQL connection.",
    ),
    (
        "store_up",
        "1 when the store answered the scrape's outbox query, else 0.",
    ),
    ("live_streams_open", "Event streams open in this process."),
    ("live_events_sent_total", "Events written to event streams."),
    (
        "live_slow_readers_closed_total",
        "Event streams closed because their reader fell behind.",
    ),
    (
        "live_stream_buffered_bytes",
        "Bytes queued for event streams' readers and not yet taken.",
    ),
    (
        "live_notification_lag_seconds",
        "From a write's commit on any replica to this replica hearing of it.",
    ),
];

/// Gives every metric its help text.
fn describe() {
    for &(name, help) in DESCRIPTIONS {
        if name.ends_with("_seconds") && !name.starts_with("outbox_") {
            metrics::describe_histogram!(name, metrics::Unit::Seconds, help);
        } else if name.ends_with("_total") {
            metrics::describe_counter!(name, help);
        } else {
            metrics::describe_gauge!(name, help);
        }
    }
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
    buffered: metrics::Gauge,
}

fn live() -> &'static Live {
    static LIVE: OnceLock<Live> = OnceLock::new();
    LIVE.get_or_init(|| Live {
        open: metrics::gauge!("live_streams_open"),
        sent: metrics::counter!("live_events_sent_total"),
        slow: metrics::counter!("live_slow_readers_closed_total"),
        lag: metrics::histogram!("live_notification_lag_seconds"),
        buffered: metrics::gauge!("live_stream_buffered_bytes"),
    })
}

/// `n` bytes were queued for a stream's reader.
pub fn stream_bytes_queued(n: usize) {
    live().buffered.increment(n as f64);
}

/// `n` queued bytes left the queue: written towards the reader, or dropped with the stream.
pub fn stream_bytes_taken(n: usize) {
    live().buffered.decrement(n as f64);
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
        ("cache_stale_total", cache.stale),
        ("events_published_total", sources.relay.published()),
        ("events_failed_total", sources.relay.failed()),
    ] {
        metrics::counter!(name).absolute(value);
    }
    match sources.service.store().pending().await {
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
    if let Some(breaker) = sources.service.cache_breaker() {
        let open = if breaker.is_closed() { 0.0 } else { 1.0 };
        metrics::gauge!("cache_breaker_open").set(open);
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
