//! The subscriber: keeps this process subscribed to the channels of the threads it follows
//! (proving each on a cluster by a probe it must hear back), and hands what arrives to the hub.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::Duration;

use redis::{PushInfo, PushKind};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinSet;

use super::channels::{CONCURRENCY, Channels, Shared, bulk};
use crate::live::{Hub, hint};
use crate::locks;
use crate::message::ThreadId;
use crate::redis_server::Connection;

/// Keeps this process subscribed to the channels of the threads it follows, and hands what
/// arrives on them to the hub.
pub(super) struct Subscriber {
    pub(super) connection: Connection,
    pub(super) channels: Channels,
    pub(super) shared: Arc<Shared>,
    pub(super) hub: Weak<Hub>,
    pub(super) poll: Duration,
    /// The channels Redis confirmed and has not ended since.
    pub(super) subscribed: HashSet<ThreadId>,
    /// Some followed thread has no subscription because Redis failed: feeds read the store
    /// on a timer until every one is back.
    pub(super) unlinked: bool,
    /// The followed threads may differ from the subscribed ones: compare them before waiting
    /// again (not on every hint, which would walk every followed thread each time).
    pub(super) stale: bool,
    /// On a cluster, the subscriptions not yet proven to hear: each new one publishes a probe
    /// on its channel (by the script, which reaches the slot's master) and must hear it back
    /// before the deadline. Right after a failover the client may subscribe on the demoted
    /// master, which accepts and never delivers; a probe that does not come back ends the
    /// subscription and it is made again.
    pub(super) probes: HashMap<ThreadId, (u64, tokio::time::Instant)>,
    pub(super) next_probe: u64,
    pub(super) script: Arc<redis::Script>,
}

impl Subscriber {
    pub(super) async fn run(mut self, mut pushes: UnboundedReceiver<PushInfo>) {
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
