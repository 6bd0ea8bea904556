//! The newest page of each thread: served from the cache when it can be, read from the store
//! once per thread and generation however many requests missed together, and never stale
//! after a write this process acknowledged.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::OnceCell;

use crate::cache::breaker::{BreakerConfig, CircuitBreaker};
use crate::cache::{CacheStats, Generation, PageCache, Window};
use crate::error::{Error, Result};
use crate::locks;
use crate::message::{Message, MessageId, ThreadId, Timestamp};
use crate::page::{Page, PageJson, PageQuery, PageSize};
use crate::storage::MessageStore;

type Load = Arc<OnceCell<std::result::Result<Arc<Window>, Arc<Error>>>>;

/// Cache counters, one atomic each: they are bumped on every read, so no lock.
#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    fills: AtomicU64,
    rejected_fills: AtomicU64,
    errors: AtomicU64,
}

/// Threads whose invalidation failed (the cache was unreachable after a commit). Until the
/// cache confirms their invalidation, this process reads them from the store, so a cache that
/// comes back holding a page from before the write never serves it here.
#[derive(Default)]
struct Unconfirmed {
    threads: HashSet<ThreadId>,
    last_retry: Option<Instant>,
}

/// Messages whose response JSON is kept, so refilling a window after a write encodes only
/// what changed. About 7 MB at 350 bytes a message.
const ENCODED_CAPACITY: usize = 20_000;

/// Encoded messages by id, `updated_at` and a hash of the editable fields: an edit changes
/// the key even if two edits share a microsecond, so a stale encoding is never reused.
/// Cleared whole when full (cheap, and the next fills repopulate it).
#[derive(Default)]
struct Encodings {
    by_version: HashMap<(MessageId, Timestamp, u64), Bytes>,
}

/// A hash of what an edit can change.
fn editable_hash(message: &Message) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    message.content.hash(&mut hasher);
    message.paths.hash(&mut hasher);
    hasher.finish()
}

/// How often to retry unconfirmed invalidations while the cache is failing.
const RETRY_INVALIDATION: Duration = Duration::from_millis(500);

/// The cache front of the service: what it takes to answer the newest page from the cache
/// without ever serving a page older than an acknowledged write.
///
/// Its std locks follow the crate's policy (`locks`): held for a map operation, never across
/// an `.await`, poisoning cleared, so bookkeeping that keeps a stale page away is never skipped.
pub(crate) struct NewestPages {
    /// The cache, behind a circuit breaker unless it lives in this process.
    cache: Arc<dyn PageCache>,
    window: PageSize,
    loads: Mutex<HashMap<(ThreadId, Generation), Load>>,
    counters: Counters,
    encodings: Mutex<Encodings>,
    /// Set while `unconfirmed` holds a thread, so the common case takes no lock.
    any_unconfirmed: AtomicBool,
    unconfirmed: Mutex<Unconfirmed>,
}

impl NewestPages {
    /// A front of `cache` holding `window` messages per thread.
    pub(crate) fn new(cache: Arc<dyn PageCache>, window: PageSize, breaker: BreakerConfig) -> Self {
        let cache = if cache.is_local() {
            cache
        } else {
            Arc::new(CircuitBreaker::new(cache, breaker))
        };
        NewestPages {
            cache,
            window,
            loads: Mutex::new(HashMap::new()),
            counters: Counters::default(),
            encodings: Mutex::new(Encodings::default()),
            any_unconfirmed: AtomicBool::new(false),
            unconfirmed: Mutex::new(Unconfirmed::default()),
        }
    }

    /// Whether a newest page of `size` is answered here rather than by the store.
    pub(crate) fn serves(&self, size: PageSize) -> bool {
        size <= self.window
    }

    /// What the cache did so far.
    pub(crate) fn stats(&self) -> CacheStats {
        let c = &self.counters;
        CacheStats {
            hits: c.hits.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            fills: c.fills.load(Ordering::Relaxed),
            rejected_fills: c.rejected_fills.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
        }
    }

