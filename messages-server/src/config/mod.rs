//! Configuration: every environment variable the server reads, parsed once into typed values
//! and validated, with errors that name the variable. Backend settings are the core's own
//! config types, so their defaults are written once, there.
//!
//! - `env`: the reader (defaults, ranges, flags) and quoting helpers.
//! - `backends`: the store (SQLite, memory, PostgreSQL), Redis, RabbitMQ and JWT variables.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use messages_core::cache::Lifetime;
use messages_core::cache::memory::MemoryCacheConfig;
use messages_core::cache::redis::RedisCacheConfig;
use messages_core::events::amqp::AmqpConfig;
use messages_core::events::outbox::RelayConfig;
use messages_core::limit::Rate;
use messages_core::storage::postgres::PostgresConfig;
use messages_core::storage::sqlite::SqliteConfig;
use messages_core::{PageSize, ServiceConfig, UnreadMax};
use secrecy::SecretString;

mod backends;
mod env;
#[cfg(test)]
mod tests;

pub use env::ConfigError;
use env::Env;

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Where messages and their events are kept (`STORE`).
#[derive(Clone, Debug)]
pub enum StoreSettings {
    /// A SQLite file in a data directory: the default without PostgreSQL (`STORE=sqlite`).
    Sqlite(SqliteSettings),
    /// Process memory, lost at exit: for tests and benchmarks (`STORE=memory`).
    Memory,
    /// PostgreSQL: the default when `DATABASE_URL` or `DB_HOST` is set (`STORE=postgres`).
    Postgres(DatabaseSettings),
}

/// The embedded store.
#[derive(Clone, Debug)]
pub struct SqliteSettings {
    /// The directory of the data (`DATA_DIR`), created at start when missing. The database
    /// is `messages.db` in it.
    pub data_dir: PathBuf,
    /// The store's settings: its file, `SQLITE_SYNCHRONOUS`, `SQLITE_MAX_SIZE_MB`, and
    /// `DB_TIMEOUT_MS` for the longest wait of an operation.
    pub sqlite: SqliteConfig,
}

impl SqliteSettings {
    /// Default of `data_dir`.
    pub const DEFAULT_DATA_DIR: &str = "./data";
    /// The database's file name in the data directory.
    pub const FILE_NAME: &str = "messages.db";

    /// The store in `data_dir` with every other setting at its default.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        SqliteSettings {
            sqlite: SqliteConfig::new(data_dir.join(Self::FILE_NAME)),
            data_dir,
        }
    }
}

/// PostgreSQL, present when `DATABASE_URL` or `DB_HOST` is set.
#[derive(Clone, Debug)]
pub struct DatabaseSettings {
    /// The store's settings: the connection string (`DATABASE_URL`, or built from `DB_HOST`,
    /// `DB_PORT`, `DB_USER`, `DB_PASSWORD`, `DB_NAME`), `DB_POOL_SIZE`, `DB_TIMEOUT_MS`,
    /// `DB_GROUP_MAX`, `DB_GROUP_LANES`.
    pub postgres: PostgresConfig,
    /// How long to keep retrying an unreachable database at start
    /// (`DB_STARTUP_TIMEOUT_SECONDS`).
    pub startup_timeout: Duration,
    /// Whether `serve` applies migrations before listening (`MIGRATE_ON_START`).
    pub migrate_on_start: bool,
}

impl DatabaseSettings {
    /// Default of `startup_timeout`.
    pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
    /// Default of `migrate_on_start`.
    pub const DEFAULT_MIGRATE_ON_START: bool = true;

    /// PostgreSQL at `url` with every other setting at its default.
    pub fn new(url: impl Into<String>) -> Self {
        DatabaseSettings {
            postgres: PostgresConfig::new(url),
            startup_timeout: Self::DEFAULT_STARTUP_TIMEOUT,
            migrate_on_start: Self::DEFAULT_MIGRATE_ON_START,
        }
    }
}

/// Event delivery.
#[derive(Clone, Debug)]
pub struct EventSettings {
    /// RabbitMQ (`AMQP_URL`, or built from `QUEUE_HOST`, `QUEUE_PORT`, `QUEUE_USER`,
    /// `QUEUE_PASSWORD`, `QUEUE_VHOST`; then `AMQP_EXCHANGE`, `AMQP_LEGACY_QUEUE`,
    /// `EVENT_SOURCE`); `None` delivers to the in-process sink.
    pub amqp: Option<AmqpConfig>,
    /// The outbox relay (`RELAY_BATCH`, `RELAY_POLL_MS`).
    pub relay: RelayConfig,
}

