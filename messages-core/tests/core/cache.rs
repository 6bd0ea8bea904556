//! The cache contract on every cache: in process always, Redis when `REDIS_URL` is set, a Redis
//! Cluster when `REDIS_CLUSTER_NODES` is (both required under `CI=true`).

use std::sync::Arc;

use messages_core::cache::PageCache;
use messages_core::cache::memory::MemoryCache;

messages_core::cache_contract!(
    memory => async { Some(Arc::new(MemoryCache::default()) as Arc<dyn PageCache>) },
    redis => async {
        let cache = messages_core::testing::redis::test_cache().await?;
        Some(Arc::new(cache) as Arc<dyn PageCache>)
    },
    redis_cluster => async {
        let cache = messages_core::testing::redis::test_cluster_cache().await?;
        Some(Arc::new(cache) as Arc<dyn PageCache>)
    },
);

#[tokio::test]
async fn redis_windows_are_shared_between_processes() {
    // Two caches with the same prefix stand for two server processes.
    use messages_core::testing::redis::{cache_at, redis_url, unique_prefix};
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix();
    let (Some(a), Some(b)) = (cache_at(&url, &prefix).await, cache_at(&url, &prefix).await) else {
        return;
    };
    let thread = messages_core::ThreadId::from_uuid(uuid::Uuid::new_v4());
    let seen = a.lookup(thread).await.expect("lookup").generation;
    let window = Arc::new(messages_core::cache::Window::from_page(
        &messages_core::Page {
            items: vec![],
            next_cursor: None,
            has_more: false,
            rev: 0,
        },
    ));
    assert!(
        a.fill(thread, seen, Arc::clone(&window))
            .await
            .expect("fill")
    );
    let from_b = b.lookup(thread).await.expect("lookup");
    assert_eq!(from_b.generation, seen);
    assert_eq!(from_b.window.as_deref(), Some(window.as_ref()));
    // A write through B is seen by A at once, although A holds a local copy.
    assert!(a.lookup(thread).await.expect("lookup").window.is_some());
    b.invalidate(thread).await.expect("invalidate");
    let from_a = a.lookup(thread).await.expect("lookup");
    assert!(from_a.window.is_none());
    assert_ne!(from_a.generation, seen);
}
