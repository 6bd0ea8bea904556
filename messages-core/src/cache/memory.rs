//! The in-process cache: the embedded default, bounded in bytes and in threads, with a time
//! to live.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use async_trait::async_trait;
use foldhash::fast::RandomState;

use super::{Generation, Lifetime, Lookup, PageCache, Window};
use crate::error::Result;
use crate::locks;
use crate::message::ThreadId;

/// Settings of the in-process cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryCacheConfig {
    /// How long a window lives. Default: [`Lifetime::default`].
    pub lifetime: Lifetime,
    /// How many threads to keep; past it the least recently used eighth is dropped.
    /// Default 100,000.
    pub max_threads: usize,
    /// How many bytes of windows to keep ([`Window::weight`]); past it the least recently
    /// used windows are dropped until an eighth is free, and a window larger than the whole
    /// budget is not kept. Default 256 MiB, which fits a small pod: messages are posted by
    /// clients, so a bound in threads alone lets them fill any memory.
    pub max_bytes: usize,
}

impl Default for MemoryCacheConfig {
    fn default() -> Self {
        MemoryCacheConfig {
            lifetime: Lifetime::default(),
            max_threads: 100_000,
            max_bytes: 256 << 20,
        }
    }
}

/// Shards of the map: a hit takes one shard's read lock, so readers never wait for each
/// other and a writer blocks one sixteenth of the threads.
const SHARDS: usize = 16;

struct Entry {
    generation: Generation,
    window: Option<Arc<Window>>,
    /// When the window expires, in nanoseconds since the cache's epoch; atomic so a hit
    /// extends it under the read lock.
    expires: AtomicU64,
    /// When the entry was last used, likewise.
    last_used: AtomicU64,
    /// The window's weight, counted in the cache's bytes.
    weight: usize,
}

type Shard = RwLock<HashMap<ThreadId, Entry, RandomState>>;

/// Windows in process memory.
///
/// Generations come from one process-wide counter rather than a per-thread one, so a thread
/// whose entry was evicted and created again never reuses a generation a slow reader still
/// holds. The map is sharded behind std `RwLock`s: a hit takes a read lock and bumps two
/// atomics; no critical section awaits, and they follow the crate's lock policy (`locks`).
/// Thread ids come from clients, so the map hashes them with a per-process random seed
/// (foldhash), never with a fixed function a client could collide.
pub struct MemoryCache {
    config: MemoryCacheConfig,
    shards: [Shard; SHARDS],
    hasher: RandomState,
    epoch: Instant,
    next_generation: AtomicU64,
    /// The weight of every window held.
    bytes: AtomicUsize,
    /// Held by the one fill that evicts for bytes; the others go on.
    evicting: Mutex<()>,
}

impl MemoryCache {
    /// An empty cache.
    pub fn new(config: MemoryCacheConfig) -> Self {
        MemoryCache {
            config,
            shards: std::array::from_fn(|_| RwLock::new(HashMap::default())),
            hasher: RandomState::default(),
            epoch: Instant::now(),
            next_generation: AtomicU64::new(1),
            bytes: AtomicUsize::new(0),
            evicting: Mutex::new(()),
        }
    }

    /// How many bytes of windows the cache holds.
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Forgets `entry`'s window, and its weight.
    fn drop_window(&self, entry: &mut Entry) {
        entry.window = None;
        self.bytes
            .fetch_sub(std::mem::take(&mut entry.weight), Ordering::Relaxed);
    }

    /// Past `max_bytes`, drops the least recently used windows, over every shard, until an
    /// eighth of the budget is free. One fill evicts at a time; the scan is paid once per
    /// eighth of the budget filled. Entries stay, with their generations, so a reader that
    /// saw one still has its fill guarded.
    fn evict_bytes(&self) {
        let max = self.config.max_bytes;
        if self.bytes() <= max {
            return;
        }
        let Ok(_evicting) = self.evicting.try_lock() else {
            return;
        };
        let mut by_age: Vec<(u64, usize, ThreadId)> = Vec::new();
        for (index, shard) in self.shards.iter().enumerate() {
            by_age.extend(
                locks::read(shard)
                    .iter()
                    .filter(|(_, e)| e.window.is_some())
                    .map(|(t, e)| (e.last_used.load(Ordering::Relaxed), index, *t)),
            );
        }
        by_age.sort_unstable_by_key(|&(last_used, _, _)| last_used);
        let target = max - max / 8;
        for (_, index, thread) in by_age {
            if self.bytes() <= target {
                break;
            }
            if let Some(entry) = locks::write(&self.shards[index]).get_mut(&thread) {
                self.drop_window(entry);
            }
        }
    }