    fn count(&self, counter: fn(&Counters) -> &AtomicU64) {
        counter(&self.counters).fetch_add(1, Ordering::Relaxed);
    }

    /// Whether the cache answers (for readiness; it does not make the service unready).
    pub(crate) async fn ping(&self) -> Result<()> {
        self.cache.ping().await
    }

    /// After a commit: make the thread's cached page stale. If the cache cannot confirm it,
    /// the thread is read from the store in this process until it does.
    pub(crate) async fn invalidate(&self, thread: ThreadId) {
        if let Err(error) = self.cache.invalidate(thread).await {
            self.count(|c| &c.errors);
            tracing::warn!(%thread, error = %error, "cache invalidation failed; the thread is read from the store until it succeeds");
            locks::lock(&self.unconfirmed).threads.insert(thread);
            self.any_unconfirmed.store(true, Ordering::Release);
        }
    }

    /// Whether `thread` may be served from the cache: false while its invalidation is
    /// unconfirmed. Retries unconfirmed invalidations at most every 500 ms.
    async fn cache_usable(&self, thread: ThreadId) -> bool {
        if !self.any_unconfirmed.load(Ordering::Acquire) {
            return true;
        }
        let due: Vec<ThreadId> = {
            let mut u = locks::lock(&self.unconfirmed);
            if u.threads.is_empty() {
                return true;
            }
            let now = Instant::now();
            if u.last_retry
                .is_some_and(|t| now.duration_since(t) < RETRY_INVALIDATION)
            {
                return !u.threads.contains(&thread);
            }
            u.last_retry = Some(now);
            u.threads.iter().copied().collect()
        };
        for pending in due {
            if self.cache.invalidate(pending).await.is_err() {
                break;
            }
            let mut u = locks::lock(&self.unconfirmed);
            u.threads.remove(&pending);
            if u.threads.is_empty() {
                self.any_unconfirmed.store(false, Ordering::Release);
            }
        }
        !locks::lock(&self.unconfirmed).threads.contains(&thread)
    }

    /// The newest page of `size` (at most the window) as response JSON.
    pub(crate) async fn page_json(
        &self,
        store: &dyn MessageStore,
        thread: ThreadId,
        size: PageSize,
    ) -> Result<PageJson> {
        let lookup = if !self.cache_usable(thread).await {
            None
        } else {
            let lookup = match self.cache.lookup_now(thread) {
                Some(now) => now,
                None => self.cache.lookup(thread).await,
            };
            match lookup {
                Ok(lookup) => Some(lookup),
                Err(error) => {
                    self.count(|c| &c.errors);
                    tracing::debug!(%thread, error = %error, "cache lookup failed; reading the store");
                    None
                }
            }
        };
        let window = match lookup {
            Some(lookup) => match lookup.window {
                Some(window) => {
                    self.count(|c| &c.hits);
                    window
                }
                None => {
                    self.count(|c| &c.misses);
                    // Boxed: the miss path's future is large and a hit should not carry it.
                    Box::pin(self.load_window(store, thread, lookup.generation)).await?
                }
            },
            None => {
                Arc::new(self.window_of(&store.page(thread, PageQuery::Newest, self.window).await?))
            }
        };
        if !window.serves(size) {
            return Ok(PageJson::whole(
                store.page(thread, PageQuery::Newest, size).await?.to_json(),
            ));
        }
        Ok(window.page_json(size))
    }

    /// A window of `page`, reusing the encodings of messages it encoded before.
    fn window_of(&self, page: &Page) -> Window {
        let mut memo = locks::lock(&self.encodings);
        if memo.by_version.len() + page.items.len() > ENCODED_CAPACITY {
            memo.by_version.clear();
        }
        Window::from_page_with(page, |message, out| {
            let key = (message.id, message.updated_at, editable_hash(message));
            if let Some(bytes) = memo.by_version.get(&key) {
                out.extend_from_slice(bytes);
                return;
            }
            let start = out.len();
            message.write_json(out);
            memo.by_version
                .insert(key, Bytes::copy_from_slice(&out[start..]));
        })
    }

