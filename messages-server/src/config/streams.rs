//! `StreamSettings`: server-sent event streams, long polls, and how replicas hear each other.

use std::time::Duration;

use super::env::{Choice, ConfigError, Env};

/// Server-sent event streams and long polls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamSettings {
    /// Most streams open at once in this process; past it a new one is a 503 with
    /// `Retry-After` (`STREAM_MAX`).
    pub max_open: usize,
    /// How often an idle stream sends a comment line, so proxies keep it open
    /// (`STREAM_HEARTBEAT_SECONDS`).
    pub heartbeat: Duration,
    /// Events a stream holds for a reader that has not taken them yet (`STREAM_BUFFER`).
    pub buffer: usize,
    /// How long a stream waits for its reader to take an event before closing it as too slow
    /// (`STREAM_SLOW_READER_SECONDS`); the reader resumes with `Last-Event-ID`.
    pub slow_reader: Duration,
    /// The `retry:` hint: how long a client waits before reconnecting (`STREAM_RETRY_MS`).
    pub retry: Duration,
    /// The longest a long poll holds its connection, whatever `wait` it asked for
    /// (`LONG_POLL_MAX_SECONDS`, at most 30): lower it behind a proxy with shorter timeouts.
    pub long_poll_max: Duration,
    /// How replicas tell each other a thread moved (`LIVE_TRANSPORT`).
    pub transport: LiveTransport,
}

/// How replicas tell each other that a thread moved, so their streams and long polls wake.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LiveTransport {
    /// Redis sharded pub/sub when Redis is set, else `NOTIFY` on PostgreSQL, else none (one
    /// process: SQLite or memory). The default.
    #[default]
    Auto,
    /// Redis sharded pub/sub (`redis`): needs Redis.
    Redis,
    /// PostgreSQL `LISTEN`/`NOTIFY` (`postgres`): needs the PostgreSQL store.
    Postgres,
    /// None (`none`): this process's streams hear this process's writes only; for a single
    /// replica.
    None,
}

impl Choice for LiveTransport {
    const ALL: &'static [Self] = &[
        LiveTransport::Auto,
        LiveTransport::Redis,
        LiveTransport::Postgres,
        LiveTransport::None,
    ];

    fn name(self) -> &'static str {
        match self {
            LiveTransport::Auto => "auto",
            LiveTransport::Redis => "redis",
            LiveTransport::Postgres => "postgres",
            LiveTransport::None => "none",
        }
    }
}

impl StreamSettings {
    /// The longest `wait` a long poll of the changes feed may ask for.
    pub const MAX_WAIT: Duration = Duration::from_secs(30);

    /// Reads the section.
    pub(super) fn from_env<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
    ) -> Result<Self, ConfigError> {
        let d = StreamSettings::default();
        Ok(StreamSettings {
            max_open: env.count("STREAM_MAX", d.max_open, 1, 1_000_000)?,
            heartbeat: env.seconds("STREAM_HEARTBEAT_SECONDS", d.heartbeat, 1, 3_600)?,
            buffer: env.count("STREAM_BUFFER", d.buffer, 1, 100_000)?,
            slow_reader: env.seconds("STREAM_SLOW_READER_SECONDS", d.slow_reader, 1, 3_600)?,
            retry: env.millis("STREAM_RETRY_MS", d.retry, 0, 3_600_000)?,
            long_poll_max: env.seconds(
                "LONG_POLL_MAX_SECONDS",
                d.long_poll_max,
                0,
                Self::MAX_WAIT.as_secs(),
            )?,
            transport: env.choice("LIVE_TRANSPORT", d.transport)?,
        })
    }
}

impl Default for StreamSettings {
    fn default() -> Self {
        StreamSettings {
            max_open: 10_000,
            heartbeat: Duration::from_secs(15),
            buffer: 64,
            slow_reader: Duration::from_secs(10),
            retry: Duration::from_millis(2_000),
            long_poll_max: Self::MAX_WAIT,
            transport: LiveTransport::default(),
        }
    }
}
