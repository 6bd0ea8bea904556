//! Threads whose invalidation failed (the cache was unreachable after a commit). Until the
//! cache confirms their invalidation, this process reads them from the store, so a cache that
//! comes back holding a page from before the write never serves it here.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::cache::PageCache;
use crate::locks;
use crate::message::ThreadId;

/// How often to retry unconfirmed invalidations while the cache is failing.
const RETRY_INVALIDATION: Duration = Duration::from_millis(500);

#[derive(Default)]
struct Pending {
    threads: HashSet<ThreadId>,
    last_retry: Option<Instant>,
}

/// The threads kept off the cache, and when their invalidations were last retried.
///
/// Its std lock follows the crate's policy (`locks`): held for a set operation, never across
/// an `.await`, poisoning cleared, so recording a failed invalidation is never skipped.
#[derive(Default)]
pub(super) struct Unconfirmed {
    /// Set while `pending` holds a thread, so the common case takes no lock.
    any: AtomicBool,
    pending: Mutex<Pending>,
}

impl Unconfirmed {
    /// Keeps `thread` off the cache until its invalidation succeeds.
    pub(super) fn record(&self, thread: ThreadId) {
        locks::lock(&self.pending).threads.insert(thread);
        self.any.store(true, Ordering::Release);
    }

    /// Whether `thread` may be served from `cache`: false while its invalidation is
    /// unconfirmed. Retries unconfirmed invalidations at most every 500 ms.
    pub(super) async fn usable(&self, cache: &dyn PageCache, thread: ThreadId) -> bool {
        if !self.any.load(Ordering::Acquire) {
            return true;
        }
        let due: Vec<ThreadId> = {
            let mut pending = locks::lock(&self.pending);
            if pending.threads.is_empty() {
                return true;
            }
            let now = Instant::now();
            if pending
                .last_retry
                .is_some_and(|t| now.duration_since(t) < RETRY_INVALIDATION)
            {
                return !pending.threads.contains(&thread);
            }
            pending.last_retry = Some(now);
            pending.threads.iter().copied().collect()
        };
        for thread in due {
            if cache.invalidate(thread).await.is_err() {
                break;
            }
            let mut pending = locks::lock(&self.pending);
            pending.threads.remove(&thread);
            if pending.threads.is_empty() {
                self.any.store(false, Ordering::Release);
            }
        }
        !locks::lock(&self.pending).threads.contains(&thread)
    }

    #[cfg(test)]
    pub(super) fn poison(&self) {
        std::thread::scope(|scope| {
            let _ = scope
                .spawn(|| {
                    let _guard = self.pending.lock();
                    panic!("a holder panics");
                })
                .join();
        });
        assert!(self.pending.is_poisoned());
    }
}
