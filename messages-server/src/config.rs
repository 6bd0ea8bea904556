//! Configuration: every environment variable the server reads, parsed once into typed values
//! and validated, with errors that name the variable.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use messages_core::{Limits, PageSize};

/// A variable that is present but wrong.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {reason}")]
pub struct ConfigError {
    /// The environment variable.
    pub var: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Settings of the newest-page cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheSettings {
    /// Messages kept per thread (`CACHE_MAX_ITEMS`, 1..=200, default 200).
    pub max_items: PageSize,
    /// Life of a cached page (`CACHE_TTL_SECONDS`, default 120).
    pub ttl: Duration,
    /// Whether a hit extends that life (`CACHE_TOUCH_ON_HIT`, default true).
    pub touch_on_hit: bool,
    /// Threads kept by the in-process cache (`CACHE_MAX_THREADS`, default 100000).
    pub max_threads: usize,
}

/// Settings of the PostgreSQL store, present when `DATABASE_URL` or `DB_HOST` is set.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseSettings {
    /// The connection string (`DATABASE_URL`, or built from `DB_HOST`, `DB_PORT`, `DB_USER`,
    /// `DB_PASSWORD`, `DB_NAME`).
    pub url: String,
    /// Connections in the pool (`DB_POOL_SIZE`, default 16).
    pub pool_size: usize,
    /// Longest wait for a connection or an operation (`DB_TIMEOUT_MS`, default 5000).
    pub operation_timeout: Duration,
    /// How long to keep retrying an unreachable database at start (`DB_STARTUP_TIMEOUT_SECONDS`,
    /// default 60).
    pub startup_timeout: Duration,
    /// Whether `serve` applies migrations before listening (`MIGRATE_ON_START`, default true).
    pub migrate_on_start: bool,
}

impl std::fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: never print it.
        f.debug_struct("DatabaseSettings")
            .field("url", &"<redacted>")
            .field("pool_size", &self.pool_size)
            .field("operation_timeout", &self.operation_timeout)
            .field("startup_timeout", &self.startup_timeout)
            .field("migrate_on_start", &self.migrate_on_start)
            .finish()
    }
}

/// Settings of the Redis cache, present when `REDIS_URL` or `REDIS_HOST` is set.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisSettings {
    /// `REDIS_URL`, or built from `REDIS_HOST`, `REDIS_PORT`, `REDIS_DB`, `REDIS_PASSWORD`.
    pub url: String,
    /// Prefix of every key (`CACHE_KEY_PREFIX`, default `messages`).
    pub key_prefix: String,
    /// Longest wait for a cache call before reading the store (`REDIS_TIMEOUT_MS`, default 250).
    pub timeout: Duration,
}

impl std::fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSettings")
            .field("url", &"<redacted>")
            .field("key_prefix", &self.key_prefix)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Settings of event delivery.
#[derive(Clone, PartialEq, Eq)]
pub struct EventSettings {
    /// RabbitMQ (`AMQP_URL`, or built from `QUEUE_HOST`, `QUEUE_PORT`, `QUEUE_USER`,
    /// `QUEUE_PASSWORD`, `QUEUE_VHOST`); `None` delivers to the in-process sink.
    pub amqp_url: Option<String>,
    /// The topic exchange (`AMQP_EXCHANGE`, default `messages`).
    pub exchange: String,
    /// The queue bound to `message.created` for the old consumers (`AMQP_LEGACY_QUEUE`,
    /// default `messages_service`; `none` declares none).
    pub legacy_queue: Option<String>,
    /// `cloudEvents:source` (`EVENT_SOURCE`, default `/messages`).
    pub source: String,
    /// Events per relay pass (`RELAY_BATCH`, default 256).
    pub relay_batch: usize,
    /// How often the relay looks for events written by other replicas (`RELAY_POLL_MS`,
    /// default 500); this replica's own writes wake it at once.
    pub relay_poll: Duration,
}

