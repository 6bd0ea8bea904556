//! The transport between replicas on Redis sharded pub/sub: `SPUBLISH` to tell (from a script
//! on a cluster), `SSUBSCRIBE` to hear, one channel per thread.
//!
//! A thread's channel, `<prefix>:live:{<thread>}`, carries the same hash tag as the thread's
//! cache keys, so on a Redis Cluster it lives in the thread's slot: a hint goes to the one
//! shard that owns it (classic `PUBLISH` floods every node of a cluster), and a replica
//! subscribes only to the threads its readers follow. A replica's work grows with its readers,
//! not with every write of every replica, which is what `NOTIFY` costs.
//!
//! Pub/sub is at most once, and a failover ends subscriptions (the old master drops its
//! shard channels). So, as on PostgreSQL, a lost hint delays and never loses:
//! - every (re)subscription confirmed by Redis wakes that thread's feed, which reads the store
//!   for anything committed before it;
//! - a channel the server unsubscribed (its slot moved) is subscribed again, wherever it now
//!   lives;
//! - while the link is down, or a subscription cannot be made, every feed of this process
//!   reads the store once per `poll_while_unlinked`, and once more when all are back;
//! - hints that could not be sent are kept (the latest per thread) and sent when Redis answers.

//!
//! - `channels`: the channels' names and the state the handle and its tasks share.
//! - `subscriber`: the task that keeps this process subscribed and hands hints to the hub.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::mpsc::unbounded_channel;
use tokio::task::JoinSet;

use super::{Hub, Transport, hint};
use crate::error::Result;
use crate::locks;
use crate::message::ThreadId;
use crate::redis_server::{Connection, RedisServer};

mod channels;
mod subscriber;

use channels::{CONCURRENCY, Channels, PUBLISH, Shared};
use subscriber::Subscriber;

/// Sends and receives hints through Redis sharded pub/sub.
pub struct RedisTransport {
    shared: Arc<Shared>,
}

impl Transport for RedisTransport {
    fn publish(&self, thread: ThreadId, rev: i64) {
        self.shared.pending.put(thread, rev);
    }

    fn follow(&self, thread: ThreadId) {
        let first = {
            let mut followed = locks::lock(&self.shared.followed);
            let count = followed.entry(thread).or_insert(0);
            *count += 1;
            *count == 1
        };
        if first {
            self.shared.changed.notify_one();
        }
    }

    fn unfollow(&self, thread: ThreadId) {
        let last = {
            let mut followed = locks::lock(&self.shared.followed);
            match followed.get_mut(&thread) {
                Some(count) if *count > 1 => {
                    *count -= 1;
                    false
                }
                Some(_) => {
                    followed.remove(&thread);
                    true
                }
                None => false,
            }
        };
        if last {
            self.shared.changed.notify_one();
        }
    }
}

impl RedisTransport {
    /// Starts the sender and the subscriber on `server` (channels under `prefix`, each call
    /// bounded by `timeout`) and links them to `hub`. They stop when the hub is dropped.
    pub fn start(
        server: &RedisServer,
        prefix: &str,
        timeout: Duration,
        hub: &Arc<Hub>,
    ) -> Result<Arc<Self>> {
        let (pushes_in, pushes) = unbounded_channel();
        let subscriber = Connection::open_subscriber(server, timeout, pushes_in)?;
        let publisher = Connection::open(server, timeout)?;
        let shared = Arc::new(Shared::default());
        let channels = Channels {
            prefix: prefix.to_owned(),
        };
        let script = Arc::new(redis::Script::new(PUBLISH));
        tokio::spawn(send(
            publisher,
            Arc::clone(&script),
            timeout,
            channels.clone(),
            Arc::clone(&shared),
            Arc::downgrade(hub),
        ));
        tokio::spawn(
            Subscriber {
                connection: subscriber,
                channels,
                shared: Arc::clone(&shared),
                hub: Arc::downgrade(hub),
                poll: hub.config().poll_while_unlinked,
                subscribed: HashSet::new(),
                unlinked: false,
                stale: true,
                probes: HashMap::new(),
                next_probe: 0,
                script,
            }
            .run(pushes),
        );
        let transport = Arc::new(RedisTransport { shared });
        hub.link(Arc::clone(&transport) as Arc<dyn Transport>);
        Ok(transport)
    }
}

