//! The in-process cache: the embedded default, bounded in threads and with a time to live.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
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
}

impl Default for MemoryCacheConfig {
    fn default() -> Self {
        MemoryCacheConfig {
            lifetime: Lifetime::default(),
            max_threads: 100_000,
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
            entries.remove(&thread);
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
        let now = self.now();
        let mut entries = locks::write(self.shard(&thread));
        match entries.get_mut(&thread) {
            Some(entry) if entry.generation == seen => {
                entry.window = Some(window);
                entry.expires.store(self.expiry(now), Ordering::Relaxed);
                entry.last_used.store(now, Ordering::Relaxed);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn invalidate(&self, thread: ThreadId) -> Result<()> {
        let generation = self.fresh_generation();
        if let Some(entry) = locks::write(self.shard(&thread)).get_mut(&thread) {
            entry.generation = generation;
            entry.window = None;
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
}
