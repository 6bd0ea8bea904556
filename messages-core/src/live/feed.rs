//! One thread's feed: a task that reads the thread's changes from the store when woken, once
//! for all of its followers, and hands them out as batches of encoded events.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, broadcast, watch};
use tokio::task::AbortHandle;

use super::LiveConfig;
use super::frame::Frame;
use super::transport::Interest;
use crate::changes::ChangesLimit;
use crate::message::ThreadId;
use crate::storage::{ObservedStore, Operation};

/// The changes a feed read in one go: every change after `from`, up to and including `to`.
#[derive(Debug)]
pub(crate) struct Batch {
    /// The position the read started after.
    pub from: i64,
    /// The position the read reached.
    pub to: i64,
    /// The changes, in `rev` order.
    pub frames: Vec<Frame>,
}

/// A thread's feed. Followers hold it; when the last one lets go, its task stops.
pub(crate) struct Feed {
    wake: Arc<Notify>,
    batches: broadcast::Sender<Arc<Batch>>,
    head: watch::Sender<i64>,
    task: AbortHandle,
    /// Dropped after the task stops: the transport stops hearing the thread for this feed.
    _interest: Option<Interest>,
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Feed {
    /// Starts the feed's task: it reads the thread's position, then the changes after it
    /// whenever woken.
    pub(crate) fn start(
        store: ObservedStore,
        thread: ThreadId,
        config: LiveConfig,
        interest: Option<Interest>,
    ) -> Arc<Feed> {
        let wake = Arc::new(Notify::new());
        let (batches, _) = broadcast::channel(config.feed_buffer.max(1));
        // -1 until the task has read the thread's position (see `Follower::next`).
        let (head, _) = watch::channel(-1);
        let task = tokio::spawn(read_on_wake(
            store,
            thread,
            Arc::clone(&wake),
            batches.clone(),
            head.clone(),
            config,
        ))
        .abort_handle();
        Arc::new(Feed {
            wake,
            batches,
            head,
            task,
            _interest: interest,
        })
    }

    /// Asks the feed to read the store. Wakes that come while it reads are kept (one), so a
    /// change committed during a read is read next.
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    /// Receives every batch from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<Batch>> {
        self.batches.subscribe()
    }

    /// The position the feed has read up to; -1 until it has read where it starts (the
    /// thread's position when its task began: its batches hold only changes after that).
    pub(crate) fn watch_head(&self) -> watch::Receiver<i64> {
        self.head.subscribe()
    }
}

/// The feed's task. Reads from the thread's position when it starts, then, each time it is
/// woken, every change after the last position it read, in reads of `config.read_batch`.
/// A store that fails is retried with a growing pause; followers meanwhile wait.
async fn read_on_wake(
    store: ObservedStore,
    thread: ThreadId,
    wake: Arc<Notify>,
    batches: broadcast::Sender<Arc<Batch>>,
    head: watch::Sender<i64>,
    config: LiveConfig,
) {
    let limit = ChangesLimit::clamped(config.read_batch);
    let mut backoff = Duration::from_millis(100);
    let mut last = loop {
        match store.call(Operation::Head, |s| s.head(thread)).await {
            Ok(position) => break position,
            Err(error) => {
                tracing::warn!(%thread, error = %error, "live feed cannot read the thread's position; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    };
    head.send_replace(last);
    loop {
        wake.notified().await;
        loop {
            match store
                .call(Operation::Changes, |s| s.changes(thread, last, limit))
                .await
            {
                Ok(read) => {
                    backoff = Duration::from_millis(100);
                    if !read.changes.is_empty() {
                        let batch = Batch {
                            from: last,
                            to: read.next,
                            frames: read.changes.iter().map(Frame::of).collect(),
                        };
                        // No follower right now is not an error: they read the store on join.
                        let _ = batches.send(Arc::new(batch));
                    }
                    last = last.max(read.next);
                    head.send_replace(last);
                    if !read.has_more {
                        break;
                    }
                }
                Err(error) => {
                    tracing::warn!(%thread, error = %error, retry_in_ms = backoff.as_millis() as u64, "live feed cannot read changes; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}
