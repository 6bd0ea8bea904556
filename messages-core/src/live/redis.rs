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

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use redis::{PushInfo, PushKind, Value};
use tokio::sync::Notify;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio::task::JoinSet;

use super::transport::Outgoing;
use super::{Hub, Transport, hint};
use crate::error::Result;
use crate::locks;
use crate::message::ThreadId;
use crate::redis_server::{Connection, RedisServer};

/// How many subscription or publish calls are in flight at once.
const CONCURRENCY: usize = 32;

/// `SPUBLISH` from a script that names the channel as its key, on a cluster. A script is a
/// write, so a node that is not the slot's master answers it with a redirection, where a bare
/// `SPUBLISH` is accepted by a replica of the slot's shard (a demoted master after a failover,
/// to a client that has not learnt the slots again) and reaches nobody.
const PUBLISH: &str = "return redis.call('SPUBLISH', KEYS[1], ARGV[1])";

/// State shared by the transport's handle and its two tasks.
#[derive(Default)]
struct Shared {
    /// Hints to send.
    pending: Outgoing,
    /// The threads followed here, with how many feeds follow each.
    followed: Mutex<HashMap<ThreadId, usize>>,
    changed: Notify,
}

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

/// Channel names: `<prefix>:live:{<thread>}`.
#[derive(Clone)]
struct Channels {
    prefix: String,
}

impl Channels {
    fn of(&self, thread: ThreadId) -> String {
        format!("{}:live:{{{thread}}}", self.prefix)
    }

    /// The thread a channel of ours names.
    fn thread(&self, channel: &[u8]) -> Option<ThreadId> {
        let channel = std::str::from_utf8(channel).ok()?;
        let tagged = channel
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix(":live:{")?
            .strip_suffix('}')?;
        ThreadId::parse(tagged).ok()
    }
}

