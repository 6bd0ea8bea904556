//! `HttpSettings`: where to listen and how connections and bodies are handled.

use std::net::SocketAddr;
use std::time::Duration;

use super::env::{ConfigError, Env};

/// HTTP: the address, the largest body, and the connections' timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpSettings {
    /// Where to listen (`BIND_ADDR`; default [`HttpSettings::LOOPBACK`] in trusted-header mode,
    /// where anyone who reaches the port may write as any user, and
    /// [`HttpSettings::EVERYWHERE`] with JWT authentication on). Deployments set it explicitly.
    pub bind_addr: SocketAddr,
    /// Largest accepted request body (`MAX_BODY_BYTES`, default 65536).
    pub max_body_bytes: usize,
    /// Longest time a client may take to send a request's headers, from the connection's
    /// start or from the end of the previous response; past it the connection closes. It is
    /// also how long an idle HTTP/1 keep-alive connection stays open: hyper runs one timer
    /// for both (`HEADER_READ_TIMEOUT_SECONDS`).
    pub header_read_timeout: Duration,
    /// Longest time a request's body may take to arrive once its headers have; past it the
    /// answer is a 400 `bad_body` (`BODY_READ_TIMEOUT_SECONDS`).
    pub body_read_timeout: Duration,
    /// How often an HTTP/2 connection is pinged, and how long a ping may go unanswered
    /// before the connection closes (`HTTP2_KEEP_ALIVE_SECONDS`).
    pub http2_keep_alive: Duration,
    /// How long in-flight requests may finish after a stop signal, and then how long the
    /// relay may deliver pending events (`SHUTDOWN_TIMEOUT_SECONDS`).
    pub shutdown_timeout: Duration,
}

impl HttpSettings {
    /// Where a server in trusted-header mode listens without `BIND_ADDR`.
    pub const LOOPBACK: SocketAddr =
        SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 3000);
    /// Where a server that verifies tokens itself listens without `BIND_ADDR`.
    pub const EVERYWHERE: SocketAddr =
        SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 3000);

    /// Reads the section; `default_bind` is where to listen without `BIND_ADDR` (it depends on
    /// how writes are authenticated).
    pub(super) fn from_env<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        default_bind: SocketAddr,
    ) -> Result<Self, ConfigError> {
        let d = HttpSettings::default();
        Ok(HttpSettings {
            bind_addr: env.parse("BIND_ADDR", default_bind, "an address like 0.0.0.0:3000")?,
            max_body_bytes: env.count("MAX_BODY_BYTES", d.max_body_bytes, 1024, 16 << 20)?,
            header_read_timeout: env.seconds(
                "HEADER_READ_TIMEOUT_SECONDS",
                d.header_read_timeout,
                1,
                3_600,
            )?,
            body_read_timeout: env.seconds(
                "BODY_READ_TIMEOUT_SECONDS",
                d.body_read_timeout,
                1,
                3_600,
            )?,
            http2_keep_alive: env.seconds(
                "HTTP2_KEEP_ALIVE_SECONDS",
                d.http2_keep_alive,
                1,
                3_600,
            )?,
            shutdown_timeout: env.seconds(
                "SHUTDOWN_TIMEOUT_SECONDS",
                d.shutdown_timeout,
                0,
                3_600,
            )?,
        })
    }
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            bind_addr: Self::LOOPBACK,
            max_body_bytes: 64 * 1024,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
            http2_keep_alive: Duration::from_secs(20),
            shutdown_timeout: Duration::from_secs(20),
        }
    }
}
