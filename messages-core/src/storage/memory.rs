//! The in-memory store: for tests and benchmarks (`STORE=memory`), and the reference the other
//! stores are tested against.
//!
//! The sequence: each thread's counter is bumped under the store's write lock, which every
//! write holds from its checks to its last change, so numbers are taken and become visible in
//! one order.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{
    Created, DeleteEvent, Idempotency, MessageStore, Outbox, OutboxEvent, ReactionEventBuilder,
    ReactionRequest, StoredEvent, UpdateEvent,
};
use crate::changes::{Change, Changes, ChangesLimit};
use crate::error::{Error, Result};
use crate::history::{History, Replaced};
use crate::locks;
use crate::message::Emoji;
use crate::message::{
    Message, MessageId, MessagePatch, RequestFingerprint, ThreadId, Timestamp, Tombstone, UserId,
};
use crate::page::{Around, Page, PageQuery, PageSize};
use crate::reaction::{self, Reacted, ReactionChange, ReactionEvent, Reactors};
use crate::read::{ReadMark, ReadState, UnreadMax};
use crate::removal::Removal;

/// A message as stored: deleted ones keep their row.
struct Entry {
    message: Message,
    deleted_at: Option<Timestamp>,
    /// Who removed it when not its author, and why.
    deleted_by: Option<UserId>,
    reason: Option<String>,
    /// Every holder of each emoji, in the order they reacted; `message.reactions` is the
    /// summary of it.
    holders: HashMap<Emoji, Vec<UserId>>,
    /// The versions its edits replaced, oldest first.
    replaced: Vec<Replaced>,
}

impl Entry {
    fn change(&self) -> Change {
        match self.deleted_at {
            None => Change::Message(self.message.clone()),
            Some(deleted_at) => Change::Deleted(Tombstone {
                id: self.message.id,
                thread_id: self.message.thread_id,
                deleted_at,
                deleted_by: self.deleted_by,
                reason: self.reason.clone(),
                seq: self.message.seq,
                rev: self.message.rev,
            }),
        }
    }
}

#[derive(Default)]
struct Thread {
    /// The number of the thread's latest change.
    head: i64,
    /// Every message ever created, by `seq`.
    by_seq: BTreeMap<i64, Entry>,
    /// The `seq` of every live message.
    live: BTreeSet<i64>,
    /// Each message's `rev` (its latest change) to its `seq`.
    by_rev: BTreeMap<i64, i64>,
    /// Each message's id to its `seq`.
    by_id: HashMap<MessageId, i64>,
    /// `(user, key)` → the message it created and the request's fingerprint.
    idempotency: HashMap<(UserId, String), (MessageId, RequestFingerprint)>,
    /// Each reader's position.
    read: HashMap<UserId, i64>,
}

impl Thread {
    /// The `seq` of a live message `user` wrote: 404 before 403, so a message of another
    /// thread is indistinguishable from a missing one.
    fn owned(&self, id: MessageId, user: UserId) -> Result<i64> {
        let seq = *self.by_id.get(&id).ok_or(Error::NotFound)?;
        let entry = self.by_seq.get(&seq).ok_or(Error::NotFound)?;
        if entry.deleted_at.is_some() {
            return Err(Error::NotFound);
        }
        if entry.message.user_id != user {
            return Err(Error::Forbidden);
        }
        Ok(seq)
    }

    /// Takes the next number and makes it the `rev` of the message at `seq`.
    fn renumber(&mut self, seq: i64) -> Option<&mut Entry> {
        self.head += 1;
        let rev = self.head;
        let entry = self.by_seq.get_mut(&seq)?;
        self.by_rev.remove(&entry.message.rev);
        entry.message.rev = rev;
        self.by_rev.insert(rev, seq);
        Some(entry)
    }

    fn message_at(&self, seq: &i64) -> Option<Message> {
        self.by_seq.get(seq).map(|e| e.message.clone())
    }