impl std::fmt::Debug for EventSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSettings")
            .field("amqp_url", &self.amqp_url.as_ref().map(|_| "<redacted>"))
            .field("exchange", &self.exchange)
            .field("legacy_queue", &self.legacy_queue)
            .field("source", &self.source)
            .field("relay_batch", &self.relay_batch)
            .field("relay_poll", &self.relay_poll)
            .finish()
    }
}

impl Default for EventSettings {
    fn default() -> Self {
        EventSettings {
            amqp_url: None,
            exchange: "messages".into(),
            legacy_queue: Some("messages_service".into()),
            source: "/messages".into(),
            relay_batch: 256,
            relay_poll: Duration::from_millis(500),
        }
    }
}

/// How writes are authenticated.
#[derive(Clone, PartialEq, Eq)]
pub enum AuthSettings {
    /// Trust `X-User-Id` as the gateway sets it (no `AUTH_JWT_*` variable set).
    TrustGateway,
    /// Require `Authorization: Bearer <jwt>` signed with HS256 and this secret
    /// (`AUTH_JWT_SECRET`).
    Hs256 {
        /// The shared secret.
        secret: String,
        /// Required `iss` (`AUTH_JWT_ISSUER`), if any.
        issuer: Option<String>,
        /// Required `aud` (`AUTH_JWT_AUDIENCE`), if any.
        audience: Option<String>,
    },
    /// Require a bearer JWT signed with RS256 or ES256 by the key whose public half is this
    /// PEM (`AUTH_JWT_PUBLIC_KEY`).
    PublicKey {
        /// The PEM text.
        pem: String,
        /// Required `iss`, if any.
        issuer: Option<String>,
        /// Required `aud`, if any.
        audience: Option<String>,
    },
}

impl std::fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AuthSettings::TrustGateway => "TrustGateway",
            AuthSettings::Hs256 { .. } => "Hs256(<redacted>)",
            AuthSettings::PublicKey { .. } => "PublicKey",
        })
    }
}

/// The server's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Where to listen (`BIND_ADDR`, default `0.0.0.0:3000`).
    pub bind_addr: SocketAddr,
    /// Largest accepted request body (`MAX_BODY_BYTES`, default 65536).
    pub max_body_bytes: usize,
    /// Limits on message input (`MAX_CONTENT_CHARS`, `MAX_PATHS`, `MAX_PATH_CHARS`).
    pub limits: Limits,
    /// The newest-page cache.
    pub cache: CacheSettings,
    /// Log format (`LOG_FORMAT`: `text` or `json`, default `text`).
    pub log_format: LogFormat,
    /// How long in-flight requests may run after a stop signal (`SHUTDOWN_TIMEOUT_SECONDS`,
    /// default 20).
    pub shutdown_timeout: Duration,
    /// PostgreSQL, or `None` for the in-memory store.
    pub database: Option<DatabaseSettings>,
    /// Redis, or `None` for the in-process cache.
    pub redis: Option<RedisSettings>,
    /// Event delivery.
    pub events: EventSettings,
    /// Authentication of writes.
    pub auth: AuthSettings,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind_addr: SocketAddr::from(([0, 0, 0, 0], 3000)),
            max_body_bytes: 64 * 1024,
            limits: Limits::default(),
            cache: CacheSettings {
                max_items: PageSize::new(200).unwrap_or_default(),
                ttl: Duration::from_secs(120),
                touch_on_hit: true,
                max_threads: 100_000,
            },
            log_format: LogFormat::Text,
            shutdown_timeout: Duration::from_secs(20),
            database: None,
            redis: None,
            events: EventSettings::default(),
            auth: AuthSettings::TrustGateway,
        }
    }
}

