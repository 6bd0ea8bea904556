//! The service: the one type an embedding application uses, and the one place that orders
//! store → cache → events for every operation.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{Notify, OnceCell};

use crate::cache::{CacheStats, Generation, PageCache, Window};
use crate::error::{Error, Result};
use crate::events::codec;
use crate::message::{
    Clock, IdempotencyKey, Limits, Message, MessageId, MessagePatch, NewMessage,
    RequestFingerprint, ThreadId, UserId,
};
use crate::page::{Page, PageQuery, PageSize};
use crate::storage::{Created, Idempotency, MessageStore};

/// Settings of the service.
#[derive(Clone, Copy, Debug)]
pub struct ServiceConfig {
    /// Limits on message input.
    pub limits: Limits,
    /// How many of a thread's newest messages the cache keeps (`CACHE_MAX_ITEMS`).
    pub window: PageSize,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            limits: Limits::default(),
            window: PageSize::new(u32::from(PageSize::MAX)).unwrap_or_default(),
        }
    }
}

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

/// Messages whose response JSON the service keeps, so refilling a window after a write
/// encodes only what changed. About 7 MB at 350 bytes a message.
const ENCODED_CAPACITY: usize = 20_000;

/// Encoded messages by id, `updated_at` and a hash of the editable fields: an edit changes
/// the key even if two edits share a microsecond, so a stale encoding is never reused.
/// Cleared whole when full (cheap, and the next fills repopulate it).
#[derive(Default)]
struct Encodings {
    by_version: HashMap<(MessageId, crate::message::Timestamp, u64), Bytes>,
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

/// Message history for one application: create, edit, delete and page through threads.
///
/// ```
/// use messages_core::{MessageKind, MessageService, NewMessage, PageQuery, PageSize, ThreadId, UserId};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), messages_core::Error> {
/// let service = MessageService::in_memory();
/// let thread = ThreadId::parse("0193a1a0-0000-7000-8000-000000000001")?;
/// let user = UserId::parse("0193a1a0-0000-7000-8000-0000000000aa")?;
/// let new = NewMessage::new(MessageKind::Text, "hello".into(), vec![], service.limits())?;
/// let created = service.create(thread, user, new, None).await?;
///
/// let page = service.page(thread, PageQuery::Newest, PageSize::DEFAULT).await?;
/// assert_eq!(page.items, vec![created.message().clone()]);
/// assert!(!page.has_more);
/// # Ok(())
/// # }
/// ```
pub struct MessageService {
    store: Arc<dyn MessageStore>,
    cache: Arc<dyn PageCache>,
    wake_relay: Arc<Notify>,
    config: ServiceConfig,
    clock: Clock,
    loads: Mutex<HashMap<(ThreadId, Generation), Load>>,
    counters: Counters,
    encodings: Mutex<Encodings>,
    /// Set while `unconfirmed` holds a thread, so the common case checks no lock.
    any_unconfirmed: AtomicBool,
    unconfirmed: Mutex<Unconfirmed>,
}

impl MessageService {
    /// A service over the given backends.
    pub fn new(
        store: Arc<dyn MessageStore>,
        cache: Arc<dyn PageCache>,
        config: ServiceConfig,
    ) -> Self {
        MessageService {
            store,
            cache,
            wake_relay: Arc::new(Notify::new()),
            config,
            clock: Clock::new(),
            loads: Mutex::new(HashMap::new()),
            counters: Counters::default(),
            encodings: Mutex::new(Encodings::default()),
            any_unconfirmed: AtomicBool::new(false),
            unconfirmed: Mutex::new(Unconfirmed::default()),
        }
    }

    /// A service with the in-memory store and cache and default settings.
    pub fn in_memory() -> Self {
        MessageService::new(
            Arc::new(crate::storage::memory::MemoryStore::new()),
            Arc::new(crate::cache::memory::MemoryCache::default()),
            ServiceConfig::default(),
        )
    }

    /// The input limits, for building [`NewMessage`] and [`MessagePatch`].
    pub fn limits(&self) -> &Limits {
        &self.config.limits
    }

    /// The store, for the outbox relay.
    pub fn store(&self) -> Arc<dyn MessageStore> {
        Arc::clone(&self.store)
    }

