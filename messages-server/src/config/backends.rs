//! The backends' variables: the store (SQLite, memory, PostgreSQL), Redis, RabbitMQ, and JWT
//! authentication. Each reads into the core's own config type, whose defaults it keeps.

use messages_core::cache::Lifetime;
use messages_core::cache::redis::RedisCacheConfig;
use messages_core::events::amqp::AmqpConfig;
use messages_core::events::outbox::RelayConfig;
use messages_core::redis_server::RedisServer;
use messages_core::storage::postgres::PostgresConfig;
use messages_core::storage::sqlite::Synchronous;
use secrecy::SecretString;

use super::env::{Env, percent_encode, quote_conninfo};
use super::{
    AuthSettings, ConfigError, DatabaseSettings, EventSettings, SqliteSettings, StoreSettings,
};

/// `STORE`: PostgreSQL when it is configured, else SQLite in `DATA_DIR`; `memory` on request.
pub(super) fn store<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
) -> Result<StoreSettings, ConfigError> {
    let postgres = database(env)?;
    let choice = match env.get("STORE") {
        None => None,
        Some(_) => Some(env.choice("STORE", "sqlite", &["sqlite", "memory", "postgres"])?),
    };
    match (choice, postgres) {
        (None | Some("postgres"), Some(db)) => Ok(StoreSettings::Postgres(db)),
        (Some("postgres"), None) => Err(ConfigError {
            var: "STORE",
            reason: "STORE=postgres needs DATABASE_URL (or DB_HOST)".into(),
        }),
        (Some(other), Some(_)) => Err(ConfigError {
            var: "STORE",
            reason: format!(
                "STORE={other}, but DATABASE_URL (or DB_HOST) names a PostgreSQL database: unset one"
            ),
        }),
        (Some("memory"), None) => Ok(StoreSettings::Memory),
        (_, None) => {
            let dir = env
                .get("DATA_DIR")
                .unwrap_or_else(|| SqliteSettings::DEFAULT_DATA_DIR.to_owned());
            let mut settings = SqliteSettings::new(dir);
            let sqlite = &mut settings.sqlite;
            sqlite.synchronous =
                match env.choice("SQLITE_SYNCHRONOUS", "full", &["full", "normal"])? {
                    "normal" => Synchronous::Normal,
                    _ => Synchronous::Full,
                };
            sqlite.operation_timeout =
                env.millis("DB_TIMEOUT_MS", sqlite.operation_timeout, 10, 600_000)?;
            if env.get("SQLITE_MAX_SIZE_MB").is_some() {
                let mb = env.range("SQLITE_MAX_SIZE_MB", 0, 1, 16 << 20)?;
                sqlite.max_size = Some(mb << 20);
            }
            Ok(StoreSettings::Sqlite(settings))
        }
    }
}

fn database<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
) -> Result<Option<DatabaseSettings>, ConfigError> {
    let url = match (env.get("DATABASE_URL"), env.get("DB_HOST")) {
        (Some(url), _) => {
            if let Err(messages_core::Error::Invalid { reason, .. }) =
                PostgresConfig::new(url.clone()).check()
            {
                return Err(ConfigError {
                    var: "DATABASE_URL",
                    reason: format!("not a PostgreSQL connection string ({reason})"),
                });
            }
            url
        }
        (None, Some(host)) => {
            let port = env.range("DB_PORT", 5432, 1, 65_535)?;
            let mut parts = vec![
                format!("host={}", quote_conninfo(&host)),
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
    let mut postgres = PostgresConfig::new(url);
    postgres.pool_size = env.count("DB_POOL_SIZE", postgres.pool_size, 1, 1_000)?;
    postgres.operation_timeout =
        env.millis("DB_TIMEOUT_MS", postgres.operation_timeout, 10, 600_000)?;
    postgres.group_max = env.count("DB_GROUP_MAX", postgres.group_max, 1, 4_096)?;
    postgres.group_lanes = env.count("DB_GROUP_LANES", postgres.group_lanes, 1, 64)?;
    Ok(Some(DatabaseSettings {
        postgres,
        startup_timeout: env.seconds(
            "DB_STARTUP_TIMEOUT_SECONDS",
            DatabaseSettings::DEFAULT_STARTUP_TIMEOUT,
            0,
            3_600,
        )?,
        migrate_on_start: env.flag(
            "MIGRATE_ON_START",
            DatabaseSettings::DEFAULT_MIGRATE_ON_START,
        )?,
    }))
}

pub(super) fn redis<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    lifetime: Lifetime,
) -> Result<Option<RedisCacheConfig>, ConfigError> {
    if let Some(nodes) = env.get("REDIS_CLUSTER_NODES") {
        if env.get("REDIS_URL").is_some() || env.get("REDIS_HOST").is_some() {
            return Err(ConfigError {
                var: "REDIS_CLUSTER_NODES",
                reason: "set either REDIS_CLUSTER_NODES (a cluster) or REDIS_URL / REDIS_HOST \
                         (one node), not both"
                    .into(),
            });
        }
        let server = RedisServer::Cluster {
            nodes: cluster_nodes(&nodes)?,
            password: env.get("REDIS_PASSWORD").map(SecretString::from),
        };
        return redis_settings(env, RedisCacheConfig::on(server), lifetime).map(Some);
    }
    let url = match (env.get("REDIS_URL"), env.get("REDIS_HOST")) {
        (Some(url), _) => {
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
            let host = if host.contains(':') {
                format!("[{host}]")
            } else {
                host
            };
            format!("redis://{auth}{host}:{port}/{db}")
        }
        (None, None) => return Ok(None),
    };
    redis_settings(env, RedisCacheConfig::new(url), lifetime).map(Some)
}

/// The seeds of `REDIS_CLUSTER_NODES`: a comma list of `host:port`.
fn cluster_nodes(list: &str) -> Result<Vec<String>, ConfigError> {
    let bad = |reason: String| ConfigError {
        var: "REDIS_CLUSTER_NODES",
        reason,
    };
    let nodes: Vec<String> = list
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect();
    if nodes.is_empty() {
        return Err(bad("expected a comma list of host:port".into()));
    }
    for node in &nodes {
        let valid = node.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty()
                && !host.contains(['/', '@', ' '])
                && port.parse::<u16>().is_ok_and(|p| p > 0)
        });
        if !valid {
            return Err(bad(format!("expected host:port, got {node:?}")));
        }
    }
    Ok(nodes)
}