/// Quotes a value for a libpq key/value connection string.
fn quote_conninfo(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Reads variables through a lookup function, so tests need not touch the process
/// environment.
struct Env<F> {
    lookup: F,
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    fn get(&self, var: &'static str) -> Option<String> {
        (self.lookup)(var).filter(|v| !v.trim().is_empty())
    }

    fn parse<T: FromStr>(&self, var: &'static str, default: T, what: &str) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(var) {
            None => Ok(default),
            Some(raw) => raw.trim().parse().map_err(|e| ConfigError {
                var,
                reason: format!("expected {what}, got {raw:?} ({e})"),
            }),
        }
    }

    fn range(
        &self,
        var: &'static str,
        default: u64,
        min: u64,
        max: u64,
    ) -> Result<u64, ConfigError> {
        let v: u64 = self.parse(var, default, "a whole number")?;
        if !(min..=max).contains(&v) {
            return Err(ConfigError {
                var,
                reason: format!("must be from {min} to {max}, got {v}"),
            });
        }
        Ok(v)
    }

    fn flag(&self, var: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(var).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) => match v.as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" => Ok(false),
                _ => Err(ConfigError {
                    var,
                    reason: format!("expected true or false, got {v:?}"),
                }),
            },
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
        let env = Env { lookup };
        let d = Config::default();
        let bind_addr = env.parse("BIND_ADDR", d.bind_addr, "an address like 0.0.0.0:3000")?;
        let max_body_bytes = env.range(
            "MAX_BODY_BYTES",
            d.max_body_bytes as u64,
            1024,
            16 * 1024 * 1024,
        )? as usize;
        let limits = Limits {
            max_content_chars: env.range(
                "MAX_CONTENT_CHARS",
                d.limits.max_content_chars as u64,
                1,
                1_000_000,
            )? as usize,
            max_paths: env.range("MAX_PATHS", d.limits.max_paths as u64, 0, 1_000)? as usize,
            max_path_chars: env.range(
                "MAX_PATH_CHARS",
                d.limits.max_path_chars as u64,
                1,
                65_536,
            )? as usize,
        };
        let max_items = env.range("CACHE_MAX_ITEMS", 200, 1, u64::from(PageSize::MAX))?;
        let cache = CacheSettings {
            max_items: PageSize::new(max_items as u32).map_err(|e| ConfigError {
                var: "CACHE_MAX_ITEMS",
                reason: e.to_string(),
            })?,
            ttl: Duration::from_secs(env.range("CACHE_TTL_SECONDS", 120, 1, 86_400)?),
            touch_on_hit: env.flag("CACHE_TOUCH_ON_HIT", true)?,
            max_threads: env.range("CACHE_MAX_THREADS", 100_000, 1, 100_000_000)? as usize,
        };
        let log_format = match env.get("LOG_FORMAT").map(|v| v.trim().to_ascii_lowercase()) {
            None => LogFormat::Text,
            Some(v) if v == "text" => LogFormat::Text,
            Some(v) if v == "json" => LogFormat::Json,
            Some(v) => {
                return Err(ConfigError {
                    var: "LOG_FORMAT",
                    reason: format!("expected text or json, got {v:?}"),
                });
            }
        };
        let shutdown_timeout =
            Duration::from_secs(env.range("SHUTDOWN_TIMEOUT_SECONDS", 20, 0, 3_600)?);
        let database = database(&env)?;
        let redis = redis(&env)?;
        let events = events(&env)?;
        let auth = auth(&env)?;
        Ok(Config {
            auth,
            events,
            database,
            redis,
            bind_addr,
            max_body_bytes,
            limits,
            cache,
            log_format,
            shutdown_timeout,
        })
    }
}

