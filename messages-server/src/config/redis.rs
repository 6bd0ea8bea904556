//! Redis (`RedisCacheConfig`): one node or a cluster, for the cache, the limiter and the hints
//! between replicas.

use messages_core::cache::Lifetime;
use messages_core::cache::redis::RedisCacheConfig;
use messages_core::redis_server::RedisServer;
use secrecy::SecretString;

use super::env::{ConfigError, Env, percent_encode};

/// Reads `REDIS_CLUSTER_NODES`, or `REDIS_URL`, or `REDIS_HOST` and its parts, then the
/// settings every Redis shares; `None` without Redis. The windows keep `lifetime`, the
/// in-process cache's.
pub(super) fn from_env<F: Fn(&str) -> Option<String>>(
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
