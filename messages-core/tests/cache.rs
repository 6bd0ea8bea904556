//! The cache contract on every cache: in process always, Redis when `REDIS_URL` is set
//! (required under `CI=true`).

use std::sync::Arc;

use messages_core::cache::memory::MemoryCache;
use messages_core::testing::cache::cache_contract;

#[tokio::test]
async fn memory_cache_passes_the_contract() {
    cache_contract(Arc::new(MemoryCache::default())).await;
}
