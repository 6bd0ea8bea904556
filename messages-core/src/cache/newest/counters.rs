//! What the newest-page front did: one atomic counter each, bumped on every read, so no lock.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::cache::CacheStats;

/// The front's counters.
#[derive(Default)]
pub(super) struct Counters {
    pub(super) hits: AtomicU64,
    pub(super) misses: AtomicU64,
    pub(super) fills: AtomicU64,
    pub(super) rejected_fills: AtomicU64,
    pub(super) errors: AtomicU64,
    pub(super) stale: AtomicU64,
}

impl Counters {
    /// Adds one to `counter`.
    pub(super) fn bump(&self, counter: fn(&Counters) -> &AtomicU64) {
        counter(self).fetch_add(1, Ordering::Relaxed);
    }

    /// The counts so far.
    pub(super) fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            fills: self.fills.load(Ordering::Relaxed),
            rejected_fills: self.rejected_fills.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            stale: self.stale.load(Ordering::Relaxed),
        }
    }
}
