//! The in-memory store: for tests and benchmarks (`STORE=memory`), and the reference the other
//! stores are tested against. One file per concern, as every store: `create`, `change`,
//! `react`, `pages`, `read_state`, `outbox`.
//!
//! The sequence: each thread's counter is bumped under the store's write lock, which every
//! write holds from its checks to its last change, so numbers are taken and become visible in
//! one order.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Mutex, RwLock};
use std::time::Instant;

use async_trait::async_trait;

use super::{MessageStore, OutboxEvent, StoredEvent};
use crate::changes::Change;
use crate::conversation::{Conversation, Unread};
use crate::error::{Error, Result};
use crate::history::Replaced;
use crate::locks;
use crate::message::ReplySummary;
use crate::message::Timestamp;
use crate::message::{Emoji, Message, MessageId, RequestFingerprint, ThreadId, UserId};
use crate::read::{ReadState, UnreadMax};
use crate::removal::Deletion;
use crate::replies::{self, LiveReply};

mod change;
mod conversation;
mod create;
mod outbox;
mod pages;
mod react;
mod read_state;
mod search;

/// A message as stored: deleted ones keep their row.
struct Entry {
    message: Message,
    /// What is kept of its deletion, once deleted.
    deleted: Option<Deletion>,
    /// Every holder of each emoji, in the order they reacted; `message.reactions` is the
    /// summary of it.
    holders: HashMap<Emoji, Vec<UserId>>,
    /// The versions its edits replaced, oldest first.
    replaced: Vec<Replaced>,
}

impl Entry {
    fn new(message: Message) -> Self {
        Entry {
            message,
            deleted: None,
            holders: HashMap::new(),
            replaced: Vec::new(),
        }
    }

    fn change(&self) -> Change {
        let m = &self.message;
        match &self.deleted {
            None => Change::Message(m.clone()),
            Some(deletion) => Change::Deleted(deletion.tombstone(m.id, m.thread_id, m.seq, m.rev)),
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
    /// Each root's live replies, by `seq`.
    replies: HashMap<MessageId, BTreeSet<i64>>,
    /// Each user's following and position in each root's conversation.
    follows: HashMap<(MessageId, UserId), Follow>,
}

/// A user's following of one conversation and their position in its replies.
#[derive(Clone, Copy, Debug, Default)]
struct Follow {
    following: bool,
    seq: i64,
}

impl Thread {
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

    /// Numbers a change of the live root `root`'s replies: its summary becomes what `summary`
    /// makes of the root's live replies (newest first), the change takes the next number, its
    /// event is written. `None` when the root is not live: a deleted root keeps no summary.
    fn renumber_root(
        &mut self,
        root: MessageId,
        at: Timestamp,
        events: &Mutex<Events>,
        summary: impl FnOnce(&Message, Vec<LiveReply>) -> Option<ReplySummary>,
    ) -> Option<Message> {
        let seq = self.live(root)?.message.seq;
        let replies: Vec<LiveReply> = self
            .replies
            .get(&root)
            .into_iter()
            .flat_map(|seqs| seqs.iter().rev())
            .filter_map(|s| self.by_seq.get(s))
            .map(|e| LiveReply {
                id: e.message.id,
                user_id: e.message.user_id,
                created_at: e.message.created_at,
            })
            .collect();
        let summary = summary(&self.by_seq.get(&seq)?.message, replies);
        let entry = self.renumber(seq)?;
        let rev = entry.message.rev;
        let event = replies::renumber_root(&mut entry.message, summary, rev, at);
        locks::lock(events).push(&event, seq, rev);
        Some(entry.message.clone())
    }

    /// After a reply to the live `root`: its author follows with the reply read, and the
    /// root's author follows unless they chose not to.
    fn follow_on_reply(&mut self, root: &Message, reply: &Message) {
        let replier = self.follows.entry((root.id, reply.user_id)).or_default();
        replier.following = true;
        replier.seq = replier.seq.max(reply.seq);
        self.follows
            .entry((root.id, root.user_id))
            .or_insert(Follow {
                following: true,
                seq: 0,
            });
    }

    /// `user`'s state in the conversation of `root`: unread replies counted up to one past
    /// `max`.
    fn conversation(
        &self,
        thread: ThreadId,
        root: MessageId,
        user: UserId,
        max: UnreadMax,
    ) -> Conversation {
        let follow = self.follows.get(&(root, user)).copied().unwrap_or_default();
        let others = || {
            self.replies
                .get(&root)
                .into_iter()
                .flat_map(|seqs| seqs.range(follow.seq.saturating_add(1)..))
                .filter_map(|s| self.by_seq.get(s))
                .map(|e| &e.message)
                .filter(|m| m.user_id != user)
        };
        // The mentions among the unread counted, as one pass over them counts both.
        let unread: Vec<&Message> = others().take(max.get() + 1).collect();
        let first = unread.first().map(|m| m.seq);
        let counted = unread.len() as u64;
        let mentions = unread
            .iter()
            .filter(|m| m.mentions.as_ref().is_some_and(|x| x.address(user)))
            .count() as u64;
        Conversation::from_unread(
            thread,
            root,
            follow.following,
            follow.seq,
            Unread::new(counted, first, mentions),
            max,
        )
    }

    /// The live root `id` of this thread, or `NotFound` (a reply is no root).
    fn live_root(&self, id: MessageId) -> Result<&Entry> {
        self.live(id)
            .filter(|e| e.message.reply_to.is_none())
            .ok_or(Error::NotFound)
    }

    fn message_at(&self, seq: &i64) -> Option<Message> {
        self.by_seq.get(seq).map(|e| e.message.clone())
    }

    /// The live entry of a message of this thread, if there is one.
    fn live(&self, id: MessageId) -> Option<&Entry> {
        let seq = self.by_id.get(&id)?;
        self.by_seq.get(seq).filter(|e| e.deleted.is_none())
    }

    /// The live entry of a message of this thread, or `NotFound`.
    fn live_entry(&self, id: MessageId) -> Result<&Entry> {
        self.live(id).ok_or(Error::NotFound)
    }

    /// `user`'s read state: the live messages after their position that others wrote,
    /// counted up to one past `max`.
    fn read_state(&self, thread: ThreadId, user: UserId, max: UnreadMax) -> ReadState {
        let seq = self.read.get(&user).copied().unwrap_or(0);
        let others = || {
            self.live
                .range(seq + 1..)
                .filter_map(|s| self.by_seq.get(s))
                .map(|e| &e.message)
                .filter(|m| m.user_id != user)
        };
        // The mentions among the unread counted, as one pass over them counts both.
        let unread: Vec<&Message> = others().take(max.get() + 1).collect();
        let first = unread.first().map(|m| m.seq);
        let mentions = unread
            .iter()
            .filter(|m| m.mentions.as_ref().is_some_and(|x| x.address(user)))
            .count() as u64;
        ReadState::from_unread(thread, seq, unread.len() as u64, first, mentions, max)
    }
}

/// The outbox: events waiting, and those claimed by a relay until their lease runs out.
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
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }
}

#[async_trait]
impl MessageStore for MemoryStore {
    async fn ping(&self) -> Result<()> {
        Ok(())
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
