//! A TCP proxy a test controls: put it between the service and a backend, then cut and restore
//! the link to simulate an outage without stopping a service other tests use. A cut refuses
//! (a stopped service); a hang accepts and never answers (a host that went silent), which is
//! what makes callers wait out their timeouts.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

#[derive(Default)]
struct State {
    cut: AtomicBool,
    hang: AtomicBool,
    links: Mutex<Vec<AbortHandle>>,
    /// Connections accepted while hanging, held open unanswered.
    held: Mutex<Vec<TcpStream>>,
}

/// Forwards every connection to `upstream` until cut.
pub struct TcpProxy {
    addr: SocketAddr,
    state: Arc<State>,
    accept: AbortHandle,
}

impl TcpProxy {
    /// Listens on a free loopback port and forwards to `upstream`.
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub async fn start(upstream: SocketAddr) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy bind");
        let addr = listener.local_addr().expect("proxy addr");
        let state = Arc::new(State::default());
        let shared = Arc::clone(&state);
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if shared.cut.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                if shared.hang.load(Ordering::SeqCst) {
                    if let Ok(mut held) = shared.held.lock() {
                        held.push(client);
                    }
                    continue;
                }
                let link = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                if let Ok(mut links) = shared.links.lock() {
                    links.retain(|l| !l.is_finished());
                    links.push(link.abort_handle());
                }
            }
        })
        .abort_handle();
        TcpProxy {
            addr,
            state,
            accept,
        }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Drops every open connection and refuses new ones.
    pub fn cut(&self) {
        self.state.cut.store(true, Ordering::SeqCst);
        if let Ok(mut links) = self.state.links.lock() {
            for link in links.drain(..) {
                link.abort();
            }
        }
    }

    /// Drops every open connection, then accepts new ones and never answers them.
    pub fn hang(&self) {
        self.state.hang.store(true, Ordering::SeqCst);
        if let Ok(mut links) = self.state.links.lock() {
            for link in links.drain(..) {
                link.abort();
            }
        }
    }

    /// Accepts and forwards connections again.
    pub fn restore(&self) {
        self.state.cut.store(false, Ordering::SeqCst);
        self.state.hang.store(false, Ordering::SeqCst);
        if let Ok(mut held) = self.state.held.lock() {
            held.clear();
        }
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}