/// How writes are authenticated.
#[derive(Clone, Debug)]
pub enum AuthSettings {
    /// Trust `X-User-Id` as the gateway sets it (no `AUTH_JWT_*` variable set).
    TrustGateway,
    /// Require `Authorization: Bearer <jwt>` signed with HS256 and this secret
    /// (`AUTH_JWT_SECRET`).
    Hs256 {
        /// The shared secret.
        secret: SecretString,
        /// Required `iss` (`AUTH_JWT_ISSUER`), if any.
        issuer: Option<String>,
        /// Required `aud` (`AUTH_JWT_AUDIENCE`), if any.
        audience: Option<String>,
        /// The claim listing the token's roles (`AUTH_JWT_ROLES_CLAIM`, default `roles`).
        roles_claim: String,
    },
    /// Require a bearer JWT signed with RS256 or ES256 by the key whose public half is this
    /// PEM (`AUTH_JWT_PUBLIC_KEY`).
    PublicKey {
        /// The PEM text (a public key: nothing to hide).
        pem: String,
        /// Required `iss`, if any.
        issuer: Option<String>,
        /// Required `aud`, if any.
        audience: Option<String>,
        /// The claim listing the token's roles.
        roles_claim: String,
    },
}

/// HTTP connection handling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpSettings {
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

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
            http2_keep_alive: Duration::from_secs(20),
            shutdown_timeout: Duration::from_secs(20),
        }
    }
}

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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiveTransport {
    /// Redis sharded pub/sub when Redis is set, else `NOTIFY` on PostgreSQL, else none (one
    /// process: SQLite or memory). The default.
    Auto,
    /// Redis sharded pub/sub (`redis`): needs Redis.
    Redis,
    /// PostgreSQL `LISTEN`/`NOTIFY` (`postgres`): needs the PostgreSQL store.
    Postgres,
    /// None (`none`): this process's streams hear this process's writes only; for a single
    /// replica.
    None,
}

impl StreamSettings {
    /// The longest `wait` a long poll of the changes feed may ask for.
    pub const MAX_WAIT: Duration = Duration::from_secs(30);
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
            transport: LiveTransport::Auto,
        }
    }
}

/// Per-user write rate limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimitSettings {
    /// Writes a second and burst of each user's bucket (`RATE_LIMIT_WRITES_PER_SECOND`,
    /// default 10, a fraction allowed; `RATE_LIMIT_BURST`, default 30); `None` when the
    /// rate is 0, which turns the limits off.
    pub rate: Option<Rate>,
    /// Whether callers with the `moderator` role are left unlimited
    /// (`RATE_LIMIT_EXEMPT_ROLES`, a comma list, default `moderator,service`; `none` limits
    /// everyone).
    pub exempt_moderators: bool,
    /// Whether callers with the `service` role are left unlimited.
    pub exempt_services: bool,
}

impl RateLimitSettings {
    /// Default writes a second.
    pub const DEFAULT_PER_SECOND: f64 = 10.0;
    /// Default burst.
    pub const DEFAULT_BURST: u32 = 30;

    /// No limits.
    pub const OFF: RateLimitSettings = RateLimitSettings {
        rate: None,
        exempt_moderators: true,
        exempt_services: true,
    };
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        RateLimitSettings {
            rate: Rate::new(Self::DEFAULT_PER_SECOND, Self::DEFAULT_BURST).ok(),
            ..Self::OFF
        }
    }
}

