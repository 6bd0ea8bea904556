//! The seam between the hub and a transport between replicas: what a transport does, and a
//! feed's interest in its thread's hints.

use std::sync::Arc;

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
