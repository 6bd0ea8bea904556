//! Serving connections: the listener accepts, hands each connection to a task of its own,
//! and at a stop ends the event streams and drains the requests in flight.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::config::HttpSettings;
use crate::routes::{self, AppState};

/// Accepts connections and serves each on a task of its own, until told to stop.
pub(crate) struct Listener {
    /// The bound socket.
    listener: TcpListener,
    /// What every request handler shares.
    state: Arc<AppState>,
    /// HTTP/1 and HTTP/2, with their timers.
    builder: auto::Builder<TokioExecutor>,
    /// Watches every connection, so a stop can wait for their requests to finish.
    graceful: GracefulShutdown,
    /// The connections' tasks; finished ones are reaped as the listener goes.
    connections: JoinSet<()>,
    /// Timeouts: the header read timeout bounds a connection before its first request, the
    /// shutdown timeout the drain.
    http: HttpSettings,
}

impl Listener {
    /// A listener on the bound `listener`, serving with `state`.
    pub(crate) fn new(listener: TcpListener, state: Arc<AppState>, http: HttpSettings) -> Self {
        Listener {
            listener,
            state,
            builder: connection_builder(http),
            graceful: GracefulShutdown::new(),
            connections: JoinSet::new(),
            http,
        }
    }

    /// Accepts connections until `shutdown` completes.
    pub(crate) async fn run(&mut self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = self.listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(conn) => conn,
                        Err(error) => {
                            // Out of file descriptors and the like: wait rather than spin.
                            tracing::warn!(%error, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    self.serve(stream, peer);
                }
                Some(_) = self.connections.join_next(), if !self.connections.is_empty() => {}
                () = &mut shutdown => break,
            }
        }
    }

    /// Stops accepting, ends every event stream (they never finish by themselves), and lets
    /// in-flight requests finish within the shutdown timeout, closing what is left after it.
    pub(crate) async fn drain(self) {
        let Listener {
            listener,
            state,
            graceful,
            mut connections,
            http,
            ..
        } = self;
        drop(listener);
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
    }

    /// Serves one connection in `connections`. Until its first request arrives the connection
    /// is bounded by the header read timeout here: hyper's own timer starts only once the
    /// protocol is known, and a client that sends nothing (or half an HTTP/2 preface) would
    /// otherwise hold it forever.
    fn serve(&mut self, stream: TcpStream, peer: SocketAddr) {
        let http = self.http;
        let _ = stream.set_nodelay(true);
        let requested = Arc::new(AtomicBool::new(false));
        let service = {
            let state = Arc::clone(&self.state);
            let requested = Arc::clone(&requested);
            // Boxed: hyper keeps a connection's request future in an allocation of its own for
            // as long as the connection lives, sized for the future. Boxed here, that holds a
            // pointer, and the route's state (2.8 KB in a heap profile) is freed once its
            // response is made, instead of staying with every open event stream.
            service_fn(move |request| {
                requested.store(true, Ordering::Relaxed);
                let state = Arc::clone(&state);
                Box::pin(async move { Ok::<_, Infallible>(routes::handle(state, request).await) })
            })
        };
        let connection = self
            .builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = self.graceful.watch(connection);
        self.connections.spawn(async move {
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