    fn fresh_generation(&self) -> Generation {
        self.next_generation.fetch_add(1, Ordering::Relaxed)
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    fn expiry(&self, now: u64) -> u64 {
        now + self.config.lifetime.ttl.as_nanos() as u64
    }

    fn shard(&self, thread: &ThreadId) -> &Shard {
        &self.shards[self.hasher.hash_one(thread) as usize % SHARDS]
    }

    /// Past its share of `max_threads`, a shard drops its least recently used eighth in one
    /// pass, so the scan is paid once per eighth of new threads rather than on every one.
    fn evict_if_full(&self, entries: &mut HashMap<ThreadId, Entry, RandomState>) {
        let limit = self.config.max_threads.div_ceil(SHARDS).max(1);
        if entries.len() <= limit {
            return;
        }
        let excess = entries.len() - limit;
        let drop = (limit / 8).max(excess).min(entries.len());
        let mut by_age: Vec<(u64, ThreadId)> = entries
            .iter()
            .map(|(k, e)| (e.last_used.load(Ordering::Relaxed), *k))
            .collect();
        if drop < by_age.len() {
            by_age.select_nth_unstable(drop);
        }
        for (_, thread) in by_age.into_iter().take(drop) {
            if let Some(mut entry) = entries.remove(&thread) {
                self.drop_window(&mut entry);
            }
        }
    }
}

impl Default for MemoryCache {
    fn default() -> Self {
        MemoryCache::new(MemoryCacheConfig::default())
    }
}

impl MemoryCache {
    fn lookup_sync(&self, thread: ThreadId) -> Lookup {
        let now = self.now();
        let shard = self.shard(&thread);
        if let Some(entry) = locks::read(shard).get(&thread) {
            entry.last_used.store(now, Ordering::Relaxed);
            let window = match &entry.window {
                Some(window) if entry.expires.load(Ordering::Relaxed) > now => {
                    if self.config.lifetime.touch_on_hit {
                        entry.expires.store(self.expiry(now), Ordering::Relaxed);
                    }
                    Some(Arc::clone(window))
                }
                // Expired: a miss; the fill that follows replaces it.
                _ => None,
            };
            return Lookup {
                window,
                generation: entry.generation,
            };
        }
        let mut entries = locks::write(shard);
        let generation = match entries.get(&thread) {
            // Another reader made it between the two locks.
            Some(entry) => entry.generation,
            None => {
                let generation = self.fresh_generation();
                entries.insert(
                    thread,
                    Entry {
                        generation,
                        window: None,
                        expires: AtomicU64::new(0),
                        last_used: AtomicU64::new(now),
                        weight: 0,
                    },
                );
                self.evict_if_full(&mut entries);
                generation
            }
        };
        Lookup {
            window: None,
            generation,
        }
    }
}

#[async_trait]
impl PageCache for MemoryCache {
    async fn lookup(&self, thread: ThreadId) -> Result<Lookup> {
        Ok(self.lookup_sync(thread))
    }

    fn lookup_now(&self, thread: ThreadId) -> Option<Result<Lookup>> {
        Some(Ok(self.lookup_sync(thread)))
    }

    async fn fill(&self, thread: ThreadId, seen: Generation, window: Arc<Window>) -> Result<bool> {
        let weight = window.weight();
        if weight > self.config.max_bytes {
            return Ok(false);
        }
        let now = self.now();
        {
            let mut entries = locks::write(self.shard(&thread));
            match entries.get_mut(&thread) {
                Some(entry) if entry.generation == seen => {
                    self.drop_window(entry);
                    entry.window = Some(window);
                    entry.weight = weight;
                    self.bytes.fetch_add(weight, Ordering::Relaxed);
                    entry.expires.store(self.expiry(now), Ordering::Relaxed);
                    entry.last_used.store(now, Ordering::Relaxed);
                }
                _ => return Ok(false),
            }
        }
        self.evict_bytes();
        Ok(true)
    }

