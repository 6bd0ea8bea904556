//! The in-process cache: the embedded default, bounded in threads and with a time to live.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;

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

struct Entry {
    generation: Generation,
    window: Option<(Arc<Window>, Instant)>,
    last_used: Instant,
}

/// Windows in process memory.
///
/// Generations come from one process-wide counter rather than a per-thread one, so a thread
/// whose entry was evicted and created again never reuses a generation a slow reader still
/// holds. A std `Mutex` is enough: no critical section awaits and each is a map operation;
/// it follows the crate's lock policy (`locks`).
pub struct MemoryCache {
    config: MemoryCacheConfig,
    entries: Mutex<HashMap<ThreadId, Entry>>,
    next_generation: AtomicU64,
}

impl MemoryCache {
    /// An empty cache.
    pub fn new(config: MemoryCacheConfig) -> Self {
        MemoryCache {
            config,
            entries: Mutex::new(HashMap::new()),
            next_generation: AtomicU64::new(1),
        }
    }

    fn fresh_generation(&self) -> Generation {
        self.next_generation.fetch_add(1, Ordering::Relaxed)
    }

    /// Past `max_threads`, drops the least recently used eighth in one pass, so the scan
    /// is paid once per `max_threads / 8` new threads rather than on every one.
    fn evict_if_full(&self, entries: &mut HashMap<ThreadId, Entry>) {
        if entries.len() <= self.config.max_threads {
            return;
        }
        let excess = entries.len() - self.config.max_threads;
        let drop = (self.config.max_threads / 8).max(excess).min(entries.len());
        let mut by_age: Vec<(Instant, ThreadId)> =
            entries.iter().map(|(k, e)| (e.last_used, *k)).collect();
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

#[async_trait]
impl PageCache for MemoryCache {
    async fn lookup(&self, thread: ThreadId) -> Result<Lookup> {
        let now = Instant::now();
        let mut entries = locks::lock(&self.entries);
        let entry = match entries.entry(thread) {
            std::collections::hash_map::Entry::Occupied(slot) => slot.into_mut(),
            std::collections::hash_map::Entry::Vacant(slot) => {
                let generation = self.fresh_generation();
                slot.insert(Entry {
                    generation,
                    window: None,
                    last_used: now,
                });
                self.evict_if_full(&mut entries);
                return Ok(Lookup {
                    window: None,
                    generation,
                });
            }
        };
        entry.last_used = now;
        let window = match &mut entry.window {
            Some((window, expires)) if *expires > now => {
                if self.config.lifetime.touch_on_hit {
                    *expires = now + self.config.lifetime.ttl;
                }
                Some(Arc::clone(window))
            }
            Some(_) => {
                entry.window = None;
                None
            }
            None => None,
        };
        Ok(Lookup {
            window,
            generation: entry.generation,
        })
    }

    async fn fill(&self, thread: ThreadId, seen: Generation, window: Arc<Window>) -> Result<bool> {
        let now = Instant::now();
        let mut entries = locks::lock(&self.entries);
        match entries.get_mut(&thread) {
            Some(entry) if entry.generation == seen => {
                entry.window = Some((window, now + self.config.lifetime.ttl));
                entry.last_used = now;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn invalidate(&self, thread: ThreadId) -> Result<()> {
        let generation = self.fresh_generation();
        let mut entries = locks::lock(&self.entries);
        if let Some(entry) = entries.get_mut(&thread) {
            entry.generation = generation;
            entry.window = None;
        }
        // No entry: nobody holds a generation for this thread, so there is nothing to guard.
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn the_least_recently_used_threads_go_first_and_the_bound_holds() {
        let cache = MemoryCache::new(MemoryCacheConfig {
            max_threads: 16,
            ..MemoryCacheConfig::default()
        });
        let threads: Vec<ThreadId> = (0..40u128)
            .map(|i| ThreadId::from_uuid(uuid::Uuid::from_u128(i + 1)))
            .collect();
        let hot = threads[0];
        for t in &threads {
            cache.lookup(*t).await.unwrap();
            // Keep one thread in use throughout.
            cache.lookup(hot).await.unwrap();
            tokio::time::sleep(Duration::from_micros(50)).await;
        }
        let entries = cache.entries.lock().unwrap();
        assert!(entries.len() <= 16, "{} entries", entries.len());
        assert!(entries.contains_key(&hot), "a thread in use is kept");
        assert!(
            entries.contains_key(threads.last().unwrap()),
            "the newest is kept"
        );
        assert!(!entries.contains_key(&threads[1]), "an old one went");
    }
}
