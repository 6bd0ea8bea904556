//! Startup: build the application (backends, service, relay, listener), then run it until a
//! shutdown future completes: stop accepting, drain in-flight requests, let the relay deliver
//! what those requests wrote, return.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use messages_core::events::memory::MemorySink;
use messages_core::{MessageService, Relay};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::backends::{self, Storage};
use crate::config::{Config, HttpSettings, LiveTransport, StoreSettings};
use crate::handler::Handler;
use crate::listener::Listener;
use crate::routes::AppState;

/// Links this process's live delivery to the other replicas' writes, by the transport
/// `LIVE_TRANSPORT` names (by default Redis sharded pub/sub with Redis, else `NOTIFY` on
/// PostgreSQL, else none: one process).
fn link_replicas(config: &Config, service: &MessageService) -> anyhow::Result<()> {
    let hub = service.hub();
    let redis = match (config.streams.transport, &config.redis) {
        (LiveTransport::None, _) => {
            tracing::info!("live: in process only (LIVE_TRANSPORT=none)");
            return Ok(());
        }
        (LiveTransport::Postgres, _) => None,
        (_, redis) => redis.as_ref(),
    };
    if let Some(redis) = redis {
        hub.observe_lag(Box::new(crate::metrics::notification_lag));
        messages_core::live::redis::RedisTransport::start(
            &redis.server,
            &redis.key_prefix,
            redis.timeout,
            &hub,
        )
        .context("live transport (Redis)")?;
        tracing::info!(redis = %redis.server.describe(), "live: other replicas' writes arrive through Redis sharded pub/sub, for the threads followed here");
    } else if let StoreSettings::Postgres(db) = &config.store {
        hub.observe_lag(Box::new(crate::metrics::notification_lag));
        messages_core::live::postgres::PgTransport::start(&db.postgres, &hub)
            .context("live transport (DATABASE_URL)")?;
        tracing::info!("live: other replicas' writes arrive through PostgreSQL LISTEN/NOTIFY");
    } else {
        tracing::info!("live: in process");
    }
    Ok(())
}

/// A built application: bound, with its backends connected, not yet serving.
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    state: Arc<AppState>,
    relay: Relay,
    sink: Option<Arc<MemorySink>>,
    http: HttpSettings,
    /// The store, for what its backend must do at stop ([`Storage::close`]).
    storage: Storage,
}

impl Application {
    /// Picks the backends, builds the service and binds the listener (port 0 picks a free
    /// port; see [`Application::port`]).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        // First, so the metrics registered while building record somewhere.
        crate::metrics::install();
        let mut storage = backends::storage(&config).await?;
        let pool = storage.pool.take();
        let cache = backends::cache(&config).await?;
        let (publisher, sink) = backends::publisher(&config);
        let (service, relay) = MessageService::builder(Arc::clone(&storage.store))
            .cache(cache)
            .publisher(publisher)
            .config(config.service)
            .relay(config.events.relay)
            .observer(Arc::new(crate::store_timing::StoreTiming::new()))
            .build();
        let service = Arc::new(service);
        let listener = TcpListener::bind(config.http.bind_addr)
            .await
            .with_context(|| format!("cannot listen on {} (BIND_ADDR)", config.http.bind_addr))?;
        let addr = listener.local_addr().context("listener has no address")?;
        let sources = crate::metrics::Sources {
            service: Arc::clone(&service),
            relay: relay.stats(),
            pool,
        };
        let auth = crate::auth::Auth::new(&config.auth).context("AUTH_JWT_* settings")?;
        match &config.auth {
            crate::config::AuthSettings::TrustGateway
                if config.http.bind_addr.ip().is_loopback() =>
            {
                tracing::info!(
                    addr = %config.http.bind_addr,
                    "auth: X-User-Id is trusted as set by a gateway; listening on loopback only \
                     (behind a gateway, set BIND_ADDR=0.0.0.0:3000)"
                )
            }
            crate::config::AuthSettings::TrustGateway => tracing::info!(
                "auth: X-User-Id is trusted as set by the gateway; do not expose this server without one"
            ),
            _ => tracing::info!("auth: writes require a bearer JWT; X-User-Id is ignored"),
        }
        link_replicas(&config, &service)?;
        let limits = crate::limits::WriteLimits::open(&config, &service)?;
        let state = Arc::new(AppState::new(
            service,
            (config.http.max_body_bytes, config.http.body_read_timeout),
            sources,
            (auth, limits),
            config.streams,
        ));
        Ok(Application {
            listener,
            addr,
            state,
            relay,
            sink,
            http: config.http,
            storage,
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

    /// For mounting the service in another server: its routes as a [`Handler`], and the work
    /// that runs beside them, the outbox relay, as a future to spawn. That future ends after
    /// `shutdown` completes, once the relay has delivered what is pending (within
    /// `SHUTDOWN_TIMEOUT_SECONDS`) and the store is closed. The listener `build` bound is
    /// closed: the hosting server listens (build with port 0 to leave the port free).
    pub fn into_handler(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> (Handler, impl Future<Output = ()> + Send + 'static) {
        let Application {
            listener,
            state,
            relay,
            http,
            storage,
            ..
        } = self;
        drop(listener);
        let handler = Handler::new(state);
        let streams = handler.clone();
        let background = async move {
            let (finish_relay, relay_finished) = oneshot::channel::<Instant>();
            let relay_task = tokio::spawn(
                relay.run(async move { relay_finished.await.unwrap_or_else(|_| Instant::now()) }),
            );
            shutdown.await;
            streams.close_streams();
            let _ = finish_relay.send(Instant::now() + http.shutdown_timeout);
            if let Err(error) = relay_task.await {
                tracing::error!(%error, "outbox relay task failed");
            }
            storage.close().await;
            tracing::info!("stopped");
        };
        (handler, background)
    }

    /// Serves until `shutdown` completes. Then, in order: stops accepting; lets in-flight
    /// requests finish within `SHUTDOWN_TIMEOUT_SECONDS` (closing what is left after it); lets
    /// the relay deliver the events still pending, which include those of the requests that
    /// just finished, within the same timeout again; on SQLite, checkpoints the write-ahead
    /// log into the database file ([`Storage::close`]); returns.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let Application {
            listener,
            addr,
            state,
            relay,
            http,
            storage,
            ..
        } = self;
        let (finish_relay, relay_finished) = oneshot::channel::<Instant>();
        let relay_task = tokio::spawn(relay.run(async move {
            // A dropped sender (run ended early) also ends the relay, at once.
            relay_finished.await.unwrap_or_else(|_| Instant::now())
        }));
        let mut listener = Listener::new(listener, state, http);
        tracing::info!(%addr, "listening");
        listener.run(shutdown).await;
        listener.drain().await;
        tracing::info!(
            timeout_s = http.shutdown_timeout.as_secs(),
            "requests drained; the outbox relay delivers what is pending"
        );
        let _ = finish_relay.send(Instant::now() + http.shutdown_timeout);
        if let Err(error) = relay_task.await {
            tracing::error!(%error, "outbox relay task failed");
        }
        storage.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}