    /// `user`'s read state: the live messages after their position that others wrote,
    /// counted up to one past `max`.
    fn read_state(&self, thread: ThreadId, user: UserId, max: UnreadMax) -> ReadState {
        let seq = self.read.get(&user).copied().unwrap_or(0);
        let mut unread = self
            .live
            .range(seq + 1..)
            .filter(|s| {
                self.by_seq
                    .get(s)
                    .is_some_and(|e| e.message.user_id != user)
            })
            .take(max.get() + 1);
        let first = unread.next().copied();
        let counted = first.map_or(0, |_| 1 + unread.count() as u64);
        ReadState::from_unread(thread, seq, counted, first, max)
    }

    /// The live entry of a message of this thread.
    fn live_entry(&self, id: MessageId) -> Result<&Entry> {
        let seq = self.by_id.get(&id).ok_or(Error::NotFound)?;
        match self.by_seq.get(seq) {
            Some(entry) if entry.deleted_at.is_none() => Ok(entry),
            _ => Err(Error::NotFound),
        }
    }
}

#[derive(Default)]
struct Events {
    last_position: i64,
    ready: VecDeque<StoredEvent>,
    leased: BTreeMap<i64, (StoredEvent, Instant)>,
}

impl Events {
    fn push(&mut self, event: &OutboxEvent, seq: i64, rev: i64) {
        self.last_position += 1;
        self.ready.push_back(StoredEvent {
            position: self.last_position,
            id: event.id,
            kind: event.kind.to_owned(),
            thread_id: event.thread_id,
            time: event.time,
            sequence: rev,
            payload: event.payload(seq, rev),
        });
    }
}

/// Messages in process memory, lost when the process exits.
///
/// One `RwLock` over all threads keeps every write atomic with its number, its outbox entry
/// and its idempotency record (the outbox's lock is taken inside it). Locks follow the crate's
/// one policy (`locks`): std locks, no critical section awaits, poisoning is cleared; every
/// write checks everything that can fail before it changes anything.
#[derive(Default)]
pub struct MemoryStore {
    threads: RwLock<HashMap<ThreadId, Thread>>,
    outbox: Mutex<Events>,
}

