//! The in-process cache (`MemoryCacheConfig`) and the lifetime every cache's windows have.

use messages_core::cache::Lifetime;
use messages_core::cache::memory::MemoryCacheConfig;

use super::env::{ConfigError, Env};

/// Reads `CACHE_TTL_SECONDS`, `CACHE_TOUCH_ON_HIT`, `CACHE_MAX_THREADS` and `CACHE_MAX_MB`,
/// each defaulting to the core's [`MemoryCacheConfig::default`]. Redis keeps the same
/// lifetime.
pub(super) fn from_env<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
) -> Result<MemoryCacheConfig, ConfigError> {
    let d = MemoryCacheConfig::default();
    let lifetime = Lifetime {
        ttl: env.seconds("CACHE_TTL_SECONDS", d.lifetime.ttl, 1, 86_400)?,
        touch_on_hit: env.flag("CACHE_TOUCH_ON_HIT", d.lifetime.touch_on_hit)?,
    };
    Ok(MemoryCacheConfig {
        lifetime,
        max_threads: env.count("CACHE_MAX_THREADS", d.max_threads, 1, 100_000_000)?,
        max_bytes: env.count("CACHE_MAX_MB", d.max_bytes >> 20, 1, 1 << 20)? << 20,
    })
}
