//! Startup: build the application (backends, service, relay, listener), then run it until a
//! shutdown future completes: stop accepting, drain in-flight requests, let the relay deliver
//! what those requests wrote, return.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use messages_core::MessageService;
use messages_core::cache::PageCache;
use messages_core::cache::memory::MemoryCache;
use messages_core::cache::redis::RedisCache;
use messages_core::events::Publisher;
use messages_core::events::amqp::AmqpPublisher;
use messages_core::events::memory::MemorySink;
use messages_core::events::outbox::Relay;
use messages_core::storage::memory::MemoryStore;
use messages_core::storage::postgres::PostgresStore;
use messages_core::storage::sqlite::SqliteStore;
use messages_core::storage::{MessageStore, Outbox};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::config::{Config, DatabaseSettings, HttpSettings, SqliteSettings, StoreSettings};
use crate::error::error_chain;
use crate::routes::{self, AppState};

/// A built application: bound, with its backends connected, not yet serving.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    state: Arc<AppState>,
    relay: Relay,
    sink: Option<Arc<MemorySink>>,
    http: HttpSettings,
    /// Held while the application lives: no other process opens the same data directory.
    data_lock: Option<std::fs::File>,
    /// The SQLite store, checkpointed at the end of `run`.
    sqlite: Option<SqliteStore>,
}

/// The store's two sides, the pool status for metrics when there is a pool, and the lock on
/// the data directory when the store is a file.
struct Storage {
    store: Arc<dyn MessageStore>,
    outbox: Arc<dyn Outbox>,
    pool: Option<crate::metrics::PoolStatus>,
    data_lock: Option<std::fs::File>,
    sqlite: Option<SqliteStore>,
}

impl Storage {
    fn of<S: MessageStore + Outbox>(store: S) -> Self {
        let store = Arc::new(store);
        Storage {
            store: Arc::clone(&store) as Arc<dyn MessageStore>,
            outbox: store,
            pool: None,
            data_lock: None,
            sqlite: None,
        }
    }
}

async fn storage(config: &Config) -> anyhow::Result<Storage> {
    match &config.store {
        StoreSettings::Postgres(db) => {
            let store = connect_postgres(db, db.migrate_on_start).await?;
            tracing::info!(pool_size = db.postgres.pool_size, "storage: PostgreSQL");
            let status = store.clone();
            let mut storage = Storage::of(store);
            storage.pool = Some(Box::new(move || {
                let s = status.pool_status();
                (s.size, s.available, s.waiting)
            }));
            Ok(storage)
        }
        StoreSettings::Sqlite(settings) => {
            let (store, lock) = open_sqlite(settings).await?;
            tracing::info!(
                file = %settings.sqlite.path.display(),
                synchronous = ?settings.sqlite.synchronous,
                "storage: SQLite"
            );
            let mut storage = Storage::of(store.clone());
            storage.data_lock = Some(lock);
            storage.sqlite = Some(store);
            Ok(storage)
        }
        StoreSettings::Memory => {
            tracing::info!("storage: in-memory (data is lost when the process exits)");
            Ok(Storage::of(MemoryStore::new()))
        }
    }
}

/// Creates the data directory if needed, checks that it can be written, takes its lock (one
/// process per directory), and opens the store in it, applying its migrations. Every failure
/// names the directory and `DATA_DIR`.
pub async fn open_sqlite(
    settings: &SqliteSettings,
) -> anyhow::Result<(SqliteStore, std::fs::File)> {
    let settings = settings.clone();
    tokio::task::spawn_blocking(move || {
        let dir = &settings.data_dir;
        std::fs::create_dir_all(dir).with_context(|| {
            format!(
                "cannot create the data directory {} (DATA_DIR)",
                dir.display()
            )
        })?;
        let probe = dir.join(".write-check");
        std::fs::write(&probe, b"ok")
            .and_then(|()| std::fs::remove_file(&probe))
            .with_context(|| {
                format!(
                    "cannot write in the data directory {} (DATA_DIR)",
                    dir.display()
                )
            })?;
        let lock_path = dir.join("messages.lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("cannot open {} (DATA_DIR)", lock_path.display()))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
                "the data directory {} is in use by another messages-server process (DATA_DIR): \
                 give each process a directory of its own, or share PostgreSQL between replicas",
                dir.display()
            ),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e)
                    .with_context(|| format!("cannot lock {} (DATA_DIR)", lock_path.display()));
            }
        }
        let store = SqliteStore::open(&settings.sqlite).map_err(|e| {
            anyhow::anyhow!(
                "cannot open the database {} (DATA_DIR): {}",
                settings.sqlite.path.display(),
                error_chain(&e)
            )
        })?;
        Ok((store, lock))
    })
    .await
    .context("opening the SQLite store panicked")?
}

async fn cache(config: &Config) -> anyhow::Result<Arc<dyn PageCache>> {
    Ok(match &config.redis {
        Some(redis) => {
            let cache =
                RedisCache::new(redis.clone()).context("invalid Redis settings (REDIS_URL)")?;
            match cache.ping().await {
                Ok(()) => tracing::info!(prefix = %redis.key_prefix, "cache: Redis"),
                Err(error) => tracing::warn!(
                    error = %error_chain(&error),
                    "cache: Redis is unreachable; reading the store until it answers"
                ),
            }
            Arc::new(cache)
        }
        None => {
            tracing::info!("cache: in-process");
            Arc::new(MemoryCache::new(config.memory_cache))
        }
    })
}

