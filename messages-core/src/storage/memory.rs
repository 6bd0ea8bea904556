//! The in-memory store: the embedded default, and the reference the PostgreSQL store is
//! tested against.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{Created, Idempotency, MessageStore, Outbox, OutboxEvent, StoredEvent, UpdateEvent};
use crate::error::{Error, Result};
use crate::locks;
use crate::message::{
    Message, MessageId, MessagePatch, RequestFingerprint, ThreadId, Timestamp, UserId,
};
use crate::page::{Page, PageQuery, PageSize};

type Key = (Timestamp, MessageId);

#[derive(Default)]
struct Thread {
    /// Live messages in thread order.
    live: BTreeMap<Key, Message>,
    /// Where each message sits in `live`; deleted ones map to `None`.
    position: HashMap<MessageId, Option<Key>>,
    /// Every message ever created, for idempotent replays of deleted ones.
    created: HashMap<MessageId, Message>,
    /// `(user, key)` → the message it created and the request's fingerprint.
    idempotency: HashMap<(UserId, String), (MessageId, RequestFingerprint)>,
}

#[derive(Default)]
struct Events {
    last_position: i64,
    ready: VecDeque<StoredEvent>,
    leased: BTreeMap<i64, (StoredEvent, Instant)>,
}

impl Events {
    fn push(&mut self, event: OutboxEvent) {
        self.last_position += 1;
        self.ready.push_back(StoredEvent {
            position: self.last_position,
            id: event.id,
            kind: event.kind.to_owned(),
            thread_id: event.thread_id,
            time: event.time,
            payload: event.payload,
        });
    }
}

/// Messages in process memory, lost when the process exits.
///
/// One `RwLock` over all threads keeps every write atomic with its outbox entry and its
/// idempotency record (the outbox's lock is taken inside it). Locks follow the crate's one
/// policy (`locks`): std locks, no critical section awaits, poisoning is cleared.
#[derive(Default)]
pub struct MemoryStore {
    threads: RwLock<HashMap<ThreadId, Thread>>,
    outbox: Mutex<Events>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }
}

/// The author check shared by edit and delete: 404 before 403, so a message of another
/// thread is indistinguishable from a missing one.
fn owned_key(thread: Option<&Thread>, id: MessageId, user: UserId) -> Result<Key> {
    let thread = thread.ok_or(Error::NotFound)?;
    let key = thread
        .position
        .get(&id)
        .copied()
        .flatten()
        .ok_or(Error::NotFound)?;
    let message = thread.live.get(&key).ok_or(Error::NotFound)?;
    if message.user_id != user {
        return Err(Error::Forbidden);
    }
    Ok(key)
}

#[async_trait]
impl MessageStore for MemoryStore {
    async fn create(
        &self,
        message: &Message,
        idempotency: Option<Idempotency<'_>>,
        event: OutboxEvent,
    ) -> Result<Created> {
        let mut threads = locks::write(&self.threads);
        let thread = threads.entry(message.thread_id).or_default();
        if let Some(idem) = idempotency {
            let slot = (message.user_id, idem.key.as_str().to_owned());
            if let Some((id, fingerprint)) = thread.idempotency.get(&slot) {
                if *fingerprint != idem.fingerprint {
                    return Err(Error::IdempotencyConflict);
                }
                let original = thread.created.get(id).cloned().ok_or(Error::NotFound)?;
                return Ok(Created::Replayed(original));
            }
            thread
                .idempotency
                .insert(slot, (message.id, idem.fingerprint));
        }
        let key = (message.created_at, message.id);
        thread.live.insert(key, message.clone());
        thread.position.insert(message.id, Some(key));
        thread.created.insert(message.id, message.clone());
        locks::lock(&self.outbox).push(event);
        Ok(Created::New(message.clone()))
    }

    async fn get(&self, thread: ThreadId, id: MessageId) -> Result<Message> {
        let threads = locks::read(&self.threads);
        let thread = threads.get(&thread).ok_or(Error::NotFound)?;
        let key = thread
            .position
            .get(&id)
            .copied()
            .flatten()
            .ok_or(Error::NotFound)?;
        thread.live.get(&key).cloned().ok_or(Error::NotFound)
    }

