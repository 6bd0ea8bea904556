//! The newest-page cache: each thread's newest messages kept as pre-encoded JSON, guarded by a
//! per-thread generation so a page read before a write is never stored after it.
//!
//! Protocol: a reader looks the thread up and gets the window (if any) and the current
//! generation. On a miss it reads the store and offers the window back with the generation it
//! saw; the cache keeps it only if no write bumped the generation in between. Writers call
//! `invalidate` after their commit, which drops the window and bumps the generation.

use std::sync::Arc;
use std::time::Duration;

use crate::error::Result;
use crate::message::ThreadId;
use async_trait::async_trait;

pub mod breaker;
pub mod memory;
pub(crate) mod newest;
#[cfg(feature = "redis")]
pub mod redis;
mod window;

pub use window::Window;

/// A thread's generation: changes on every write to the thread.
pub type Generation = u64;

/// How long a cached window lives, for every cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifetime {
    /// How long a window stays after it was filled (or last read, with `touch_on_hit`).
    /// Default 120 s.
    pub ttl: Duration,
    /// Whether a hit extends the window's life. Default true.
    pub touch_on_hit: bool,
}

impl Default for Lifetime {
    fn default() -> Self {
        Lifetime {
            ttl: Duration::from_secs(120),
            touch_on_hit: true,
        }
    }
}

/// What a lookup found.
#[derive(Clone, Debug)]
pub struct Lookup {
    /// The cached window, if there is one.
    pub window: Option<Arc<Window>>,
    /// The thread's generation at the time of the lookup; pass it to [`PageCache::fill`].
    pub generation: Generation,
}

/// Counters of what the cache did, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups that found a window.
    pub hits: u64,
    /// Lookups that found none.
    pub misses: u64,
    /// Windows stored.
    pub fills: u64,
    /// Windows refused because a write happened while they were read.
    pub rejected_fills: u64,
    /// Calls that failed (the request fell back to the store).
    pub errors: u64,
    /// Windows found but behind the store (another process wrote to a store this process's
    /// cache does not share), read again.
    pub stale: u64,
}

/// A cache of each thread's newest window.
#[async_trait]
pub trait PageCache: Send + Sync + 'static {
    /// The thread's window, if cached, and its current generation.
    async fn lookup(&self, thread: ThreadId) -> Result<Lookup>;

    /// Stores `window` if the thread's generation is still `seen`; returns whether it did.
    async fn fill(&self, thread: ThreadId, seen: Generation, window: Arc<Window>) -> Result<bool>;

    /// Drops the thread's window and bumps its generation. Called after every committed write.
    async fn invalidate(&self, thread: ThreadId) -> Result<()>;

    /// Whether the cache can answer now.
    async fn ping(&self) -> Result<()>;

    /// Whether the cache lives in this process and cannot fail, so no circuit breaker is
    /// needed in front of it. False unless a cache says otherwise.
    fn is_local(&self) -> bool {
        false
    }

    /// For a cache in this process: [`PageCache::lookup`] without a future to box and await,
    /// which on the hit path costs more than the lookup. `None` (the default) means call
    /// `lookup`.
    fn lookup_now(&self, thread: ThreadId) -> Option<Result<Lookup>> {
        let _ = thread;
        None
    }
}