fn publisher(config: &Config) -> (Arc<dyn Publisher>, Option<Arc<MemorySink>>) {
    match &config.events.amqp {
        Some(amqp) => {
            if let StoreSettings::Postgres(_) = config.store {
                tracing::info!(exchange = %amqp.exchange, "events: RabbitMQ through the PostgreSQL outbox");
            } else if let StoreSettings::Sqlite(_) = config.store {
                tracing::info!(exchange = %amqp.exchange, "events: RabbitMQ through the SQLite outbox");
            } else {
                tracing::warn!(
                    exchange = %amqp.exchange,
                    "events: RabbitMQ through an in-memory outbox; events not yet delivered are lost if the process exits"
                );
            }
            (Arc::new(AmqpPublisher::new(amqp.clone())), None)
        }
        None => {
            tracing::info!("events: in-process sink");
            let sink = Arc::new(MemorySink::default());
            (Arc::clone(&sink) as Arc<dyn Publisher>, Some(sink))
        }
    }
}

impl Application {
    /// Picks the backends, builds the service and binds the listener (port 0 picks a free
    /// port; see [`Application::port`]).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        // First, so the metrics registered while building record somewhere.
        crate::metrics::install();
        let Storage {
            store,
            outbox,
            pool,
            data_lock,
            sqlite,
        } = storage(&config).await?;
        let cache = cache(&config).await?;
        let (publisher, sink) = publisher(&config);
        let timed: Arc<dyn MessageStore> = Arc::new(crate::timed_store::TimedStore::new(store));
        let service = Arc::new(MessageService::new(timed, cache, config.service));
        let relay = Relay::new(
            Arc::clone(&outbox),
            publisher,
            service.relay_signal(),
            config.events.relay,
        );
        let listener = TcpListener::bind(config.bind_addr)
            .await
            .with_context(|| format!("cannot listen on {} (BIND_ADDR)", config.bind_addr))?;
        let addr = listener.local_addr().context("listener has no address")?;
        let sources = crate::metrics::Sources {
            service: Arc::clone(&service),
            outbox,
            relay: relay.stats(),
            pool,
        };
        let auth = crate::auth::Auth::new(&config.auth).context("AUTH_JWT_* settings")?;
        match &config.auth {
            crate::config::AuthSettings::TrustGateway => tracing::info!(
                "auth: X-User-Id is trusted as set by the gateway; do not expose this server without one"
            ),
            _ => tracing::info!("auth: writes require a bearer JWT; X-User-Id is ignored"),
        }
        if let StoreSettings::Postgres(db) = &config.store {
            let hub = service.hub();
            hub.observe_lag(Box::new(crate::metrics::notification_lag));
            messages_core::live::postgres::PgTransport::start(&db.postgres, &hub)
                .context("live transport (DATABASE_URL)")?;
            tracing::info!("live: other replicas' writes arrive through PostgreSQL LISTEN/NOTIFY");
        } else {
            tracing::info!("live: in process");
        }
        let state = Arc::new(AppState::new(
            service,
            (config.max_body_bytes, config.http.body_read_timeout),
            sources,
            auth,
            config.streams,
        ));
        Ok(Application {
            listener,
            addr,
            state,
            relay,
            sink,
            http: config.http,
            data_lock,
            sqlite,
        })
    }

    /// The port the listener is bound to.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The service, for embedding and tests.
    pub fn service(&self) -> Arc<MessageService> {
        Arc::clone(&self.state.service)
    }

    /// The in-process event sink, when events are delivered in process.
    pub fn event_sink(&self) -> Option<Arc<MemorySink>> {
        self.sink.clone()
    }

    /// Serves until `shutdown` completes. Then, in order: stops accepting; lets in-flight
    /// requests finish within `SHUTDOWN_TIMEOUT_SECONDS` (closing what is left after it); lets
    /// the relay deliver the events still pending, which include those of the requests that
    /// just finished, within the same timeout again; on SQLite, checkpoints the write-ahead
    /// log into the database file; returns.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let Application {
            listener,
            addr,
            state,
            relay,
            http,
            data_lock,
            sqlite,
            ..
        } = self;
        let (finish_relay, relay_finished) = oneshot::channel::<Instant>();
        let relay_task = tokio::spawn(relay.run(async move {
            // A dropped sender (run ended early) also ends the relay, at once.
            relay_finished.await.unwrap_or_else(|_| Instant::now())
        }));
        let builder = connection_builder(http);
        let graceful = GracefulShutdown::new();
        let mut connections = JoinSet::new();
        tracing::info!(%addr, "listening");
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(conn) => conn,
                        Err(error) => {
                            // Out of file descriptors and the like: wait rather than spin.
                            tracing::warn!(%error, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    serve(&builder, &graceful, &mut connections, &state, stream, peer, http);
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                () = &mut shutdown => break,
            }
        }
        drop(listener);
        // Event streams never finish by themselves: end them first, so their connections can.
        let streams = state.streams.open();
        state.streams.close_all();
        tracing::info!(
            connections = connections.len(),
            streams,
            timeout_s = http.shutdown_timeout.as_secs(),
            "stopped accepting; draining in-flight requests"
        );
        tokio::select! {
            () = graceful.shutdown() => tracing::info!("every connection finished its requests"),
            () = tokio::time::sleep(http.shutdown_timeout) => {
                tracing::warn!(
                    connections = connections.len(),
                    "drain timeout passed; closing the remaining connections, cutting off their requests"
                );
            }
        }
        connections.shutdown().await;
        tracing::info!(
            timeout_s = http.shutdown_timeout.as_secs(),
            "requests drained; the outbox relay delivers what is pending"
        );
        let _ = finish_relay.send(Instant::now() + http.shutdown_timeout);
        if let Err(error) = relay_task.await {
            tracing::error!(%error, "outbox relay task failed");
        }
        if let Some(store) = sqlite {
            // So that the database file alone holds every write: a copy of it after a clean
            // stop is a complete backup.
            match store.checkpoint().await {
                Ok(true) => tracing::info!(
                    "SQLite: write-ahead log checkpointed; the database file holds every write"
                ),
                Ok(false) => tracing::warn!(
                    "SQLite: checkpoint incomplete (a read was running); the write-ahead log keeps the rest"
                ),
                Err(error) => tracing::warn!(
                    error = %crate::error::error_chain(&error),
                    "SQLite: checkpoint failed; the write-ahead log keeps the writes"
                ),
            }
        }
        drop(data_lock);
        tracing::info!("stopped");
        Ok(())
    }
}

