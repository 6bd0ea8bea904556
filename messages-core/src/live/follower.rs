//! One reader following a thread: its position, the replay from the store up to the feed, and
//! the seam between the two, where no change is missed or sent twice.

use std::sync::Arc;

use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use super::feed::{Batch, Feed};
use super::frame::Frame;
use crate::changes::ChangesLimit;
use crate::error::Error;
use crate::message::ThreadId;
use crate::storage::{ObservedStore, Operation};

/// Why a follower cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// The reader fell further behind the feed than it keeps: it is too slow and should
    /// reconnect from its last position.
    #[error("the reader fell behind the thread's feed")]
    Lagged,
    /// The store could not be read; retrying later may succeed.
    #[error(transparent)]
    Store(#[from] Error),
}

/// A reader's position in a thread, and the way to the changes after it.
pub struct Follower {
    store: ObservedStore,
    // Held so the thread's feed runs while this follower exists.
    feed: Arc<Feed>,
    batches: broadcast::Receiver<Arc<Batch>>,
    thread: ThreadId,
    position: i64,
    /// Whether the follower has read the store up to where the feed's batches take over.
    caught_up: bool,
    /// Whether the feed has read where it starts and this follower has checked it is not
    /// ahead of it.
    feed_started: bool,
    limit: ChangesLimit,
}

impl Follower {
    pub(crate) fn new(
        store: ObservedStore,
        feed: Arc<Feed>,
        batches: broadcast::Receiver<Arc<Batch>>,
        thread: ThreadId,
        position: i64,
        read_batch: usize,
    ) -> Self {
        Follower {
            store,
            feed,
            batches,
            thread,
            position,
            caught_up: false,
            feed_started: false,
            limit: ChangesLimit::clamped(read_batch),
        }
    }

    /// The last change the reader was given (or where it started).
    pub fn position(&self) -> i64 {
        self.position
    }

    /// The next changes after the reader's position, in `rev` order, waiting until there are
    /// some. Cancel-safe: dropped while waiting, it has taken nothing.
    ///
    /// First it replays from the store until it reaches the thread's position; then it takes
    /// the feed's batches, skipping what it already has. A batch that starts past its position
    /// means it missed one (it joined while a read was in flight): it reads the gap from the
    /// store before going on.
    pub async fn next(&mut self) -> Result<Vec<Frame>, FollowError> {
        loop {
            if !self.caught_up {
                let (thread, since, limit) = (self.thread, self.position, self.limit);
                let read = self
                    .store
                    .call(Operation::Changes, |s| s.changes(thread, since, limit))
                    .await?;
                let frames: Vec<Frame> = read.changes.iter().map(Frame::of).collect();
                self.position = self.position.max(read.next);
                self.caught_up = !read.has_more;
                if !frames.is_empty() {
                    return Ok(frames);
                }
                continue;
            }
            if !self.feed_started {
                // The feed's batches begin where its task found the thread when it started,
                // which may be after this follower's replay read the store: wait until it has
                // started, and if it started past this follower's position, read the store
                // again, so a change committed between the two is not missed.
                let mut head = self.feed.watch_head();
                let started = match head.wait_for(|h| *h >= 0).await {
                    Ok(head) => *head,
                    Err(_) => return Err(FollowError::Lagged),
                };
                self.feed_started = true;
                if started > self.position {
                    self.caught_up = false;
                    continue;
                }
            }
            let batch = match self.batches.recv().await {
                Ok(batch) => batch,
                // The feed lives as long as this follower holds it, so a closed channel cannot
                // happen; if it did, the reader reconnects from its position like a slow one.
                Err(RecvError::Lagged(_) | RecvError::Closed) => return Err(FollowError::Lagged),
            };
            if batch.to <= self.position {
                continue;
            }
            if batch.from > self.position {
                self.caught_up = false;
                continue;
            }
            let frames: Vec<Frame> = batch
                .frames
                .iter()
                .filter(|f| f.rev > self.position)
                .cloned()
                .collect();
            self.position = batch.to;
            if !frames.is_empty() {
                return Ok(frames);
            }
        }
    }
}
