//! The seam between the hub and a transport between replicas: what a transport does, and a
//! feed's interest in its thread's hints.

#[cfg(any(feature = "postgres", feature = "redis"))]
use std::collections::HashMap;
use std::sync::Arc;
#[cfg(any(feature = "postgres", feature = "redis"))]
use std::sync::Mutex;

#[cfg(any(feature = "postgres", feature = "redis"))]
use tokio::sync::Notify;

#[cfg(any(feature = "postgres", feature = "redis"))]
use crate::locks;
use crate::message::ThreadId;

/// Tells other replicas that a thread moved. Best effort: a hint that does not arrive delays
/// a change, since readers also read the store when the link comes back.
pub trait Transport: Send + Sync + 'static {
    /// Announces that `thread` moved to `rev`. Never waits.
    fn publish(&self, thread: ThreadId, rev: i64);

    /// This process now has readers of `thread`: hints about it are wanted here. Calls come
    /// paired with [`Transport::unfollow`] and may overlap (a feed that ends while the next
    /// one for the same thread starts), so a transport counts them. Never waits. A transport
    /// that hears every thread's hints anyway (`NOTIFY`) ignores it.
    fn follow(&self, _thread: ThreadId) {}

    /// One [`Transport::follow`] of `thread` ended.
    fn unfollow(&self, _thread: ThreadId) {}
}

/// A feed's interest in its thread's hints: followed while it lives.
pub(crate) struct Interest {
    thread: ThreadId,
    transport: Arc<dyn Transport>,
}

impl Interest {
    pub(crate) fn new(thread: ThreadId, transport: Arc<dyn Transport>) -> Self {
        transport.follow(thread);
        Interest { thread, transport }
    }
}

impl Drop for Interest {
    fn drop(&mut self) {
        self.transport.unfollow(self.thread);
    }
}

/// Hints waiting to be sent, the latest per thread: a burst of writes is one hint per thread,
/// and nothing is dropped however fast writes come. A transport's sender waits on it.
#[cfg(any(feature = "postgres", feature = "redis"))]
#[derive(Default)]
pub(crate) struct Outgoing {
    threads: Mutex<HashMap<ThreadId, i64>>,
    ready: Notify,
}

#[cfg(any(feature = "postgres", feature = "redis"))]
impl Outgoing {
    /// `thread` moved to `rev`: wakes the sender.
    pub(crate) fn put(&self, thread: ThreadId, rev: i64) {
        self.keep([(thread, rev)]);
        self.ready.notify_one();
    }

    /// Keeps hints that could not be sent, unless newer ones for their threads came meanwhile;
    /// the sender tries again when it is woken (see [`Outgoing::wake`]).
    pub(crate) fn keep(&self, hints: impl IntoIterator<Item = (ThreadId, i64)>) {
        let mut threads = locks::lock(&self.threads);
        for (thread, rev) in hints {
            let slot = threads.entry(thread).or_insert(rev);
            *slot = (*slot).max(rev);
        }
    }

    /// Waits until there may be hints to send.
    pub(crate) async fn ready(&self) {
        self.ready.notified().await;
    }

    /// Makes the next [`Outgoing::ready`] return at once.
    pub(crate) fn wake(&self) {
        self.ready.notify_one();
    }

    /// Every hint waiting, which are no longer kept.
    pub(crate) fn take(&self) -> Vec<(ThreadId, i64)> {
        locks::lock(&self.threads).drain().collect()
    }
}