    async fn update(
        &self,
        thread_id: ThreadId,
        id: MessageId,
        user: UserId,
        patch: &MessagePatch,
        now: Timestamp,
        event: UpdateEvent<'_>,
    ) -> Result<Message> {
        let mut threads = locks::write(&self.threads);
        let key = owned_key(threads.get(&thread_id), id, user)?;
        let thread = threads.get_mut(&thread_id).ok_or(Error::NotFound)?;
        let message = thread.live.get_mut(&key).ok_or(Error::NotFound)?;
        let mut edited = message.clone();
        patch.apply(&mut edited, now)?;
        *message = edited.clone();
        locks::lock(&self.outbox).push(event(&edited));
        Ok(edited)
    }

    async fn delete(
        &self,
        thread_id: ThreadId,
        id: MessageId,
        user: UserId,
        _now: Timestamp,
        event: OutboxEvent,
    ) -> Result<()> {
        let mut threads = locks::write(&self.threads);
        let key = owned_key(threads.get(&thread_id), id, user)?;
        let thread = threads.get_mut(&thread_id).ok_or(Error::NotFound)?;
        thread.live.remove(&key);
        thread.position.insert(id, None);
        locks::lock(&self.outbox).push(event);
        Ok(())
    }

    async fn page(&self, thread: ThreadId, query: PageQuery, size: PageSize) -> Result<Page> {
        let threads = locks::read(&self.threads);
        let Some(thread) = threads.get(&thread) else {
            return Ok(Page::from_overfetch(Vec::new(), size));
        };
        let take = size.get() + 1;
        let rows: Vec<Message> = match query {
            PageQuery::Newest => thread.live.values().rev().take(take).cloned().collect(),
            PageQuery::Before(c) => thread
                .live
                .range(..(c.created_at(), c.id()))
                .rev()
                .take(take)
                .map(|(_, m)| m.clone())
                .collect(),
            PageQuery::After(c) => thread
                .live
                .range((Bound::Excluded((c.created_at(), c.id())), Bound::Unbounded))
                .take(take)
                .map(|(_, m)| m.clone())
                .collect(),
        };
        Ok(Page::from_overfetch(rows, size))
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}

#[async_trait]
impl Outbox for MemoryStore {
    async fn claim(&self, limit: usize, lease: Duration) -> Result<Vec<StoredEvent>> {
        let mut outbox = locks::lock(&self.outbox);
        let now = Instant::now();
        // Leases that ran out go back to the front, oldest first.
        let expired: Vec<i64> = outbox
            .leased
            .iter()
            .filter(|(_, (_, until))| *until <= now)
            .map(|(position, _)| *position)
            .collect();
        for position in expired.into_iter().rev() {
            if let Some((event, _)) = outbox.leased.remove(&position) {
                outbox.ready.push_front(event);
            }
        }
        let n = limit.min(outbox.ready.len());
        let claimed: Vec<StoredEvent> = outbox.ready.drain(..n).collect();
        for event in &claimed {
            outbox
                .leased
                .insert(event.position, (event.clone(), now + lease));
        }
        Ok(claimed)
    }

    async fn ack(&self, positions: &[i64]) -> Result<()> {
        let mut outbox = locks::lock(&self.outbox);
        for position in positions {
            outbox.leased.remove(position);
        }
        Ok(())
    }

    async fn release(&self, positions: &[i64]) -> Result<()> {
        let mut outbox = locks::lock(&self.outbox);
        let mut released: Vec<StoredEvent> = positions
            .iter()
            .filter_map(|position| outbox.leased.remove(position).map(|(e, _)| e))
            .collect();
        released.sort_by_key(|e| std::cmp::Reverse(e.position));
        for event in released {
            outbox.ready.push_front(event);
        }
        Ok(())
    }

    async fn pending(&self) -> Result<(u64, Option<Timestamp>)> {
        let outbox = locks::lock(&self.outbox);
        let count = outbox.ready.len() + outbox.leased.len();
        let oldest = outbox
            .ready
            .iter()
            .chain(outbox.leased.values().map(|(e, _)| e))
            .map(|e| e.time)
            .min();
        Ok((count as u64, oldest))
    }
}
