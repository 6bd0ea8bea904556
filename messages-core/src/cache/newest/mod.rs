//! The newest page of each thread: served from the cache when it can be, read from the store
//! once per thread and generation however many requests missed together, and never stale
//! after a write acknowledged before the read began.
//!
//! - `loads`: one store read for every request that missed together.
//! - `encodings`: messages kept encoded, so a refill encodes only what changed.
//! - `unconfirmed`: threads whose invalidation failed, read from the store until it succeeds.
//! - `counters`: hits, misses, fills and the rest, for metrics.

use std::sync::Arc;

use crate::cache::breaker::{Breaker, BreakerConfig, CircuitBreaker};
use crate::cache::{CacheStats, Generation, PageCache, Window};
use crate::error::Result;
use crate::message::ThreadId;
use crate::page::{Page, PageJson, PageQuery, PageSize};
use crate::storage::{ObservedStore, Operation};

mod counters;
mod encodings;
mod loads;
mod unconfirmed;

use counters::Counters;
use encodings::Encodings;
use loads::SharedLoads;
use unconfirmed::Unconfirmed;

/// The cache front of the service: what it takes to answer the newest page from the cache
/// without ever serving a page older than an acknowledged write.
pub(crate) struct NewestPages {
    /// The cache, behind a circuit breaker unless it lives in this process.
    cache: Arc<dyn PageCache>,
    /// The breaker in front of the cache, when there is one.
    breaker: Option<Arc<Breaker>>,
    window: PageSize,
    /// Whether every hit is checked against the thread's position in the store: when the
    /// store is shared with other processes but the cache is not, this process's cache
    /// learns of their writes from nobody, and one indexed read of the position (far cheaper
    /// than reading and encoding the page) is what keeps a hit exact.
    check_hits: bool,
    loads: SharedLoads,
    counters: Counters,
    encodings: Encodings,
    unconfirmed: Unconfirmed,
}

impl NewestPages {
    /// A front of `cache` holding `window` messages per thread. With `check_hits`, a hit is
    /// served only if the store's position of the thread is the window's.
    pub(crate) fn new(
        cache: Arc<dyn PageCache>,
        window: PageSize,
        breaker: BreakerConfig,
        check_hits: bool,
    ) -> Self {
        let (cache, breaker) = if cache.is_local() {
            (cache, None)
        } else {
            let guarded = CircuitBreaker::new(cache, breaker);
            let breaker = guarded.breaker();
            (Arc::new(guarded) as Arc<dyn PageCache>, Some(breaker))
        };
        NewestPages {
            cache,
            breaker,
            window,
            check_hits,
            loads: SharedLoads::default(),
            counters: Counters::default(),
            encodings: Encodings::default(),
            unconfirmed: Unconfirmed::default(),
        }
    }

    /// Whether a newest page of `size` is answered here rather than by the store.
    pub(crate) fn serves(&self, size: PageSize) -> bool {
        size <= self.window
    }

    /// The circuit breaker in front of the cache; `None` for a cache in this process.
    pub(crate) fn breaker(&self) -> Option<Arc<Breaker>> {
        self.breaker.clone()
    }

    /// What the cache did so far.
    pub(crate) fn stats(&self) -> CacheStats {
        self.counters.stats()
    }

    /// Whether the cache answers (for readiness; it does not make the service unready).
    pub(crate) async fn ping(&self) -> Result<()> {
        self.cache.ping().await
    }

    /// After a commit: make the thread's cached page stale. If the cache cannot confirm it,
    /// the thread is read from the store in this process until it does.
    pub(crate) async fn invalidate(&self, thread: ThreadId) {
        if let Err(error) = self.cache.invalidate(thread).await {
            self.counters.bump(|c| &c.errors);
            tracing::warn!(%thread, error = %error, "cache invalidation failed; the thread is read from the store until it succeeds");
            self.unconfirmed.record(thread);
        }
    }