/// The server's configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where to listen (`BIND_ADDR`; default `127.0.0.1:3000` in trusted-header mode, where
    /// anyone who reaches the port may write as any user, and `0.0.0.0:3000` with JWT
    /// authentication on). Deployments set it explicitly.
    pub bind_addr: SocketAddr,
    /// Largest accepted request body (`MAX_BODY_BYTES`, default 65536).
    pub max_body_bytes: usize,
    /// Connection handling.
    pub http: HttpSettings,
    /// Event streams and long polls.
    pub streams: StreamSettings,
    /// Log format (`LOG_FORMAT`: `text` or `json`, default `text`).
    pub log_format: LogFormat,
    /// The service: input limits (`MAX_CONTENT_CHARS`, `MAX_PATHS`, `MAX_PATH_CHARS`),
    /// reactions (`REACTION_MAX_EMOJI`, `REACTION_USERS_SHOWN`), the unread count's cap
    /// (`UNREAD_MAX`) and the messages cached per thread (`CACHE_MAX_ITEMS`).
    pub service: ServiceConfig,
    /// The in-process cache, used without Redis (`CACHE_TTL_SECONDS`, `CACHE_TOUCH_ON_HIT`,
    /// `CACHE_MAX_THREADS`, `CACHE_MAX_MB`).
    pub memory_cache: MemoryCacheConfig,
    /// The store: SQLite, memory or PostgreSQL.
    pub store: StoreSettings,
    /// Redis (`REDIS_URL` or `REDIS_HOST`...; `CACHE_KEY_PREFIX`, `REDIS_TIMEOUT_MS`, and the
    /// same lifetime as the in-process cache), or `None` for the in-process cache.
    pub redis: Option<RedisCacheConfig>,
    /// Event delivery.
    pub events: EventSettings,
    /// Authentication of writes.
    pub auth: AuthSettings,
    /// Per-user write rate limits.
    pub rate_limit: RateLimitSettings,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind_addr: Config::LOOPBACK,
            max_body_bytes: 64 * 1024,
            http: HttpSettings::default(),
            streams: StreamSettings::default(),
            log_format: LogFormat::Text,
            service: ServiceConfig::default(),
            memory_cache: MemoryCacheConfig::default(),
            store: StoreSettings::Sqlite(SqliteSettings::new(SqliteSettings::DEFAULT_DATA_DIR)),
            redis: None,
            events: EventSettings {
                amqp: None,
                relay: RelayConfig::default(),
            },
            auth: AuthSettings::TrustGateway,
            rate_limit: RateLimitSettings::default(),
        }
    }
}

impl Config {
    /// Where a server in trusted-header mode listens without `BIND_ADDR`.
    pub const LOOPBACK: SocketAddr =
        SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 3000);
    /// Where a server that verifies tokens itself listens without `BIND_ADDR`.
    pub const EVERYWHERE: SocketAddr =
        SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 3000);

    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|var| std::env::var(var).ok())
    }

    /// Reads variables through `lookup`; unset or blank variables take their defaults.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env { lookup };
        let d = Config::default();
        let auth = backends::auth(&env)?;
        let default_bind = match auth {
            AuthSettings::TrustGateway => Config::LOOPBACK,
            _ => Config::EVERYWHERE,
        };
        let bind_addr = env.parse("BIND_ADDR", default_bind, "an address like 0.0.0.0:3000")?;
        let max_body_bytes = env.count("MAX_BODY_BYTES", d.max_body_bytes, 1024, 16 << 20)?;
        let http = HttpSettings {
            header_read_timeout: env.seconds(
                "HEADER_READ_TIMEOUT_SECONDS",
                d.http.header_read_timeout,
                1,
                3_600,
            )?,
            body_read_timeout: env.seconds(
                "BODY_READ_TIMEOUT_SECONDS",
                d.http.body_read_timeout,
                1,
                3_600,
            )?,
            http2_keep_alive: env.seconds(
                "HTTP2_KEEP_ALIVE_SECONDS",
                d.http.http2_keep_alive,
                1,
                3_600,
            )?,
            shutdown_timeout: env.seconds(
                "SHUTDOWN_TIMEOUT_SECONDS",
                d.http.shutdown_timeout,
                0,
                3_600,
            )?,
        };
        let streams = StreamSettings {
            max_open: env.count("STREAM_MAX", d.streams.max_open, 1, 1_000_000)?,
            heartbeat: env.seconds("STREAM_HEARTBEAT_SECONDS", d.streams.heartbeat, 1, 3_600)?,
            buffer: env.count("STREAM_BUFFER", d.streams.buffer, 1, 100_000)?,
            slow_reader: env.seconds(
                "STREAM_SLOW_READER_SECONDS",
                d.streams.slow_reader,
                1,
                3_600,
            )?,
            retry: env.millis("STREAM_RETRY_MS", d.streams.retry, 0, 3_600_000)?,
            long_poll_max: env.seconds(
                "LONG_POLL_MAX_SECONDS",
                d.streams.long_poll_max,
                0,
                StreamSettings::MAX_WAIT.as_secs(),
            )?,
            transport: match env.choice(
                "LIVE_TRANSPORT",
                "auto",
                &["auto", "redis", "postgres", "none"],
            )? {
                "redis" => LiveTransport::Redis,
                "postgres" => LiveTransport::Postgres,
                "none" => LiveTransport::None,
                _ => LiveTransport::Auto,
            },
        };
        let log_format = match env.choice("LOG_FORMAT", "text", &["text", "json"])? {
            "json" => LogFormat::Json,
            _ => LogFormat::Text,
        };
        let mut service = d.service;
        let limits = &mut service.limits;
        limits.max_content_chars =
            env.count("MAX_CONTENT_CHARS", limits.max_content_chars, 1, 1_000_000)?;
        limits.max_paths = env.count("MAX_PATHS", limits.max_paths, 0, 1_000)?;
        limits.max_path_chars = env.count("MAX_PATH_CHARS", limits.max_path_chars, 1, 65_536)?;
        let reactions = &mut service.reactions;
        reactions.max_emoji = env.count("REACTION_MAX_EMOJI", reactions.max_emoji, 1, 1_000)?;
        reactions.users_shown = env.count("REACTION_USERS_SHOWN", reactions.users_shown, 0, 100)?;
        let unread_max = env.count("UNREAD_MAX", service.unread_max.get(), 1, UnreadMax::LIMIT)?;
        service.unread_max = UnreadMax::new(unread_max).map_err(|e| ConfigError {
            var: "UNREAD_MAX",
            reason: e.to_string(),
        })?;
        let window = env.range(
            "CACHE_MAX_ITEMS",
            service.window.get() as u64,
            1,
            u64::from(PageSize::MAX),
        )?;
        service.window = PageSize::new(window as u32).map_err(|e| ConfigError {
            var: "CACHE_MAX_ITEMS",
            reason: e.to_string(),
        })?;
        let lifetime = Lifetime {
            ttl: env.seconds("CACHE_TTL_SECONDS", d.memory_cache.lifetime.ttl, 1, 86_400)?,
            touch_on_hit: env.flag("CACHE_TOUCH_ON_HIT", d.memory_cache.lifetime.touch_on_hit)?,
        };
        let memory_cache = MemoryCacheConfig {
            lifetime,
            max_threads: env.count(
                "CACHE_MAX_THREADS",
                d.memory_cache.max_threads,
                1,
                100_000_000,
            )?,
            max_bytes: env.count("CACHE_MAX_MB", d.memory_cache.max_bytes >> 20, 1, 1 << 20)? << 20,
        };
        let store = backends::store(&env)?;
        let redis = backends::redis(&env, lifetime)?;
        match streams.transport {
            LiveTransport::Redis if redis.is_none() => {
                return Err(ConfigError {
                    var: "LIVE_TRANSPORT",
                    reason: "redis needs Redis (REDIS_URL, REDIS_HOST or REDIS_CLUSTER_NODES)"
                        .into(),
                });
            }
            LiveTransport::Postgres if !matches!(store, StoreSettings::Postgres(_)) => {
                return Err(ConfigError {
                    var: "LIVE_TRANSPORT",
                    reason: "postgres needs the PostgreSQL store (DATABASE_URL)".into(),
                });
            }
            _ => {}
        }
        Ok(Config {
            bind_addr,
            max_body_bytes,
            http,
            streams,
            log_format,
            service,
            memory_cache,
            store,
            redis,
            events: backends::events(&env)?,
            auth,
            rate_limit: rate_limit(&env)?,
        })
    }
}

