//! Live: every committed change of a thread pushed to the readers that follow it, in this
//! process and, through a notification transport, in the other replicas.
//!
//! The changes feed is the truth; the push is a faster way to read it. A write tells the hub
//! "thread T moved" (a hint). The thread's feed, one per thread that has followers in this
//! process, then reads the changes after the last position it read from the store, once,
//! encodes each as a server-sent event, and hands the batch to every follower. A follower
//! that gets a batch which does not carry on from where it is (it joined late, or fell behind)
//! reads the gap from the store itself. A lost hint therefore delays a change and never loses
//! it; a transport that was cut wakes every feed when it is back.
//!
//! - `hub`: the threads followed in this process, and the hints that wake them.
//! - `transport`: what a transport between replicas does, and a feed's interest in hints.
//! - `feed`: one thread's reader and the batches it hands out.
//! - `follower`: one reader's position, replay, and the seam between replay and the feed.
//! - `frame`: a change as a server-sent event.
//! - `postgres`: a transport between replicas, PostgreSQL `LISTEN`/`NOTIFY`: every replica
//!   hears every thread.
//! - `redis`: a transport between replicas, Redis sharded pub/sub: a replica hears only the
//!   threads its readers follow, from the shard that owns each.

use std::time::Duration;

mod feed;
mod follower;
mod frame;
#[cfg(any(feature = "postgres", feature = "redis"))]
mod hint;
mod hub;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
mod transport;

pub use follower::{FollowError, Follower};
pub use frame::{Frame, heartbeat, retry_hint};
pub use hub::{Hub, LagObserver};
pub use transport::Transport;

/// Settings of live delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveConfig {
    /// How many batches a thread's feed keeps for followers that have not taken them yet; a
    /// follower further behind than this is too slow and is closed. Default 256.
    pub feed_buffer: usize,
    /// How many changes a feed or a follower reads from the store at once. Default 500.
    pub read_batch: usize,
    /// How often every feed reads the store while the transport between replicas is down, so
    /// other replicas' writes still arrive. Default 1 s.
    pub poll_while_unlinked: Duration,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            feed_buffer: 256,
            read_batch: 500,
            poll_while_unlinked: Duration::from_secs(1),
        }
    }
}