    /// The newest page of `size` (at most the window) as response JSON.
    pub(crate) async fn page_json(
        &self,
        store: &ObservedStore,
        thread: ThreadId,
        size: PageSize,
    ) -> Result<PageJson> {
        let lookup = if !self.unconfirmed.usable(self.cache.as_ref(), thread).await {
            None
        } else {
            let lookup = match self.cache.lookup_now(thread) {
                Some(now) => now,
                None => self.cache.lookup(thread).await,
            };
            match lookup {
                Ok(lookup) => Some(lookup),
                Err(error) => {
                    self.counters.bump(|c| &c.errors);
                    tracing::debug!(%thread, error = %error, "cache lookup failed; reading the store");
                    None
                }
            }
        };
        let window = match lookup {
            Some(lookup) => {
                // Read after the lookup: a window at this position holds every write
                // acknowledged before this request began, on any process.
                let head = if self.check_hits {
                    Some(store.call(Operation::Head, |s| s.head(thread)).await?)
                } else {
                    None
                };
                match lookup.window {
                    Some(window) if head.is_none_or(|head| head == window.rev()) => {
                        self.counters.bump(|c| &c.hits);
                        window
                    }
                    stale => {
                        self.counters.bump(if stale.is_some() {
                            |c: &Counters| &c.stale
                        } else {
                            |c: &Counters| &c.misses
                        });
                        // Boxed: the miss path's future is large and a hit should not carry it.
                        let key = (thread, lookup.generation, head.unwrap_or(0));
                        Box::pin(self.load_window(store, key)).await?
                    }
                }
            }
            None => Arc::new(
                self.encodings
                    .window_of(&newest(store, thread, self.window).await?),
            ),
        };
        if !window.serves(size) {
            return Ok(PageJson::whole(
                newest(store, thread, size).await?.to_json(),
            ));
        }
        Ok(window.page_json(size))
    }

    /// Reads the newest window once per thread, generation and position, however many
    /// requests missed at the same time, and offers it to the cache with the generation seen
    /// before reading.
    async fn load_window(
        &self,
        store: &ObservedStore,
        key: (ThreadId, Generation, i64),
    ) -> Result<Arc<Window>> {
        let (thread, seen, _) = key;
        self.loads
            .run(key, async {
                let page = newest(store, thread, self.window).await?;
                let window = Arc::new(self.encodings.window_of(&page));
                match self.cache.fill(thread, seen, Arc::clone(&window)).await {
                    Ok(true) => self.counters.bump(|c| &c.fills),
                    Ok(false) => self.counters.bump(|c| &c.rejected_fills),
                    Err(error) => {
                        self.counters.bump(|c| &c.errors);
                        tracing::debug!(%thread, error = %error, "cache fill failed");
                    }
                }
                Ok(window)
            })
            .await
    }
}