fn bulk(value: Option<&Value>) -> Option<&[u8]> {
    match value? {
        Value::BulkString(bytes) => Some(bytes),
        _ => None,
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

/// Keeps this process subscribed to the channels of the threads it follows, and hands what
/// arrives on them to the hub.
struct Subscriber {
    connection: Connection,
    channels: Channels,
    shared: Arc<Shared>,
    hub: Weak<Hub>,
    poll: Duration,
    /// The channels Redis confirmed and has not ended since.
    subscribed: HashSet<ThreadId>,
    /// Some followed thread has no subscription because Redis failed: feeds read the store
    /// on a timer until every one is back.
    unlinked: bool,
    /// The followed threads may differ from the subscribed ones: compare them before waiting
    /// again (not on every hint, which would walk every followed thread each time).
    stale: bool,
    /// On a cluster, the subscriptions not yet proven to hear: each new one publishes a probe
    /// on its channel (by the script, which reaches the slot's master) and must hear it back
    /// before the deadline. Right after a failover the client may subscribe on the demoted
    /// master, which accepts and never delivers; a probe that does not come back ends the
    /// subscription and it is made again.
    probes: HashMap<ThreadId, (u64, tokio::time::Instant)>,
    next_probe: u64,
    script: Arc<redis::Script>,
}

impl Subscriber {
    async fn run(mut self, mut pushes: UnboundedReceiver<PushInfo>) {
        loop {
            if self.stale {
                let Some(hub) = self.hub.upgrade() else {
                    return;
                };
                self.stale = false;
                self.reconcile(&hub).await;
            }
            let poll = self.poll;
            tokio::select! {
                () = self.shared.changed.notified() => self.stale = true,
                push = pushes.recv() => match push {
                    Some(push) => {
                        let Some(hub) = self.hub.upgrade() else { return };
                        self.heard(&hub, push);
                        while let Ok(push) = pushes.try_recv() {
                            self.heard(&hub, push);
                        }
                    }
                    None => return,
                },
                () = tokio::time::sleep(poll), if self.unlinked => {
                    let Some(hub) = self.hub.upgrade() else { return };
                    hub.wake_all();
                    self.stale = true;
                }
                () = tokio::time::sleep_until(self.next_probe_deadline()), if !self.probes.is_empty() => {
                    let Some(hub) = self.hub.upgrade() else { return };
                    self.deaf(&hub);
                }
            }
        }
    }

    fn next_probe_deadline(&self) -> tokio::time::Instant {
        self.probes
            .values()
            .map(|&(_, deadline)| deadline)
            .min()
            .unwrap_or_else(tokio::time::Instant::now)
    }

    /// Subscriptions whose probe did not come back hear nothing: they are made again, and
    /// their feeds read the store until then.
    fn deaf(&mut self, hub: &Hub) {
        let now = tokio::time::Instant::now();
        let deaf: Vec<ThreadId> = self
            .probes
            .iter()
            .filter(|(_, (_, deadline))| *deadline <= now)
            .map(|(&thread, _)| thread)
            .collect();
        for thread in deaf {
            self.probes.remove(&thread);
            self.subscribed.remove(&thread);
            self.unlinked = true;
            self.stale = true;
            tracing::warn!(%thread, "live: a Redis subscription heard nothing (its slot moved); subscribing again");
            hub.hinted(thread, None);
        }
    }

    /// Publishes a probe on `thread`'s channel, to be heard back before the deadline.
    async fn probe(&mut self, thread: ThreadId) {
        self.next_probe += 1;
        let nonce = self.next_probe;
        self.probes
            .insert(thread, (nonce, tokio::time::Instant::now() + self.poll));
        let mut invocation = self.script.key(self.channels.of(thread));
        invocation.arg(format!("probe {nonce}"));
        let mut connection = self.connection.clone();
        // A probe that cannot be sent is not heard either: the deadline deals with it.
        let _ =
            tokio::time::timeout(self.poll, invocation.invoke_async::<i64>(&mut connection)).await;
    }

    /// What Redis pushed: a hint, a confirmed subscription, an ended one, or a lost link.
    fn heard(&mut self, hub: &Hub, push: PushInfo) {
        match push.kind {
            PushKind::SMessage => {
                let thread = bulk(push.data.first()).and_then(|c| self.channels.thread(c));
                let payload = bulk(push.data.get(1)).and_then(|p| std::str::from_utf8(p).ok());
                if let (Some(thread), Some(probe)) =
                    (thread, payload.and_then(|p| p.strip_prefix("probe ")))
                {
                    // Ours: the subscription hears. Another replica's: nothing to do.
                    if self
                        .probes
                        .get(&thread)
                        .map(|&(nonce, _)| nonce.to_string())
                        .as_deref()
                        == Some(probe)
                    {
                        self.probes.remove(&thread);
                    }
                    return;
                }
                let lag = bulk(push.data.get(1))
                    .and_then(|payload| std::str::from_utf8(payload).ok())
                    .and_then(|payload| hint::decode(payload.split(' ')));
                if let (Some(thread), Some(lag)) = (thread, lag) {
                    hub.hinted(thread, lag);
                }
            }
            PushKind::SSubscribe => {
                // Subscribed, or subscribed again by the client after a reconnect: hints sent
                // before this confirmation may have been missed, so the feed reads the store.
                if let Some(thread) = bulk(push.data.first()).and_then(|c| self.channels.thread(c))
                {
                    self.subscribed.insert(thread);
                    hub.hinted(thread, None);
                }
            }
            PushKind::SUnsubscribe => {
                // Ours, or the server's when the slot moved (a failover); if the thread is still
                // followed, the next reconcile subscribes where the slot now lives.
                if let Some(thread) = bulk(push.data.first()).and_then(|c| self.channels.thread(c))
                {
                    self.subscribed.remove(&thread);
                    self.stale = true;
                    hub.hinted(thread, None);
                }
            }
            PushKind::Disconnection => {
                if !self.unlinked {
                    tracing::warn!(
                        "live: the Redis subscription link dropped; feeds read the store until it is back"
                    );
                }
                self.subscribed.clear();
                self.unlinked = true;
                self.stale = true;
                hub.wake_all();
            }
            _ => {}
        }
    }

    /// Subscribes to the followed threads not subscribed, unsubscribes from the rest.
    async fn reconcile(&mut self, hub: &Hub) {
        let wanted: HashSet<ThreadId> =
            locks::lock(&self.shared.followed).keys().copied().collect();
        let join: Vec<ThreadId> = wanted.difference(&self.subscribed).copied().collect();
        let leave: Vec<ThreadId> = self.subscribed.difference(&wanted).copied().collect();
        if join.is_empty() && leave.is_empty() {
            self.relinked(hub);
            return;
        }
        let mut calls = JoinSet::new();
        let mut outcomes = Vec::new();
        let calls_of = join
            .into_iter()
            .map(|t| (t, true))
            .chain(leave.into_iter().map(|t| (t, false)));
        for (thread, joining) in calls_of {
            if calls.len() >= CONCURRENCY
                && let Some(Ok(outcome)) = calls.join_next().await
            {
                outcomes.push(outcome);
            }
            let mut connection = self.connection.clone();
            let channel = self.channels.of(thread);
            calls.spawn(async move {
                let result = if joining {
                    connection.ssubscribe(&channel).await
                } else {
                    connection.sunsubscribe(&channel).await
                };
                (thread, joining, result)
            });
        }
        while let Some(done) = calls.join_next().await {
            if let Ok(outcome) = done {
                outcomes.push(outcome);
            }
        }
        let mut failed = None;
        let mut joined = Vec::new();
        for (thread, joining, result) in outcomes {
            match result {
                Ok(()) if joining => {
                    self.subscribed.insert(thread);
                    joined.push(thread);
                    hub.hinted(thread, None);
                }
                Ok(()) => {
                    self.subscribed.remove(&thread);
                    self.probes.remove(&thread);
                }
                Err(error) => failed = Some(error),
            }
        }
        if matches!(self.connection, Connection::Cluster(_)) {
            for thread in joined {
                self.probe(thread).await;
            }
        }
        match failed {
            Some(error) => {
                if !self.unlinked {
                    tracing::warn!(error = %error, "live: cannot subscribe to threads on Redis; feeds read the store until it answers");
                }
                self.unlinked = true;
                hub.wake_all();
            }
            None => self.relinked(hub),
        }
    }

    /// Every followed thread is subscribed: if the link had been down, read everything once
    /// more (hints sent while it came back may have been missed).
    fn relinked(&mut self, hub: &Hub) {
        if self.unlinked {
            self.unlinked = false;
            tracing::info!(
                threads = self.subscribed.len(),
                "live: subscribed on Redis again"
            );
            hub.wake_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_names_its_thread_under_the_prefix() {
        let channels = Channels {
            prefix: "app".into(),
        };
        let thread = ThreadId::from_uuid(uuid::Uuid::now_v7());
        let channel = channels.of(thread);
        assert_eq!(channel, format!("app:live:{{{thread}}}"));
        assert_eq!(channels.thread(channel.as_bytes()), Some(thread));
        let other = Channels {
            prefix: "other".into(),
        };
        assert_eq!(other.thread(channel.as_bytes()), None);
        assert_eq!(channels.thread(b"app:live:{not-a-thread}"), None);
        assert_eq!(channels.thread(b"app:live:"), None);
    }
}
