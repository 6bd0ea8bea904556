//! The threads followed in this process: one feed per thread with followers, woken by this
//! process's writes and by hints from the other replicas.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use super::LiveConfig;
use super::feed::Feed;
use super::follower::Follower;
use super::transport::{Interest, Transport};
use crate::error::Result;
use crate::locks;
use crate::message::ThreadId;
use crate::storage::{ObservedStore, Operation};

/// Called with the lag of each hint from another replica (commit to receipt), for metrics.
pub type LagObserver = Box<dyn Fn(Duration) + Send + Sync>;

/// The threads followed in this process, and the way hints come and go.
///
/// Its map is a std `Mutex` held for a map operation only (the crate's lock policy, `locks`).
pub struct Hub {
    store: ObservedStore,
    config: LiveConfig,
    feeds: Mutex<HashMap<ThreadId, Weak<Feed>>>,
    transport: OnceLock<Arc<dyn Transport>>,
    lag: OnceLock<LagObserver>,
}

impl Hub {
    /// A hub reading from `store`.
    pub fn new(store: ObservedStore, config: LiveConfig) -> Arc<Self> {
        Arc::new(Hub {
            store,
            config,
            feeds: Mutex::new(HashMap::new()),
            transport: OnceLock::new(),
            lag: OnceLock::new(),
        })
    }

    /// Sends this process's hints to other replicas through `transport` (set once).
    pub fn link(&self, transport: Arc<dyn Transport>) {
        let _ = self.transport.set(transport);
    }

    /// Reports the lag of hints from other replicas to `observer` (set once).
    pub fn observe_lag(&self, observer: LagObserver) {
        let _ = self.lag.set(observer);
    }

    /// The settings.
    pub fn config(&self) -> &LiveConfig {
        &self.config
    }

    /// A write of this process committed `rev` in `thread`: wake the thread's feed here, and
    /// tell the other replicas.
    pub fn committed(&self, thread: ThreadId, rev: i64) {
        self.wake(thread);
        if let Some(transport) = self.transport.get() {
            transport.publish(thread, rev);
        }
    }

    /// Another replica committed in `thread`, `lag` ago if it said when; or, with no lag, the
    /// transport may have missed hints about `thread` (it subscribed again).
    pub fn hinted(&self, thread: ThreadId, lag: Option<Duration>) {
        if let (Some(lag), Some(observe)) = (lag, self.lag.get()) {
            observe(lag);
        }
        self.wake(thread);
    }

    /// Makes every feed read the store: hints may have been missed (the transport was down).
    pub fn wake_all(&self) {
        let feeds: Vec<Arc<Feed>> = locks::lock(&self.feeds)
            .values()
            .filter_map(Weak::upgrade)
            .collect();
        for feed in feeds {
            feed.wake();
        }
    }

    /// How many threads have a feed in this process.
    pub fn followed_threads(&self) -> usize {
        locks::lock(&self.feeds)
            .values()
            .filter(|f| f.strong_count() > 0)
            .count()
    }

    fn wake(&self, thread: ThreadId) {
        let feed = locks::lock(&self.feeds)
            .get(&thread)
            .and_then(Weak::upgrade);
        if let Some(feed) = feed {
            feed.wake();
        }
    }

    /// The thread's feed, started if no follower holds one.
    fn feed(&self, thread: ThreadId) -> Arc<Feed> {
        let mut feeds = locks::lock(&self.feeds);
        if let Some(feed) = feeds.get(&thread).and_then(Weak::upgrade) {
            return feed;
        }
        // Now and then, forget the feeds nobody follows any more.
        if feeds.len() >= 64 && feeds.len().is_power_of_two() {
            feeds.retain(|_, f| f.strong_count() > 0);
        }
        let interest = self
            .transport
            .get()
            .map(|transport| Interest::new(thread, Arc::clone(transport)));
        let feed = Feed::start(self.store.clone(), thread, self.config, interest);
        feeds.insert(thread, Arc::downgrade(&feed));
        feed
    }

    /// Follows `thread` from `since` (the position the reader holds), or from the thread's
    /// current position when `None` (only new changes).
    pub async fn follow(&self, thread: ThreadId, since: Option<i64>) -> Result<Follower> {
        // Registered with the feed before the position is read, so nothing committed after the
        // read can be missed.
        let feed = self.feed(thread);
        let batches = feed.subscribe();
        let position = match since {
            Some(since) => since,
            None => self.store.call(Operation::Head, |s| s.head(thread)).await?,
        };
        Ok(Follower::new(
            self.store.clone(),
            feed,
            batches,
            thread,
            position,
            self.config.read_batch,
        ))
    }

    /// Waits until `thread` moves past `since`, or `timeout` passes; true if it moved. For
    /// long polls: the caller reads the changes feed after.
    pub async fn wait_past(&self, thread: ThreadId, since: i64, timeout: Duration) -> bool {
        let feed = self.feed(thread);
        let mut head = feed.watch_head();
        tokio::time::timeout(timeout, head.wait_for(|h| *h > since))
            .await
            .is_ok_and(|changed| changed.is_ok())
    }
}