    async fn invalidate(&self, thread: ThreadId) -> Result<()> {
        let generation = self.fresh_generation();
        if let Some(entry) = locks::write(self.shard(&thread)).get_mut(&thread) {
            entry.generation = generation;
            self.drop_window(entry);
        }
        // No entry: nobody holds a generation for this thread, so there is nothing to guard.
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    fn is_local(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(cache: &MemoryCache) -> Vec<ThreadId> {
        cache
            .shards
            .iter()
            .flat_map(|s| locks::read(s).keys().copied().collect::<Vec<_>>())
            .collect()
    }

    #[tokio::test]
    async fn the_least_recently_used_threads_go_first_and_the_bound_holds() {
        let cache = MemoryCache::new(MemoryCacheConfig {
            max_threads: 16 * SHARDS,
            ..MemoryCacheConfig::default()
        });
        let threads: Vec<ThreadId> = (0..40 * SHARDS as u128)
            .map(|i| ThreadId::from_uuid(uuid::Uuid::from_u128(i + 1)))
            .collect();
        let hot = threads[0];
        for t in &threads {
            cache.lookup(*t).await.unwrap();
            // Keep one thread in use throughout.
            cache.lookup(hot).await.unwrap();
        }
        let kept = entries(&cache);
        assert!(kept.len() <= 16 * SHARDS, "{} entries", kept.len());
        assert!(kept.contains(&hot), "a thread in use is kept");
        assert!(kept.contains(threads.last().unwrap()), "the newest is kept");
        let old_kept = threads[1..SHARDS]
            .iter()
            .filter(|t| kept.contains(t))
            .count();
        assert_eq!(old_kept, 0, "the oldest went");
    }

    #[tokio::test]
    async fn an_expired_window_is_a_miss() {
        let cache = MemoryCache::new(MemoryCacheConfig {
            lifetime: Lifetime {
                ttl: std::time::Duration::from_millis(20),
                touch_on_hit: false,
            },
            ..MemoryCacheConfig::default()
        });
        let thread = ThreadId::from_uuid(uuid::Uuid::now_v7());
        let seen = cache.lookup(thread).await.unwrap().generation;
        let empty = crate::page::Page {
            items: vec![],
            next_cursor: None,
            has_more: false,
            rev: 0,
        };
        assert!(
            cache
                .fill(thread, seen, Arc::new(Window::from_page(&empty)))
                .await
                .unwrap()
        );
        assert!(cache.lookup(thread).await.unwrap().window.is_some());
        tokio::time::sleep(std::time::Duration::from_millis(40)).await;
        assert!(cache.lookup(thread).await.unwrap().window.is_none());
    }

    fn window_of(thread_messages: usize, text: &str) -> Arc<Window> {
        let limits = crate::message::Limits::default();
        let items = (0..thread_messages)
            .map(|i| {
                let new = crate::message::NewMessage::new(
                    crate::message::MessageKind::Text,
                    text.into(),
                    vec![],
                    &limits,
                )
                .unwrap();
                let mut m = crate::message::Message::from_new(
                    crate::message::MessageId::new_v7(),
                    ThreadId::from_uuid(uuid::Uuid::nil()),
                    crate::message::UserId::from_uuid(uuid::Uuid::nil()),
                    new,
                    crate::message::Timestamp::from_micros(i as i64),
                );
                m.seq = i as i64 + 1;
                m.rev = m.seq;
                m
            })
            .collect();
        Arc::new(Window::from_page(&crate::page::Page {
            items,
            next_cursor: None,
            has_more: false,
            rev: thread_messages as i64,
        }))
    }

    #[tokio::test]
    async fn windows_past_the_byte_budget_are_dropped_oldest_first() {
        let window = window_of(200, &"x".repeat(4_000));
        let budget = window.weight() * 10;
        let cache = MemoryCache::new(MemoryCacheConfig {
            max_bytes: budget,
            ..MemoryCacheConfig::default()
        });
        let threads: Vec<ThreadId> = (0..300u128)
            .map(|i| ThreadId::from_uuid(uuid::Uuid::from_u128(i + 1)))
            .collect();
        for thread in &threads {
            let seen = cache.lookup(*thread).await.unwrap().generation;
            assert!(
                cache
                    .fill(*thread, seen, Arc::clone(&window))
                    .await
                    .unwrap()
            );
            assert!(cache.bytes() <= budget, "{} > {budget}", cache.bytes());
        }
        assert!(
            cache.bytes() > budget / 2,
            "the budget is used: {}",
            cache.bytes()
        );
        let last = threads[threads.len() - 1];
        assert!(
            cache.lookup(last).await.unwrap().window.is_some(),
            "the newest is kept"
        );
        assert!(
            cache.lookup(threads[0]).await.unwrap().window.is_none(),
            "the oldest went"
        );
        // An invalidation gives its window's bytes back.
        let before = cache.bytes();
        cache.invalidate(last).await.unwrap();
        assert_eq!(cache.bytes(), before - window.weight());
        // A window larger than the whole budget is not kept.
        let small = MemoryCache::new(MemoryCacheConfig {
            max_bytes: window.weight() - 1,
            ..MemoryCacheConfig::default()
        });
        let seen = small.lookup(last).await.unwrap().generation;
        assert!(!small.fill(last, seen, window).await.unwrap());
        assert_eq!(small.bytes(), 0);
    }
}
