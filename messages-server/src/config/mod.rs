//! Configuration: every environment variable the server reads, parsed once into typed values
//! and validated, with errors that name the variable. One struct per section, each read by
//! its own file with its defaults stated once (the core's config types keep theirs).
//!
//! - `env`: the reader (defaults, ranges, flags, choices), which can record what it read.
//! - `http`, `streams`, `service`, `cache`, `limits`, `store`, `redis`, `events`, `auth`: the
//!   sections.

use messages_core::ServiceConfig;
use messages_core::cache::memory::MemoryCacheConfig;
use messages_core::cache::redis::RedisCacheConfig;

mod auth;
mod cache;
mod env;
mod events;
mod http;
mod limits;
mod redis;
mod service;
mod store;
mod streams;
#[cfg(test)]
mod tests;

pub use auth::AuthSettings;
pub use env::{ConfigError, Variable};
pub use events::EventSettings;
pub use http::HttpSettings;
pub use limits::RateLimitSettings;
pub use store::{DatabaseSettings, SqliteSettings, StoreSettings};
pub use streams::{LiveTransport, StreamSettings};

use env::{Choice, Env};

/// How log lines are written (`LOG_FORMAT`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (`text`): the default.
    #[default]
    Text,
    /// One JSON object per line (`json`).
    Json,
}

impl Choice for LogFormat {
    const ALL: &'static [Self] = &[LogFormat::Text, LogFormat::Json];

    fn name(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// The server's configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Listening and connection handling.
    pub http: HttpSettings,
    /// Event streams and long polls.
    pub streams: StreamSettings,
    /// Log format (`LOG_FORMAT`: `text` or `json`, default `text`).
    pub log_format: LogFormat,
    /// The service: input limits (`MAX_CONTENT_CHARS`, `MAX_PATHS`, `MAX_PATH_CHARS`,
    /// `MAX_MENTIONS`),
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
            http: HttpSettings::default(),
            streams: StreamSettings::default(),
            log_format: LogFormat::default(),
            service: ServiceConfig::default(),
            memory_cache: MemoryCacheConfig::default(),
            store: StoreSettings::Sqlite(SqliteSettings::new(SqliteSettings::DEFAULT_DATA_DIR)),
            redis: None,
            events: EventSettings::default(),
            auth: AuthSettings::TrustGateway,
            rate_limit: RateLimitSettings::default(),
        }
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|var| std::env::var(var).ok())
    }

    /// Reads variables through `lookup`; unset or blank variables take their defaults.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::read(&Env::new(lookup))
    }

    /// Every variable the server reads, with its default, in the order it reads them: the
    /// environment read as it is without any variable set, and again with each backend's
    /// parts set (its other variables are read only then). What `messages-server facts`
    /// prints, so that checks of the deployment read them from the program.
    pub fn variables() -> Vec<Variable> {
        const SECRET: &str = "a secret of thirty-two bytes or more";
        let scenarios: [&[(&str, &str)]; 6] = [
            &[],
            &[("DB_HOST", "db")],
            &[("REDIS_HOST", "redis")],
            &[("REDIS_CLUSTER_NODES", "redis:7000")],
            &[("QUEUE_HOST", "rabbitmq")],
            &[("AUTH_JWT_SECRET", SECRET)],
        ];
        let mut all: Vec<Variable> = Vec::new();
        for scenario in scenarios {
            let env = Env::recording(|var: &str| {
                scenario
                    .iter()
                    .find(|(name, _)| *name == var)
                    .map(|(_, value)| (*value).to_owned())
            });
            // A scenario is read for the variables it asks for; its verdict does not matter.
            let _ = Self::read(&env);
            for variable in env.seen() {
                if !all.iter().any(|v| v.name == variable.name) {
                    all.push(variable);
                }
            }
        }
        all
    }

    fn read<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let auth = AuthSettings::from_env(env)?;
        let default_bind = match auth {
            AuthSettings::TrustGateway => HttpSettings::LOOPBACK,
            _ => HttpSettings::EVERYWHERE,
        };
        let http = HttpSettings::from_env(env, default_bind)?;
        let streams = StreamSettings::from_env(env)?;
        let log_format = env.choice("LOG_FORMAT", LogFormat::default())?;
        let service = service::from_env(env)?;
        let memory_cache = cache::from_env(env)?;
        let store = StoreSettings::from_env(env)?;
        let redis = redis::from_env(env, memory_cache.lifetime)?;
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
            http,
            streams,
            log_format,
            service,
            memory_cache,
            store,
            redis,
            events: EventSettings::from_env(env)?,
            auth,
            rate_limit: RateLimitSettings::from_env(env)?,
        })
    }
}