fn database<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
) -> Result<Option<DatabaseSettings>, ConfigError> {
    let url = match (env.get("DATABASE_URL"), env.get("DB_HOST")) {
        (Some(url), _) => {
            let url = url.trim().to_owned();
            if let Err(e) = url.parse::<tokio_postgres::Config>() {
                return Err(ConfigError {
                    var: "DATABASE_URL",
                    reason: format!("not a PostgreSQL connection string ({e})"),
                });
            }
            url
        }
        (None, Some(host)) => {
            let port = env.range("DB_PORT", 5432, 1, 65_535)?;
            let mut parts = vec![
                format!("host={}", quote_conninfo(host.trim())),
                format!("port={port}"),
            ];
            for (var, key) in [
                ("DB_USER", "user"),
                ("DB_PASSWORD", "password"),
                ("DB_NAME", "dbname"),
            ] {
                if let Some(value) = env.get(var) {
                    parts.push(format!("{key}={}", quote_conninfo(&value)));
                }
            }
            parts.join(" ")
        }
        (None, None) => return Ok(None),
    };
    Ok(Some(DatabaseSettings {
        url,
        pool_size: env.range("DB_POOL_SIZE", 16, 1, 1_000)? as usize,
        operation_timeout: Duration::from_millis(env.range("DB_TIMEOUT_MS", 5_000, 10, 600_000)?),
        startup_timeout: Duration::from_secs(env.range(
            "DB_STARTUP_TIMEOUT_SECONDS",
            60,
            0,
            3_600,
        )?),
        migrate_on_start: env.flag("MIGRATE_ON_START", true)?,
    }))
}

fn auth<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<AuthSettings, ConfigError> {
    let issuer = env.get("AUTH_JWT_ISSUER");
    let audience = env.get("AUTH_JWT_AUDIENCE");
    match (env.get("AUTH_JWT_SECRET"), env.get("AUTH_JWT_PUBLIC_KEY")) {
        (Some(_), Some(_)) => Err(ConfigError {
            var: "AUTH_JWT_SECRET",
            reason: "set AUTH_JWT_SECRET or AUTH_JWT_PUBLIC_KEY, not both".into(),
        }),
        (Some(secret), None) => {
            if secret.len() < 32 {
                return Err(ConfigError {
                    var: "AUTH_JWT_SECRET",
                    reason: "must be at least 32 bytes".into(),
                });
            }
            Ok(AuthSettings::Hs256 {
                secret,
                issuer,
                audience,
            })
        }
        (None, Some(pem)) => {
            let rsa = jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes());
            let ec = jsonwebtoken::DecodingKey::from_ec_pem(pem.as_bytes());
            if rsa.is_err() && ec.is_err() {
                return Err(ConfigError {
                    var: "AUTH_JWT_PUBLIC_KEY",
                    reason: "expected an RSA or EC (P-256) public key in PEM".into(),
                });
            }
            Ok(AuthSettings::PublicKey {
                pem,
                issuer,
                audience,
            })
        }
        (None, None) => Ok(AuthSettings::TrustGateway),
    }
}

