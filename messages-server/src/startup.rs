//! Startup: build the application (backends, service, relay, listener), then run it until a
//! shutdown future completes, draining in-flight requests and the relay's batch.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use messages_core::cache::PageCache;
use messages_core::cache::memory::{MemoryCache, MemoryCacheConfig};
use messages_core::cache::redis::{RedisCache, RedisCacheConfig};
use messages_core::events::Publisher;
use messages_core::events::amqp::{AmqpConfig, AmqpPublisher};
use messages_core::events::memory::MemorySink;
use messages_core::events::outbox::{Relay, RelayConfig};
use messages_core::storage::MessageStore;
use messages_core::storage::memory::MemoryStore;
use messages_core::{MessageService, ServiceConfig};
use tokio::net::TcpListener;
use tokio::sync::watch;

use std::time::{Duration, Instant};

use messages_core::storage::postgres::{PostgresConfig, PostgresStore};

use crate::config::{Config, DatabaseSettings};
use crate::error::error_chain;
use crate::routes::{self, AppState};

/// A built application: bound, with its backends connected, not yet serving.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    state: Arc<AppState>,
    relay: Relay,
    sink: Option<Arc<MemorySink>>,
    config: Config,
}

impl Application {
    /// Picks the backends, builds the service and binds the listener (port 0 picks a free
    /// port; see [`Application::port`]).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let mut pool: Option<crate::metrics::PoolStatus> = None;
        let store: Arc<dyn MessageStore> = match &config.database {
            Some(db) => {
                let store = connect_postgres(db, db.migrate_on_start).await?;
                tracing::info!(pool_size = db.pool_size, "storage: PostgreSQL");
                let status = store.clone();
                pool = Some(Box::new(move || {
                    let s = status.pool_status();
                    (s.size, s.available, s.waiting)
                }));
                Arc::new(store)
            }
            None => {
                tracing::info!("storage: in-memory (data is lost when the process exits)");
                Arc::new(MemoryStore::new())
            }
        };
        let cache: Arc<dyn PageCache> = match &config.redis {
            Some(redis) => {
                let mut settings = RedisCacheConfig::new(redis.url.clone());
                settings.key_prefix.clone_from(&redis.key_prefix);
                settings.ttl = config.cache.ttl;
                settings.touch_on_hit = config.cache.touch_on_hit;
                settings.timeout = redis.timeout;
                let cache =
                    RedisCache::new(settings).context("invalid Redis settings (REDIS_URL)")?;
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
                Arc::new(MemoryCache::new(MemoryCacheConfig {
                    ttl: config.cache.ttl,
                    touch_on_hit: config.cache.touch_on_hit,
                    max_threads: config.cache.max_threads,
                }))
            }
        };
        let (publisher, sink): (Arc<dyn Publisher>, Option<Arc<MemorySink>>) = match &config
            .events
            .amqp_url
        {
            Some(url) => {
                let mut amqp = AmqpConfig::new(url.clone());
                amqp.exchange.clone_from(&config.events.exchange);
                amqp.legacy_queue.clone_from(&config.events.legacy_queue);
                amqp.source.clone_from(&config.events.source);
                if config.database.is_some() {
                    tracing::info!(exchange = %amqp.exchange, "events: RabbitMQ through the PostgreSQL outbox");
                } else {
                    tracing::warn!(
                        exchange = %amqp.exchange,
                        "events: RabbitMQ through an in-memory outbox; events not yet delivered are lost if the process exits"
                    );
                }
                (Arc::new(AmqpPublisher::new(amqp)), None)
            }
            None => {
                tracing::info!("events: in-process sink");
                let sink = Arc::new(MemorySink::default());
                (Arc::clone(&sink) as Arc<dyn Publisher>, Some(sink))
            }
        };
        let timed: Arc<dyn MessageStore> =
            Arc::new(crate::metrics::TimedStore::new(Arc::clone(&store)));
        drop(store);
        let service = Arc::new(MessageService::new(
            Arc::clone(&timed),
            cache,
            ServiceConfig {
                limits: config.limits,
                window: config.cache.max_items,
            },
        ));
        let relay = Relay::new(
            timed,
            publisher,
            service.relay_signal(),
            RelayConfig {
                batch: config.events.relay_batch,
                poll: config.events.relay_poll,
                ..RelayConfig::default()
            },
        );
        let listener = TcpListener::bind(config.bind_addr)
            .await
            .with_context(|| format!("cannot listen on {} (BIND_ADDR)", config.bind_addr))?;
        let addr = listener.local_addr().context("listener has no address")?;
        let sources = crate::metrics::Sources {
            service: Arc::clone(&service),
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
        let state = Arc::new(AppState::new(service, config.max_body_bytes, sources, auth));
        Ok(Application {
            listener,
            addr,
            state,
            relay,
            sink,
            config,
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

    /// Serves until `shutdown` completes; then stops accepting, lets in-flight requests finish
    /// within the drain timeout, lets the relay finish its batch, and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let Application {
            listener,
            addr,
            state,
            relay,
            config,
            ..
        } = self;
        let (stop, stopped) = watch::channel(false);
        let relay_task = tokio::spawn(relay.run(wait_for_stop(stopped)));
        let builder = auto::Builder::new(TokioExecutor::new());
        let graceful = GracefulShutdown::new();
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
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let state = Arc::clone(&state);
                    let service = service_fn(move |request| {
                        let state = Arc::clone(&state);
                        async move { Ok::<_, Infallible>(routes::handle(state, request).await) }
                    });
                    let connection = builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .into_owned();
                    let connection = graceful.watch(connection);
                    tokio::spawn(async move {
                        if let Err(error) = connection.await {
                            tracing::debug!(%peer, %error, "connection ended with an error");
                        }
                    });
                }
                () = &mut shutdown => break,
            }
        }
        drop(listener);
        tracing::info!(
            timeout_s = config.shutdown_timeout.as_secs(),
            "stopped accepting; draining in-flight requests"
        );
        let _ = stop.send(true);
        tokio::select! {
            () = graceful.shutdown() => tracing::info!("all connections closed"),
            () = tokio::time::sleep(config.shutdown_timeout) => {
                tracing::warn!("drain timeout passed; closing remaining connections");
            }
        }
        if let Err(error) = relay_task.await {
            tracing::error!(%error, "outbox relay task failed");
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// Builds the PostgreSQL store and waits until the database answers, retrying with backoff
/// for at most `startup_timeout`; with `migrate`, applies the migrations once it does.
pub async fn connect_postgres(
    db: &DatabaseSettings,
    migrate: bool,
) -> anyhow::Result<PostgresStore> {
    let mut pg = PostgresConfig::new(db.url.clone());
    pg.pool_size = db.pool_size;
    pg.operation_timeout = db.operation_timeout;
    let store = PostgresStore::new(&pg).context("invalid PostgreSQL settings (DATABASE_URL)")?;
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

async fn wait_for_stop(mut stopped: watch::Receiver<bool>) {
    // An error means the sender is gone, which also means stop.
    let _ = stopped.wait_for(|stop| *stop).await;
}
