//! Redis caches for tests: each with a key prefix of its own, so tests never see each
//! other's keys.

use std::time::Duration;

use crate::cache::redis::{RedisCache, RedisCacheConfig};
use crate::limit::redis::RedisLimiter;

/// The `REDIS_URL` to test against, or `None` (skip); see [`super::backend_url`].
pub fn redis_url() -> Option<String> {
    super::backend_url("REDIS_URL")
}

/// A fresh key prefix.
pub fn unique_prefix() -> String {
    format!("messages-test-{}", uuid::Uuid::new_v4().simple())
}

/// A cache on `url` with a prefix of its own, checked to answer.
///
/// # Panics
/// Under `CI=true` when Redis does not answer.
pub async fn cache_at(url: &str, prefix: &str) -> Option<RedisCache> {
    let mut config = RedisCacheConfig::new(url);
    config.key_prefix = prefix.to_owned();
    config.timeout = Duration::from_millis(500);
    let cache = RedisCache::new(config).expect("redis cache");
    if let Err(e) = crate::cache::PageCache::ping(&cache).await {
        super::unreachable("Redis", e)?;
        return None;
    }
    Some(cache)
}

/// A cache on `REDIS_URL` with a fresh prefix; `None` means skip.
pub async fn test_cache() -> Option<RedisCache> {
    let url = redis_url()?;
    cache_at(&url, &unique_prefix()).await
}

/// A rate limiter on `url` under `prefix`.
pub fn limiter_at(url: &str, prefix: &str, rate: crate::limit::Rate) -> RedisLimiter {
    RedisLimiter::new(
        &secrecy::SecretString::from(url.to_owned()),
        prefix,
        Duration::from_millis(500),
        rate,
    )
    .expect("redis limiter")
}

/// Makes limiters on `REDIS_URL`, each under a fresh prefix, once Redis answered a ping;
/// `None` means skip.
pub async fn limiters() -> Option<super::limit::Subject> {
    let url = redis_url()?;
    let probe = limiter_at(
        &url,
        &unique_prefix(),
        crate::limit::Rate::new(1.0, 1).unwrap(),
    );
    if let Err(e) = crate::limit::RateLimiter::ping(&probe).await {
        super::unreachable("Redis", e)?;
        return None;
    }
    Some(std::sync::Arc::new(move |rate| {
        std::sync::Arc::new(limiter_at(&url, &unique_prefix(), rate))
            as std::sync::Arc<dyn crate::limit::RateLimiter>
    }))
}

/// A `redis-server` of a test's own on a free loopback port, killed with `SIGKILL` by
/// [`RedisProcess::kill`] or when dropped: for tests of what happens when Redis dies.
pub struct RedisProcess {
    child: std::process::Child,
    port: u16,
}

impl RedisProcess {
    /// Starts one and waits until it answers; `None` (skip) when `redis-server` is not
    /// installed, except under `CI=true`.
    ///
    /// # Panics
    /// Under `CI=true` when it cannot start.
    pub async fn start() -> Option<RedisProcess> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let spawned = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--loglevel", "warning"])
            .stdout(std::process::Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) => {
                super::unreachable("redis-server", e)?;
                return None;
            }
        };
        let process = RedisProcess { child, port };
        let client = redis::Client::open(process.url()).expect("redis url");
        for _ in 0..100 {
            if let Ok(mut connection) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING")
                    .query_async::<()>(&mut connection)
                    .await
                    .is_ok()
            {
                return Some(process);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        super::unreachable("redis-server", "it did not answer within 5 s")?;
        None
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills it with `SIGKILL` and waits for it to be gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