impl MemoryStore {
    /// Deletes a live message of `thread` that `removal` may remove (checked by the caller,
    /// under the same lock, so this finds it).
    fn remove_checked(
        &self,
        thread: &mut Thread,
        thread_id: ThreadId,
        id: MessageId,
        removal: &Removal,
        now: Timestamp,
        event: DeleteEvent,
    ) -> Result<Tombstone> {
        let seq = *thread.by_id.get(&id).ok_or(Error::NotFound)?;
        let entry = thread.renumber(seq).ok_or(Error::NotFound)?;
        entry.deleted_at = Some(now);
        entry.deleted_by = removal.deleted_by(entry.message.user_id);
        entry.reason = removal.reason().map(str::to_owned);
        entry.replaced.clear();
        entry.holders.clear();
        let tombstone = Tombstone {
            id,
            thread_id,
            deleted_at: now,
            deleted_by: entry.deleted_by,
            reason: entry.reason.clone(),
            seq,
            rev: entry.message.rev,
        };
        thread.live.remove(&seq);
        locks::lock(&self.outbox).push(&event(&tombstone), seq, tombstone.rev);
        Ok(tombstone)
    }

    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }
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
                let original = thread
                    .by_id
                    .get(id)
                    .and_then(|seq| thread.message_at(seq))
                    .ok_or(Error::NotFound)?;
                return Ok(Created::Replayed(original));
            }
        }
        if let Some(target) = message.reply_to {
            thread
                .live_entry(target)
                .map_err(|_| Error::InvalidReplyTo)?;
        }
        if let Some(idem) = idempotency {
            let slot = (message.user_id, idem.key.as_str().to_owned());
            thread
                .idempotency
                .insert(slot, (message.id, idem.fingerprint));
        }
        thread.head += 1;
        let seq = thread.head;
        let mut numbered = message.clone();
        numbered.seq = seq;
        numbered.rev = seq;
        thread.by_seq.insert(
            seq,
            Entry {
                message: numbered.clone(),
                deleted_at: None,
                deleted_by: None,
                reason: None,
                holders: HashMap::new(),
                replaced: Vec::new(),
            },
        );
        thread.live.insert(seq);
        thread.by_rev.insert(seq, seq);
        thread.by_id.insert(numbered.id, seq);
        let position = thread.read.entry(numbered.user_id).or_default();
        *position = (*position).max(seq);
        locks::lock(&self.outbox).push(&event, seq, seq);
        Ok(Created::New(numbered))
    }

    async fn get(&self, thread: ThreadId, id: MessageId) -> Result<Message> {
        let threads = locks::read(&self.threads);
        let thread = threads.get(&thread).ok_or(Error::NotFound)?;
        Ok(thread.live_entry(id)?.message.clone())
    }

    async fn react(
        &self,
        request: ReactionRequest,
        event: ReactionEventBuilder,
    ) -> Result<Reacted> {
        let ReactionRequest {
            thread: thread_id,
            id,
            user,
            emoji,
            change,
            now,
            limits,
        } = request;
        let mut threads = locks::write(&self.threads);
        let thread = threads.get_mut(&thread_id).ok_or(Error::NotFound)?;
        let entry = thread.live_entry(id)?;
        let holders = entry.holders.get(&emoji).map_or(&[][..], Vec::as_slice);
        let holds = holders.contains(&user);
        let mut summary = entry.message.reactions.clone();
        let count = match (change, holds) {
            (ReactionChange::Add, true) | (ReactionChange::Remove, false) => {
                return Ok(Reacted {
                    message: entry.message.clone(),
                    changed: false,
                });
            }
            (ReactionChange::Add, false) => {
                reaction::add_to_summary(&mut summary, &emoji, user, &limits)?
            }
            (ReactionChange::Remove, true) => {
                let next = reaction::listed(&summary, &emoji, user)
                    .then(|| {
                        let shown = reaction::shown(&summary, &emoji);
                        holders
                            .iter()
                            .copied()
                            .find(|u| *u != user && !shown.contains(u))
                    })
                    .flatten();
                reaction::remove_from_summary(&mut summary, &emoji, user, next, &limits)
            }
        };
        let seq = entry.message.seq;
        let entry = thread.renumber(seq).ok_or(Error::NotFound)?;
        let holders = entry.holders.entry(emoji.clone()).or_default();
        match change {
            ReactionChange::Add => holders.push(user),
            ReactionChange::Remove => holders.retain(|u| *u != user),
        }
        if holders.is_empty() {
            entry.holders.remove(&emoji);
        }
        entry.message.reactions = summary;
        let message = entry.message.clone();
        let built = event(
            &ReactionEvent {
                message_id: id,
                thread_id,
                user_id: user,
                emoji,
                count,
                reacted_at: now,
            },
            change,
        );
        locks::lock(&self.outbox).push(&built, seq, message.rev);
        Ok(Reacted {
            message,
            changed: true,
        })
    }

    async fn clear_reactions(
        &self,
        thread_id: ThreadId,
        id: MessageId,
        event: OutboxEvent,
    ) -> Result<Reacted> {
        let mut threads = locks::write(&self.threads);
        let thread = threads.get_mut(&thread_id).ok_or(Error::NotFound)?;
        let current = thread.live_entry(id)?;
        if current.message.reactions.is_empty() {
            return Ok(Reacted {
                message: current.message.clone(),
                changed: false,
            });
        }
        let seq = *thread.by_id.get(&id).ok_or(Error::NotFound)?;
        let entry = thread.renumber(seq).ok_or(Error::NotFound)?;
        entry.holders.clear();
        entry.message.reactions.clear();
        let message = entry.message.clone();
        locks::lock(&self.outbox).push(&event, seq, message.rev);
        Ok(Reacted {
            message,
            changed: true,
        })
    }

    async fn reactors(
        &self,
        thread: ThreadId,
        id: MessageId,
        emoji: &Emoji,
        after: Option<UserId>,
        limit: usize,
    ) -> Result<Reactors> {
        let threads = locks::read(&self.threads);
        let thread = threads.get(&thread).ok_or(Error::NotFound)?;
        let entry = thread.live_entry(id)?;
        let mut users: Vec<UserId> = entry.holders.get(emoji).cloned().unwrap_or_default();
        let count = users.len() as i64;
        users.sort_unstable();
        users.retain(|u| after.is_none_or(|after| *u > after));
        users.truncate(limit + 1);
        Ok(Reactors::from_overfetch(emoji.clone(), count, users, limit))
    }

    async fn history(&self, thread: ThreadId, id: MessageId) -> Result<History> {
        let threads = locks::read(&self.threads);
        let thread = threads.get(&thread).ok_or(Error::NotFound)?;
        let entry = thread.live_entry(id)?;
        Ok(History::new(&entry.message, entry.replaced.clone()))
    }

    async fn update(
        &self,
        thread_id: ThreadId,
        id: MessageId,
        user: UserId,
        patch: &MessagePatch,
        now: Timestamp,
        event: UpdateEvent,
    ) -> Result<Message> {
        let mut threads = locks::write(&self.threads);
        let thread = threads.get_mut(&thread_id).ok_or(Error::NotFound)?;
        let seq = thread.owned(id, user)?;
        let mut edited = thread.message_at(&seq).ok_or(Error::NotFound)?;
        patch.apply(&mut edited, now)?;
        let entry = thread.renumber(seq).ok_or(Error::NotFound)?;
        edited.rev = entry.message.rev;
        let old = std::mem::replace(&mut entry.message, edited.clone());
        entry.replaced.push(Replaced {
            content: old.content,
            paths: old.paths,
            made_at: old.updated_at,
            replaced_by: edited.rev,
        });
        locks::lock(&self.outbox).push(&event(&edited), seq, edited.rev);
        Ok(edited)
    }

    async fn delete(
        &self,
        thread_id: ThreadId,
        id: MessageId,
        removal: &Removal,
        now: Timestamp,
        event: DeleteEvent,
    ) -> Result<Tombstone> {
        let mut threads = locks::write(&self.threads);
        let thread = threads.get_mut(&thread_id).ok_or(Error::NotFound)?;
        let author = thread.live_entry(id)?.message.user_id;
        if !removal.may_remove(author) {
            return Err(Error::Forbidden);
        }
        self.remove_checked(thread, thread_id, id, removal, now, event)
    }

    async fn delete_many(
        &self,
        thread_id: ThreadId,
        ids: &[MessageId],
        removal: &Removal,
        now: Timestamp,
        event: DeleteEvent,
    ) -> Result<Vec<Tombstone>> {
        let mut threads = locks::write(&self.threads);
        let refused = |id: MessageId| Error::RefusedId {
            id: *id.as_uuid(),
            why: "is not a live message of this thread",
        };
        let Some(thread) = threads.get_mut(&thread_id) else {
            return Err(ids.first().map_or(Error::NotFound, |&id| refused(id)));
        };
        // Every check before any change: all of them or none.
        for &id in ids {
            let author = thread
                .live_entry(id)
                .map_err(|_| refused(id))?
                .message
                .user_id;
            if !removal.may_remove(author) {
                return Err(Error::Forbidden);
            }
        }
        ids.iter()
            .map(|&id| self.remove_checked(thread, thread_id, id, removal, now, event))
            .collect()
    }

    async fn mark_read(
        &self,
        thread: ThreadId,
        user: UserId,
        mark: ReadMark,
        max: UnreadMax,
    ) -> Result<ReadState> {
        let mut threads = locks::write(&self.threads);
        let entry = threads.entry(thread).or_default();
        let current = entry.read.get(&user).copied().unwrap_or(0);
        let moved = mark.apply(current, entry.head);
        entry.read.insert(user, moved);
        Ok(entry.read_state(thread, user, max))
    }

    async fn read_states(
        &self,
        user: UserId,
        threads: &[ThreadId],
        max: UnreadMax,
    ) -> Result<Vec<ReadState>> {
        let stored = locks::read(&self.threads);
        Ok(threads
            .iter()
            .map(|&thread| match stored.get(&thread) {
                Some(entry) => entry.read_state(thread, user, max),
                None => ReadState::from_unread(thread, 0, 0, None, max),
            })
            .collect())
    }

    async fn page(&self, thread: ThreadId, query: PageQuery, size: PageSize) -> Result<Page> {
        let threads = locks::read(&self.threads);
        let Some(thread) = threads.get(&thread) else {
            return Ok(Page::from_overfetch(Vec::new(), size, 0));
        };
        let take = size.get() + 1;
        let seqs: Vec<&i64> = match query {
            PageQuery::Newest => thread.live.iter().rev().take(take).collect(),
            PageQuery::Before(s) => thread.live.range(..s).rev().take(take).collect(),
            PageQuery::After(s) => thread
                .live
                .range(s.saturating_add(1)..)
                .take(take)
                .collect(),
        };
        let rows = seqs
            .into_iter()
            .filter_map(|seq| thread.message_at(seq))
            .collect();
        Ok(Page::from_overfetch(rows, size, thread.head))
    }

    async fn around(&self, thread: ThreadId, id: MessageId, half: usize) -> Result<Around> {
        let threads = locks::read(&self.threads);
        let thread = threads.get(&thread).ok_or(Error::NotFound)?;
        let anchor = *thread.by_id.get(&id).ok_or(Error::NotFound)?;
        let before = thread
            .live
            .range(..anchor)
            .rev()
            .take(half + 1)
            .filter_map(|seq| thread.message_at(seq))
            .collect();
        let after = thread
            .live
            .range(anchor.saturating_add(1)..)
            .take(half + 1)
            .filter_map(|seq| thread.message_at(seq))
            .collect();
        let anchor = thread
            .live
            .contains(&anchor)
            .then(|| thread.message_at(&anchor))
            .flatten();
        Ok(Around::from_overfetch(
            before,
            anchor,
            after,
            half,
            thread.head,
        ))
    }

    async fn changes(&self, thread: ThreadId, since: i64, limit: ChangesLimit) -> Result<Changes> {
        let threads = locks::read(&self.threads);
        let Some(thread) = threads.get(&thread) else {
            return Ok(Changes::from_overfetch(Vec::new(), since, 0, limit.get()));
        };
        let rows = thread
            .by_rev
            .range(since.saturating_add(1)..)
            .take(limit.get() + 1)
            .filter_map(|(_, seq)| thread.by_seq.get(seq).map(Entry::change))
            .collect();
        Ok(Changes::from_overfetch(
            rows,
            since,
            thread.head,
            limit.get(),
        ))
    }

    async fn locate(&self, thread: ThreadId, id: MessageId) -> Result<Option<i64>> {
        let threads = locks::read(&self.threads);
        Ok(threads.get(&thread).and_then(|t| t.by_id.get(&id).copied()))
    }

    async fn head(&self, thread: ThreadId) -> Result<i64> {
        Ok(locks::read(&self.threads)
            .get(&thread)
            .map_or(0, |t| t.head))
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

/// Memory has no schema: there is nothing to migrate.
#[async_trait]
impl super::Schema for MemoryStore {
    fn migration_count() -> usize {
        0
    }

    async fn migrate_to(&self, _version: usize) -> Result<usize> {
        Ok(0)
    }

    async fn schema_version(&self) -> Result<usize> {
        Ok(0)
    }
}