fn events<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<EventSettings, ConfigError> {
    let d = EventSettings::default();
    let amqp_url = match (env.get("AMQP_URL"), env.get("QUEUE_HOST")) {
        (Some(url), _) => {
            let url = url.trim().to_owned();
            if !(url.starts_with("amqp://") || url.starts_with("amqps://")) {
                return Err(ConfigError {
                    var: "AMQP_URL",
                    reason: "expected an amqp:// URL".into(),
                });
            }
            Some(url)
        }
        (None, Some(host)) => {
            let port = env.range("QUEUE_PORT", 5672, 1, 65_535)?;
            let user = env.get("QUEUE_USER").unwrap_or_else(|| "guest".into());
            let password = env.get("QUEUE_PASSWORD").unwrap_or_else(|| "guest".into());
            let vhost = env.get("QUEUE_VHOST").unwrap_or_else(|| "/".into());
            Some(format!(
                "amqp://{}:{}@{}:{port}/{}",
                percent_encode(&user),
                percent_encode(&password),
                host.trim(),
                percent_encode(&vhost)
            ))
        }
        (None, None) => None,
    };
    let name = |var: &'static str, default: &str| -> Result<String, ConfigError> {
        let value = env.get(var).unwrap_or_else(|| default.to_owned());
        if value.len() > 255 || value.chars().any(char::is_whitespace) {
            return Err(ConfigError {
                var,
                reason: "must be at most 255 characters without spaces".into(),
            });
        }
        Ok(value)
    };
    let legacy = name("AMQP_LEGACY_QUEUE", "messages_service")?;
    Ok(EventSettings {
        amqp_url,
        exchange: name("AMQP_EXCHANGE", &d.exchange)?,
        legacy_queue: (!legacy.eq_ignore_ascii_case("none")).then_some(legacy),
        source: env.get("EVENT_SOURCE").unwrap_or(d.source),
        relay_batch: env.range("RELAY_BATCH", 256, 1, 10_000)? as usize,
        relay_poll: Duration::from_millis(env.range("RELAY_POLL_MS", 500, 10, 60_000)?),
    })
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn redis<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
) -> Result<Option<RedisSettings>, ConfigError> {
    let url = match (env.get("REDIS_URL"), env.get("REDIS_HOST")) {
        (Some(url), _) => {
            let url = url.trim().to_owned();
            if !(url.starts_with("redis://")
                || url.starts_with("rediss://")
                || url.starts_with("unix://"))
            {
                return Err(ConfigError {
                    var: "REDIS_URL",
                    reason: "expected a redis:// URL".into(),
                });
            }
            url
        }
        (None, Some(host)) => {
            let port = env.range("REDIS_PORT", 6379, 1, 65_535)?;
            let db = env.range("REDIS_DB", 0, 0, 1_000)?;
            let auth = env
                .get("REDIS_PASSWORD")
                .map(|p| format!(":{}@", percent_encode(&p)))
                .unwrap_or_default();
            let host = host.trim();
            let host = if host.contains(':') {
                format!("[{host}]")
            } else {
                host.to_owned()
            };
            format!("redis://{auth}{host}:{port}/{db}")
        }
        (None, None) => return Ok(None),
    };
    let key_prefix = env
        .get("CACHE_KEY_PREFIX")
        .unwrap_or_else(|| "messages".into());
    if key_prefix.contains(['{', '}']) || key_prefix.chars().any(char::is_whitespace) {
        return Err(ConfigError {
            var: "CACHE_KEY_PREFIX",
            reason: "must not contain braces or spaces".into(),
        });
    }
    Ok(Some(RedisSettings {
        url,
        key_prefix,
        timeout: Duration::from_millis(env.range("REDIS_TIMEOUT_MS", 250, 1, 60_000)?),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_without_environment() {
        assert_eq!(config(&[]).unwrap(), Config::default());
    }

    #[test]
    fn values_are_read() {
        let c = config(&[
            ("BIND_ADDR", "127.0.0.1:8080"),
            ("MAX_BODY_BYTES", "2048"),
            ("CACHE_MAX_ITEMS", "50"),
            ("CACHE_TOUCH_ON_HIT", "false"),
            ("LOG_FORMAT", "JSON"),
        ])
        .unwrap();
        assert_eq!(c.bind_addr.port(), 8080);
        assert_eq!(c.max_body_bytes, 2048);
        assert_eq!(c.cache.max_items.get(), 50);
        assert!(!c.cache.touch_on_hit);
        assert_eq!(c.log_format, LogFormat::Json);
    }

    #[test]
    fn database_from_url_or_parts() {
        assert!(config(&[]).unwrap().database.is_none());
        let db = config(&[
            ("DATABASE_URL", "postgres://u:p@h:5433/d"),
            ("MIGRATE_ON_START", "false"),
        ])
        .unwrap()
        .database
        .unwrap();
        assert_eq!(db.url, "postgres://u:p@h:5433/d");
        assert!(!db.migrate_on_start);
        assert!(
            !format!("{db:?}").contains("u:p"),
            "the URL is never printed"
        );
        let db = config(&[
            ("DB_HOST", "db"),
            ("DB_USER", "app"),
            ("DB_PASSWORD", "it's"),
            ("DB_NAME", "messages"),
        ])
        .unwrap()
        .database
        .unwrap();
        assert_eq!(
            db.url,
            "host='db' port=5432 user='app' password='it\\'s' dbname='messages'"
        );
        let parsed: tokio_postgres::Config = db.url.parse().unwrap();
        assert_eq!(parsed.get_password(), Some(&b"it's"[..]));
        assert_eq!(parsed.get_dbname(), Some("messages"));
    }

    #[test]
    fn redis_from_url_or_parts() {
        assert!(config(&[]).unwrap().redis.is_none());
        let r = config(&[("REDIS_URL", "redis://127.0.0.1:6379/2")])
            .unwrap()
            .redis
            .unwrap();
        assert_eq!(r.url, "redis://127.0.0.1:6379/2");
        assert_eq!(r.key_prefix, "messages");
        let r = config(&[
            ("REDIS_HOST", "cache"),
            ("REDIS_PASSWORD", "p@ss word"),
            ("REDIS_DB", "3"),
        ])
        .unwrap()
        .redis
        .unwrap();
        assert_eq!(r.url, "redis://:p%40ss%20word@cache:6379/3");
        assert!(!format!("{r:?}").contains("p%40ss"));
        for (var, value) in [
            ("REDIS_URL", "http://x"),
            ("CACHE_KEY_PREFIX", "a{b}"),
            ("REDIS_TIMEOUT_MS", "0"),
        ] {
            let err = config(&[("REDIS_HOST", "cache"), (var, value)]).unwrap_err();
            assert_eq!(err.var, var);
        }
    }

    #[test]
    fn events_from_url_or_parts() {
        let c = config(&[]).unwrap();
        assert_eq!(c.events, EventSettings::default());
        let e = config(&[
            ("QUEUE_HOST", "mq"),
            ("QUEUE_USER", "app"),
            ("QUEUE_PASSWORD", "s/cret"),
        ])
        .unwrap()
        .events;
        assert_eq!(
            e.amqp_url.as_deref(),
            Some("amqp://app:s%2Fcret@mq:5672/%2F")
        );
        assert!(!format!("{e:?}").contains("cret"));
        let e = config(&[
            ("AMQP_URL", "amqp://g:g@h:5672/%2f"),
            ("AMQP_LEGACY_QUEUE", "none"),
        ])
        .unwrap()
        .events;
        assert_eq!(e.legacy_queue, None);
        for (var, value) in [
            ("AMQP_URL", "http://x"),
            ("AMQP_EXCHANGE", "a b"),
            ("RELAY_BATCH", "0"),
        ] {
            assert_eq!(config(&[(var, value)]).unwrap_err().var, var);
        }
    }

    #[test]
    fn errors_name_the_variable() {
        for (var, value) in [
            ("BIND_ADDR", "nope"),
            ("MAX_BODY_BYTES", "-1"),
            ("MAX_BODY_BYTES", "10"),
            ("CACHE_MAX_ITEMS", "201"),
            ("CACHE_MAX_ITEMS", "0"),
            ("CACHE_TOUCH_ON_HIT", "maybe"),
            ("LOG_FORMAT", "xml"),
            ("SHUTDOWN_TIMEOUT_SECONDS", "soon"),
            ("DATABASE_URL", "postgres://h:notaport/x"),
            ("DB_PORT", "70000"),
            ("MIGRATE_ON_START", "sometimes"),
        ] {
            let vars: Vec<(&str, &str)> = if var.starts_with("DB_") || var == "MIGRATE_ON_START" {
                vec![("DB_HOST", "db"), (var, value)]
            } else {
                vec![(var, value)]
            };
            let err = config(&vars).unwrap_err();
            assert_eq!(err.var, var);
            assert!(err.to_string().starts_with(var));
        }
    }
}