    /// Reads the newest window once per thread and generation, however many requests missed
    /// at the same time, and offers it to the cache with the generation seen before reading.
    async fn load_window(
        &self,
        store: &dyn MessageStore,
        thread: ThreadId,
        seen: Generation,
    ) -> Result<Arc<Window>> {
        let cell: Load = Arc::clone(locks::lock(&self.loads).entry((thread, seen)).or_default());
        let result = cell
            .get_or_init(|| async {
                let loaded = store.page(thread, PageQuery::Newest, self.window).await;
                match loaded {
                    Ok(page) => {
                        let window = Arc::new(self.window_of(&page));
                        match self.cache.fill(thread, seen, Arc::clone(&window)).await {
                            Ok(true) => self.count(|c| &c.fills),
                            Ok(false) => self.count(|c| &c.rejected_fills),
                            Err(error) => {
                                self.count(|c| &c.errors);
                                tracing::debug!(%thread, error = %error, "cache fill failed");
                            }
                        }
                        Ok(window)
                    }
                    Err(error) => Err(Arc::new(error)),
                }
            })
            .await
            .clone();
        {
            let mut loads = locks::lock(&self.loads);
            if loads
                .get(&(thread, seen))
                .is_some_and(|c| Arc::ptr_eq(c, &cell))
            {
                loads.remove(&(thread, seen));
            }
        }
        result.map_err(|shared| match Arc::try_unwrap(shared) {
            Ok(error) => error,
            Err(shared) => Error::unavailable("store", shared.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::memory::MemoryCache;
    use crate::cache::{Lookup, PageCache};
    use crate::message::{Limits, MessageKind, NewMessage, UserId};
    use crate::storage::memory::MemoryStore;

    fn render(w: Window) -> String {
        let mut out = Vec::new();
        w.write_page(PageSize::DEFAULT, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_reused_encoding_never_hides_an_edit_in_the_same_microsecond() {
        let newest = NewestPages::new(
            Arc::new(MemoryCache::default()),
            PageSize::DEFAULT,
            BreakerConfig::default(),
        );
        let new = NewMessage::new(
            MessageKind::Text,
            "before".into(),
            vec![],
            &Limits::default(),
        )
        .unwrap();
        let mut message = Message::from_new(
            MessageId::new_v7(),
            ThreadId::from_uuid(uuid::Uuid::nil()),
            UserId::from_uuid(uuid::Uuid::nil()),
            new,
            Timestamp::from_micros(1),
        );
        let page = |m: &Message| Page {
            items: vec![m.clone()],
            next_cursor: None,
            has_more: false,
            rev: 1,
        };
        assert!(render(newest.window_of(&page(&message))).contains("before"));
        // Same id and the same updated_at, other content: must not come from the memo.
        message.content = "after".into();
        let again = render(newest.window_of(&page(&message)));
        assert!(
            again.contains("after") && !again.contains("before"),
            "{again}"
        );
        assert_eq!(again.into_bytes(), page(&message).to_json());
    }

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

    async fn insert(store: &MemoryStore, message: &Message) {
        store
            .create(message, None, crate::events::codec::created(message))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_poisoned_lock_never_skips_recording_a_failed_invalidation() {
        let store = MemoryStore::new();
        let newest = NewestPages::new(
            Arc::new(LosesInvalidations::default()),
            PageSize::DEFAULT,
            BreakerConfig {
                threshold: u32::MAX,
                ..BreakerConfig::default()
            },
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
        std::thread::scope(|scope| {
            let _ = scope
                .spawn(|| {
                    let _guard = newest.unconfirmed.lock();
                    panic!("a holder panics");
                })
                .join();
        });
        assert!(newest.unconfirmed.is_poisoned());
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
}