fn timed_out() -> redis::RedisError {
    std::io::Error::new(std::io::ErrorKind::TimedOut, "publishing a hint timed out").into()
}

/// Sends pending hints whenever there are some; a hint Redis did not take stays pending (unless
/// a newer one for its thread came meanwhile) and is sent again.
async fn send(
    connection: Connection,
    script: Arc<redis::Script>,
    timeout: Duration,
    channels: Channels,
    shared: Arc<Shared>,
    hub: Weak<Hub>,
) {
    let mut backoff = Duration::from_millis(100);
    let mut failing = false;
    loop {
        shared.pending.ready().await;
        if hub.strong_count() == 0 {
            return;
        }
        let batch = shared.pending.take();
        let unsent = publish(&connection, &script, timeout, &channels, batch).await;
        let mut last_error = None;
        if unsent.is_empty() {
            if failing {
                tracing::info!("live: sending hints through Redis again");
            }
            failing = false;
            backoff = Duration::from_millis(100);
            continue;
        }
        let kept: Vec<(ThreadId, i64)> = unsent
            .into_iter()
            .map(|(thread, rev, error)| {
                last_error = Some(error);
                (thread, rev)
            })
            .collect();
        shared.pending.keep(kept);
        if !failing && let Some(error) = last_error {
            tracing::warn!(error = %error, "live: cannot send hints through Redis; retrying");
        }
        failing = true;
        tokio::time::sleep(backoff).await;
        // Readers elsewhere wait for these hints (their own link is up, so they do not poll):
        // retry at least every second.
        backoff = (backoff * 2).min(Duration::from_secs(1));
        shared.pending.wake();
    }
}

/// A hint that Redis did not take, and why.
type Unsent = (ThreadId, i64, redis::RedisError);

/// Publishes `batch`, each call bounded by `timeout` (during a manual failover the old master
/// holds writes until it has handed over, and the cluster client waits on it). On one node,
/// one pipeline of `SPUBLISH` for the whole batch; on a cluster, one script call per hint
/// (each goes to its slot's master), `CONCURRENCY` at a time.
async fn publish(
    connection: &Connection,
    script: &Arc<redis::Script>,
    timeout: Duration,
    channels: &Channels,
    batch: Vec<(ThreadId, i64)>,
) -> Vec<Unsent> {
    let sent_at = hint::now_micros();
    if let Connection::Node(node) = connection {
        let mut pipeline = redis::pipe();
        for &(thread, rev) in &batch {
            pipeline
                .cmd("SPUBLISH")
                .arg(channels.of(thread))
                .arg(hint::encode(rev, sent_at))
                .ignore();
        }
        let mut node = node.clone();
        let error = match tokio::time::timeout(timeout, pipeline.exec_async(&mut node)).await {
            Ok(Ok(())) => return Vec::new(),
            Ok(Err(error)) => error,
            Err(_) => timed_out(),
        };
        // The error is not `Clone`: each hint of the pipeline carries its text.
        let error = error.to_string();
        return batch
            .into_iter()
            .map(|(thread, rev)| (thread, rev, std::io::Error::other(error.clone()).into()))
            .collect();
    }
    let mut calls = JoinSet::new();
    let mut unsent = Vec::new();
    for (thread, rev) in batch {
        if calls.len() >= CONCURRENCY
            && let Some(Ok(Err(failed))) = calls.join_next().await
        {
            unsent.push(failed);
        }
        let mut connection = connection.clone();
        let script = Arc::clone(script);
        let channel = channels.of(thread);
        calls.spawn(async move {
            let mut invocation = script.key(channel);
            invocation.arg(hint::encode(rev, sent_at));
            let publish = invocation.invoke_async::<i64>(&mut connection);
            match tokio::time::timeout(timeout, publish).await {
                Ok(published) => published.map_err(|error| (thread, rev, error)),
                Err(_) => Err((thread, rev, timed_out())),
            }
        });
    }
    while let Some(done) = calls.join_next().await {
        if let Ok(Err(failed)) = done {
            unsent.push(failed);
        }
    }
    unsent
}