/// The newest page of `size` from the store.
async fn newest(store: &ObservedStore, thread: ThreadId, size: PageSize) -> Result<Page> {
    store
        .call(Operation::Page, |s| s.page(thread, PageQuery::Newest, size))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::memory::MemoryCache;
    use crate::cache::{Lookup, PageCache};
    use crate::error::Error;
    use crate::message::{Limits, Message, MessageId, MessageKind, NewMessage, Timestamp, UserId};
    use crate::storage::memory::MemoryStore;

    /// A cache whose invalidations fail, and which otherwise serves whatever it was filled
    /// with: the shape of a cache that lost a write's invalidation and still holds the page.
    #[derive(Default)]
    struct LosesInvalidations {
        inner: MemoryCache,
    }

    #[async_trait::async_trait]
    impl PageCache for LosesInvalidations {
        async fn lookup(&self, thread: ThreadId) -> Result<Lookup> {
            self.inner.lookup(thread).await
        }
        async fn fill(
            &self,
            thread: ThreadId,
            seen: Generation,
            window: Arc<Window>,
        ) -> Result<bool> {
            self.inner.fill(thread, seen, window).await
        }
        async fn invalidate(&self, _: ThreadId) -> Result<()> {
            Err(Error::unavailable("cache", "unreachable"))
        }
        async fn ping(&self) -> Result<()> {
            Ok(())
        }
    }

    fn text(thread: ThreadId, user: UserId, micros: i64, text: &str) -> Message {
        let new =
            NewMessage::new(MessageKind::Text, text.into(), vec![], &Limits::default()).unwrap();
        Message::from_new(
            MessageId::new_v7(),
            thread,
            user,
            new,
            Timestamp::from_micros(micros),
        )
    }

    async fn insert(store: &ObservedStore, message: &Message) {
        let request = crate::write::CreateRequest {
            message: message.clone(),
            idempotency: None,
            participants: crate::replies::Participants::DEFAULT,
        };
        store.store().create(request).await.unwrap();
    }

    fn memory() -> ObservedStore {
        ObservedStore::new(Arc::new(MemoryStore::new()), None)
    }

    #[tokio::test]
    async fn a_poisoned_lock_never_skips_recording_a_failed_invalidation() {
        let store = memory();
        let newest = NewestPages::new(
            Arc::new(LosesInvalidations::default()),
            PageSize::DEFAULT,
            BreakerConfig {
                threshold: u32::MAX,
                ..BreakerConfig::default()
            },
            false,
        );
        let thread = ThreadId::from_uuid(uuid::Uuid::now_v7());
        let user = UserId::from_uuid(uuid::Uuid::now_v7());
        let first = text(thread, user, 1, "first");
        insert(&store, &first).await;
        // The cache now holds the page with one message.
        let cached = newest
            .page_json(&store, thread, PageSize::DEFAULT)
            .await
            .unwrap()
            .to_bytes();
        assert!(String::from_utf8_lossy(&cached).contains("first"));
        assert_eq!(newest.stats().fills, 1);
        // A panic while the bookkeeping lock was held.
        newest.unconfirmed.poison();
        // A write commits; its invalidation fails and must still be recorded.
        let second = text(thread, user, 2, "second");
        insert(&store, &second).await;
        newest.invalidate(thread).await;
        let page = newest
            .page_json(&store, thread, PageSize::DEFAULT)
            .await
            .unwrap()
            .to_bytes();
        let page = String::from_utf8(page.to_vec()).unwrap();
        assert!(
            page.contains("second"),
            "served the page from before the write: {page}"
        );
    }

    #[tokio::test]
    async fn with_hits_checked_a_write_the_cache_never_heard_of_is_served() {
        let store = memory();
        let thread = ThreadId::from_uuid(uuid::Uuid::now_v7());
        let user = UserId::from_uuid(uuid::Uuid::now_v7());
        insert(&store, &text(thread, user, 1, "first")).await;
        for check_hits in [false, true] {
            let newest = NewestPages::new(
                Arc::new(MemoryCache::default()),
                PageSize::DEFAULT,
                BreakerConfig::default(),
                check_hits,
            );
            let read = || async {
                let page = newest
                    .page_json(&store, thread, PageSize::DEFAULT)
                    .await
                    .unwrap();
                String::from_utf8(page.to_bytes().to_vec()).unwrap()
            };
            read().await;
            assert_eq!(read().await, read().await);
            // Another process's write: the store moves, nothing invalidates this cache.
            let other = format!("other process {check_hits}");
            insert(&store, &text(thread, user, 2, &other)).await;
            let page = read().await;
            assert_eq!(
                page.contains(&other),
                check_hits,
                "check_hits={check_hits}: {page}"
            );
            if check_hits {
                assert_eq!(newest.stats().stale, 1);
                let hits = newest.stats().hits;
                read().await;
                assert_eq!(
                    newest.stats().hits,
                    hits + 1,
                    "the refilled window is a hit again"
                );
            }
        }
    }
}