/// The settings every Redis shares: `CACHE_KEY_PREFIX`, `REDIS_TIMEOUT_MS`, the lifetime.
fn redis_settings<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    mut redis: RedisCacheConfig,
    lifetime: Lifetime,
) -> Result<RedisCacheConfig, ConfigError> {
    redis.lifetime = lifetime;
    if let Some(prefix) = env.get("CACHE_KEY_PREFIX") {
        if prefix.contains(['{', '}']) || prefix.chars().any(char::is_whitespace) {
            return Err(ConfigError {
                var: "CACHE_KEY_PREFIX",
                reason: "must not contain braces or spaces".into(),
            });
        }
        redis.key_prefix = prefix;
    }
    redis.timeout = env.millis("REDIS_TIMEOUT_MS", redis.timeout, 1, 60_000)?;
    Ok(redis)
}

pub(super) fn events<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
) -> Result<EventSettings, ConfigError> {
    let url = match (env.get("AMQP_URL"), env.get("QUEUE_HOST")) {
        (Some(url), _) => {
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
                "amqp://{}:{}@{host}:{port}/{}",
                percent_encode(&user),
                percent_encode(&password),
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
    // The names are checked whether or not RabbitMQ is configured, so a typo shows at once.
    let mut amqp = AmqpConfig::new(url.clone().unwrap_or_default());
    amqp.exchange = name("AMQP_EXCHANGE", &amqp.exchange)?;
    let legacy = name(
        "AMQP_LEGACY_QUEUE",
        amqp.legacy_queue.as_deref().unwrap_or("none"),
    )?;
    amqp.legacy_queue = (!legacy.eq_ignore_ascii_case("none")).then_some(legacy);
    if let Some(source) = env.get("EVENT_SOURCE") {
        amqp.source = source;
    }
    let mut relay = RelayConfig::default();
    relay.batch = env.count("RELAY_BATCH", relay.batch, 1, 10_000)?;
    relay.poll = env.millis("RELAY_POLL_MS", relay.poll, 10, 60_000)?;
    Ok(EventSettings {
        amqp: url.map(|_| amqp),
        relay,
    })
}

pub(super) fn auth<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
) -> Result<AuthSettings, ConfigError> {
    let issuer = env.get("AUTH_JWT_ISSUER");
    let audience = env.get("AUTH_JWT_AUDIENCE");
    let roles_claim = env
        .get("AUTH_JWT_ROLES_CLAIM")
        .unwrap_or_else(|| "roles".to_owned());
    let claim_name_ok = (1..=64).contains(&roles_claim.len())
        && roles_claim
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.:/".contains(&b));
    if !claim_name_ok {
        return Err(ConfigError {
            var: "AUTH_JWT_ROLES_CLAIM",
            reason: "a claim name: 1 to 64 of A-Z a-z 0-9 _ - . : /".into(),
        });
    }
    match (
        (env.lookup)("AUTH_JWT_SECRET").filter(|s| !s.trim().is_empty()),
        env.get("AUTH_JWT_PUBLIC_KEY"),
    ) {
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
                secret: SecretString::from(secret),
                issuer,
                audience,
                roles_claim,
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
                roles_claim,
            })
        }
        (None, None) => Ok(AuthSettings::TrustGateway),
    }
}