/// `RATE_LIMIT_WRITES_PER_SECOND`, `RATE_LIMIT_BURST`, `RATE_LIMIT_EXEMPT_ROLES`.
fn rate_limit<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
) -> Result<RateLimitSettings, ConfigError> {
    let per_second: f64 = env.parse(
        "RATE_LIMIT_WRITES_PER_SECOND",
        RateLimitSettings::DEFAULT_PER_SECOND,
        "a number of writes a second (0 turns limits off)",
    )?;
    let burst = env.range(
        "RATE_LIMIT_BURST",
        u64::from(RateLimitSettings::DEFAULT_BURST),
        1,
        u64::from(Rate::MAX_BURST),
    )? as u32;
    let rate = if per_second == 0.0 {
        None
    } else {
        Some(Rate::new(per_second, burst).map_err(|e| ConfigError {
            var: "RATE_LIMIT_WRITES_PER_SECOND",
            reason: e.to_string(),
        })?)
    };
    let mut settings = RateLimitSettings {
        rate,
        exempt_moderators: false,
        exempt_services: false,
    };
    let roles = env
        .get("RATE_LIMIT_EXEMPT_ROLES")
        .unwrap_or_else(|| format!("{},{}", crate::roles::MODERATOR, crate::roles::SERVICE));
    for role in roles.split(',').map(str::trim).filter(|r| !r.is_empty()) {
        match role {
            crate::roles::MODERATOR => settings.exempt_moderators = true,
            crate::roles::SERVICE => settings.exempt_services = true,
            "none" => {}
            other => {
                return Err(ConfigError {
                    var: "RATE_LIMIT_EXEMPT_ROLES",
                    reason: format!(
                        "expected a comma list of moderator and service, or none; got {other:?}"
                    ),
                });
            }
        }
    }
    Ok(settings)
}