    /// Signalled after every write, so a relay delivers events without polling.
    pub fn relay_signal(&self) -> Arc<Notify> {
        Arc::clone(&self.wake_relay)
    }

    /// What the cache did so far.
    pub fn cache_stats(&self) -> CacheStats {
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

    /// Creates a message in `thread` by `user`. With an idempotency key, a retry of the same
    /// request returns the first message as [`Created::Replayed`] and stores nothing.
    pub async fn create(
        &self,
        thread: ThreadId,
        user: UserId,
        new: NewMessage,
        key: Option<IdempotencyKey>,
    ) -> Result<Created> {
        let idempotency = key.as_ref().map(|key| Idempotency {
            key,
            fingerprint: RequestFingerprint::of(&new),
        });
        let message = Message::from_new(MessageId::new_v7(), thread, user, new, self.clock.now());
        let event = codec::created(&message);
        let created = self.store.create(&message, idempotency, event).await?;
        if let Created::New(_) = created {
            self.after_write(thread).await;
        }
        Ok(created)
    }

    /// Edits a message; only its author may.
    pub async fn update(
        &self,
        thread: ThreadId,
        id: MessageId,
        user: UserId,
        patch: MessagePatch,
    ) -> Result<Message> {
        let now = self.clock.now();
        let message = self
            .store
            .update(thread, id, user, &patch, now, &codec::updated)
            .await?;
        self.after_write(thread).await;
        Ok(message)
    }

    /// Soft-deletes a message; only its author may.
    pub async fn delete(&self, thread: ThreadId, id: MessageId, user: UserId) -> Result<()> {
        let now = self.clock.now();
        let event = codec::deleted(thread, id, now);
        self.store.delete(thread, id, user, now, event).await?;
        self.after_write(thread).await;
        Ok(())
    }

    /// After a commit: make the cached page stale, then wake the relay for the event.
    async fn after_write(&self, thread: ThreadId) {
        if let Err(error) = self.cache.invalidate(thread).await {
            self.count(|c| &c.errors);
            tracing::warn!(%thread, error = %error, "cache invalidation failed; the thread is read from the store until it succeeds");
            if let Ok(mut u) = self.unconfirmed.lock() {
                u.threads.insert(thread);
                self.any_unconfirmed.store(true, Ordering::Release);
            }
        }
        self.wake_relay.notify_one();
    }

    /// Whether `thread` may be served from the cache: false while its invalidation is
    /// unconfirmed. Retries unconfirmed invalidations at most every 500 ms.
    async fn cache_usable(&self, thread: ThreadId) -> bool {
        if !self.any_unconfirmed.load(Ordering::Acquire) {
            return true;
        }
        let due: Vec<ThreadId> = match self.unconfirmed.lock() {
            Ok(mut u) if !u.threads.is_empty() => {
                let now = Instant::now();
                if u.last_retry
                    .is_some_and(|t| now.duration_since(t) < RETRY_INVALIDATION)
                {
                    return !u.threads.contains(&thread);
                }
                u.last_retry = Some(now);
                u.threads.iter().copied().collect()
            }
            Ok(_) => return true,
            Err(_) => return false,
        };
        for pending in due {
            if self.cache.invalidate(pending).await.is_err() {
                break;
            }
            if let Ok(mut u) = self.unconfirmed.lock() {
                u.threads.remove(&pending);
                if u.threads.is_empty() {
                    self.any_unconfirmed.store(false, Ordering::Release);
                }
            }
        }
        self.unconfirmed
            .lock()
            .map(|u| !u.threads.contains(&thread))
            .unwrap_or(false)
    }

    /// One live message.
    pub async fn get(&self, thread: ThreadId, id: MessageId) -> Result<Message> {
        self.store.get(thread, id).await
    }

    /// A page as typed messages, read from the store.
    pub async fn page(&self, thread: ThreadId, query: PageQuery, size: PageSize) -> Result<Page> {
        self.store.page(thread, query, size).await
    }

    /// A page as response JSON. The newest page comes from the cache when it can; every
    /// other page is a keyset query on the store.
    pub async fn page_json(
        &self,
        thread: ThreadId,
        query: PageQuery,
        size: PageSize,
    ) -> Result<Bytes> {
        if query != PageQuery::Newest || size > self.config.window {
            return Ok(Bytes::from(
                self.store.page(thread, query, size).await?.to_json(),
            ));
        }
        let lookup = if !self.cache_usable(thread).await {
            None
        } else {
            match self.cache.lookup(thread).await {
                Ok(lookup) => Some(lookup),
                Err(error) => {
                    self.count(|c| &c.errors);
                    tracing::warn!(%thread, error = %error, "cache lookup failed; reading the store");
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
                    self.load_window(thread, lookup.generation).await?
                }
            },
            None => Arc::new(
                self.window_of(
                    &self
                        .store
                        .page(thread, PageQuery::Newest, self.config.window)
                        .await?,
                ),
            ),
        };
        if !window.serves(size) {
            return Ok(Bytes::from(
                self.store.page(thread, query, size).await?.to_json(),
            ));
        }
        let mut out = Vec::new();
        window.write_page(size, &mut out);
        Ok(Bytes::from(out))
    }

    /// A window of `page`, reusing the encodings of messages it encoded before.
    fn window_of(&self, page: &Page) -> Window {
        let Ok(mut memo) = self.encodings.lock() else {
            return Window::from_page(page);
        };
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
            serde_json::to_writer(&mut *out, message).unwrap_or_default();
            memo.by_version
                .insert(key, Bytes::copy_from_slice(&out[start..]));
        })
    }