/// HTTP/1 and HTTP/2 with timers: a header read timeout (which also closes idle HTTP/1
/// keep-alive connections) and HTTP/2 keep-alive pings.
fn connection_builder(http: HttpSettings) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(http.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(http.http2_keep_alive)
        .keep_alive_timeout(http.http2_keep_alive);
    builder
}

/// Serves one connection in `connections`. Until its first request arrives the connection
/// is bounded by the header read timeout here: hyper's own timer starts only once the
/// protocol is known, and a client that sends nothing (or half an HTTP/2 preface) would
/// otherwise hold it forever.
fn serve(
    builder: &auto::Builder<TokioExecutor>,
    graceful: &GracefulShutdown,
    connections: &mut JoinSet<()>,
    state: &Arc<AppState>,
    stream: TcpStream,
    peer: SocketAddr,
    http: HttpSettings,
) {
    let _ = stream.set_nodelay(true);
    let requested = Arc::new(AtomicBool::new(false));
    let service = {
        let state = Arc::clone(state);
        let requested = Arc::clone(&requested);
        service_fn(move |request| {
            requested.store(true, Ordering::Relaxed);
            let state = Arc::clone(&state);
            async move { Ok::<_, Infallible>(routes::handle(state, request).await) }
        })
    };
    let connection = builder
        .serve_connection_with_upgrades(TokioIo::new(stream), service)
        .into_owned();
    let connection = graceful.watch(connection);
    connections.spawn(async move {
        tokio::pin!(connection);
        let first_request = tokio::time::sleep(http.header_read_timeout);
        tokio::pin!(first_request);
        let ended = loop {
            tokio::select! {
                ended = &mut connection => break ended,
                () = &mut first_request, if !requested.load(Ordering::Relaxed) => {
                    if !requested.load(Ordering::Relaxed) {
                        tracing::debug!(%peer, "no request within the header read timeout; closing");
                        return;
                    }
                }
            }
        };
        if let Err(error) = ended {
            tracing::debug!(%peer, %error, "connection ended with an error");
        }
    });
}

/// Builds the PostgreSQL store and waits until the database answers, retrying with backoff
/// for at most `startup_timeout`; with `migrate`, applies the migrations once it does.
pub async fn connect_postgres(
    db: &DatabaseSettings,
    migrate: bool,
) -> anyhow::Result<PostgresStore> {
    let store =
        PostgresStore::new(&db.postgres).context("invalid PostgreSQL settings (DATABASE_URL)")?;
    let deadline = Instant::now() + db.startup_timeout;
    let mut backoff = Duration::from_millis(250);
    let mut attempt = 1u32;
    loop {
        let ready = if migrate {
            store.migrate().await.map(|applied| {
                tracing::info!(applied, "migrations are up to date");
            })
        } else {
            store.ping().await
        };
        match ready {
            Ok(()) => return Ok(store),
            Err(error) if Instant::now() + backoff < deadline => {
                tracing::warn!(
                    attempt,
                    retry_in_ms = backoff.as_millis() as u64,
                    error = %error_chain(&error),
                    "PostgreSQL is not ready"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                attempt += 1;
            }
            Err(error) => {
                return Err(anyhow::anyhow!(
                    "PostgreSQL did not become ready within {}s ({} attempts): {}",
                    db.startup_timeout.as_secs(),
                    attempt,
                    error_chain(&error)
                ));
            }
        }
    }
}