    /// Reads the newest window once per thread and generation, however many requests missed
    /// at the same time, and offers it to the cache with the generation seen before reading.
    async fn load_window(&self, thread: ThreadId, seen: Generation) -> Result<Arc<Window>> {
        let cell: Load = {
            let mut loads = self
                .loads
                .lock()
                .map_err(|_| Error::unavailable("service", "load table poisoned"))?;
            Arc::clone(loads.entry((thread, seen)).or_default())
        };
        let result = cell
            .get_or_init(|| async {
                let loaded = self
                    .store
                    .page(thread, PageQuery::Newest, self.config.window)
                    .await;
                match loaded {
                    Ok(page) => {
                        let window = Arc::new(self.window_of(&page));
                        match self.cache.fill(thread, seen, Arc::clone(&window)).await {
                            Ok(true) => self.count(|c| &c.fills),
                            Ok(false) => self.count(|c| &c.rejected_fills),
                            Err(error) => {
                                self.count(|c| &c.errors);
                                tracing::warn!(%thread, error = %error, "cache fill failed");
                            }
                        }
                        Ok(window)
                    }
                    Err(error) => Err(Arc::new(error)),
                }
            })
            .await
            .clone();
        if let Ok(mut loads) = self.loads.lock()
            && loads
                .get(&(thread, seen))
                .is_some_and(|c| Arc::ptr_eq(c, &cell))
        {
            loads.remove(&(thread, seen));
        }
        result.map_err(|shared| match Arc::try_unwrap(shared) {
            Ok(error) => error,
            Err(shared) => Error::unavailable("store", shared.to_string()),
        })
    }

    /// Whether the store answers: the service can serve every request. A failing cache is
    /// not unreadiness (requests fall back to the store); see [`MessageService::cache_ready`].
    pub async fn ready(&self) -> Result<()> {
        self.store.ping().await
    }

    /// Whether the cache answers.
    pub async fn cache_ready(&self) -> Result<()> {
        self.cache.ping().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{MessageKind, Timestamp};

    #[test]
    fn a_reused_encoding_never_hides_an_edit_in_the_same_microsecond() {
        let service = MessageService::in_memory();
        let new =
            NewMessage::new(MessageKind::Text, "before".into(), vec![], service.limits()).unwrap();
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
        };
        let render = |w: Window| {
            let mut out = Vec::new();
            w.write_page(PageSize::DEFAULT, &mut out);
            String::from_utf8(out).unwrap()
        };
        assert!(render(service.window_of(&page(&message))).contains("before"));
        // Same id and the same updated_at, other content: must not come from the memo.
        message.content = "after".into();
        let again = render(service.window_of(&page(&message)));
        assert!(
            again.contains("after") && !again.contains("before"),
            "{again}"
        );
        assert_eq!(again.into_bytes(), page(&message).to_json());
    }
}
