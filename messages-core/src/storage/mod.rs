//! Durable message history: the `MessageStore` trait, and beside it the `Outbox` trait the
//! relay uses, with one backend per file implementing both.
//!
//! A store writes a message change, the next number of the thread's sequence, and the event
//! that announces the change atomically: the service hands it the event encoded up to the
//! numbers, and the store closes it and keeps it in its outbox until the relay has delivered
//! it. Numbers become visible in the order they were taken (see `sync`). The store knows
//! nothing of caches or brokers.

use async_trait::async_trait;

use crate::changes::{Changes, ChangesLimit};
use crate::error::Result;
use crate::history::History;
use crate::message::Emoji;
use crate::message::{
    IdempotencyKey, Message, MessageId, MessagePatch, RequestFingerprint, ThreadId, Timestamp,
    Tombstone, UserId,
};
use crate::page::{Around, Page, PageQuery, PageSize};
use crate::reaction::{Reacted, ReactionChange, ReactionEvent, ReactionLimits, Reactors};
use crate::read::{ReadMark, ReadState, UnreadMax};
use crate::removal::Removal;

mod outbox;

pub mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;

pub use outbox::{Outbox, OutboxEvent, StoredEvent, close_payload};

/// Builds the event for an edit once the store knows the edited message (its numbers not yet
/// taken). A plain function, so a store may call it on a thread of its own.
pub type UpdateEvent = fn(&Message) -> OutboxEvent;

/// Builds the event for a deletion once the store knows the tombstone (who removed the message
/// is there only when not its author; its numbers not yet taken).
pub type DeleteEvent = fn(&Tombstone) -> OutboxEvent;

/// Builds the event for a reaction change once the store knows the emoji's new count (its
/// numbers not yet taken).
pub type ReactionEventBuilder = fn(&ReactionEvent, ReactionChange) -> OutboxEvent;

/// A reaction to add or remove, as the service hands it to a store.
#[derive(Clone, Debug)]
pub struct ReactionRequest {
    /// The message's thread.
    pub thread: ThreadId,
    /// The message.
    pub id: MessageId,
    /// Who reacts.
    pub user: UserId,
    /// With what.
    pub emoji: Emoji,
    /// Add or remove.
    pub change: ReactionChange,
    /// When.
    pub now: Timestamp,
    /// The bounds the summary keeps.
    pub limits: ReactionLimits,
}

/// What a create did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Created {
    /// A new message was stored.
    New(Message),
    /// The idempotency key was seen before with the same request: nothing was stored, and
    /// this is the message the first request created.
    Replayed(Message),
}

impl Created {
    /// The message, new or replayed.
    pub fn message(&self) -> &Message {
        match self {
            Created::New(m) | Created::Replayed(m) => m,
        }
    }
}

/// An idempotency key and the fingerprint of the request that carries it.
#[derive(Clone, Copy, Debug)]
pub struct Idempotency<'a> {
    /// The client's key, scoped to the thread and the user.
    pub key: &'a IdempotencyKey,
    /// Tells a retry (same fingerprint) from a different request reusing the key.
    pub fingerprint: RequestFingerprint,
}

/// What every store does with its schema, in one shape: open a store with its backend's
/// `open(&config).await` (nothing is migrated there), then [`Schema::migrate`].
#[async_trait]
pub trait Schema {
    /// How many migrations this version of the store has.
    fn migration_count() -> usize
    where
        Self: Sized;

    /// Applies the migrations the database lacks, in order; returns how many it applied.
    async fn migrate(&self) -> Result<usize>
    where
        Self: Sized,
    {
        self.migrate_to(Self::migration_count()).await
    }

    /// Applies the migrations the database lacks up to the `version`th only (a database of
    /// an earlier release, for upgrade tests); returns how many it applied.
    async fn migrate_to(&self, version: usize) -> Result<usize>;

    /// How many migrations the database has applied: [`Schema::migration_count`] once it is
    /// up to date, 0 for a database never migrated.
    async fn schema_version(&self) -> Result<usize>;
}

/// Where messages live. Every method names the thread, so a store can be distributed by it.
#[async_trait]
pub trait MessageStore: Send + Sync + 'static {
    /// Stores `message` (not yet numbered) with the thread's next number as its `seq` and
    /// `rev`, and `event` closed with them, atomically; returns the numbered message. A reply
    /// whose target the thread does not hold live is `Error::InvalidReplyTo` (checked after the
    /// idempotency key, so a retry still replays after its target was deleted). With
    /// `idempotency`, a second create with the same thread, user and key returns the first
    /// message (`Created::Replayed`) and takes no number, or, when the request differs,
    /// `Error::IdempotencyConflict`. A new message moves its author's read position in the
    /// thread up to it (their own message is read), in the same transaction.
    async fn create(
        &self,
        message: &Message,
        idempotency: Option<Idempotency<'_>>,
        event: OutboxEvent,
    ) -> Result<Created>;

    /// Adds or removes the user's reaction on a live message. A change takes the thread's
    /// next number as the message's `rev`, updates its reaction summary with the rules of
    /// `reaction` and stores the event `event` builds, atomically; a repeat add or a removal
    /// of a reaction the user does not hold changes nothing and takes no number
    /// (`Reacted::changed` false). `NotFound` for a missing, deleted or other-thread message;
    /// `TooManyReactions` for a new emoji past the limit.
    async fn react(&self, request: ReactionRequest, event: ReactionEventBuilder)
    -> Result<Reacted>;

    /// Removes every reaction of a live message (a moderator's act): one change, numbered as
    /// the message's `rev`, with `event` stored beside it; a message without reactions
    /// changes nothing and takes no number (`Reacted::changed` false). `NotFound` as for
    /// [`MessageStore::get`].
    async fn clear_reactions(
        &self,
        thread: ThreadId,
        id: MessageId,
        event: OutboxEvent,
    ) -> Result<Reacted>;

    /// The users who hold `emoji` on a live message, by user id after `after`, at most
    /// `limit` (1 to [`REACTORS_MAX`](crate::reaction::REACTORS_MAX)). `NotFound` as for
    /// [`MessageStore::get`]; an emoji no one holds is an empty page.
    async fn reactors(
        &self,
        thread: ThreadId,
        id: MessageId,
        emoji: &Emoji,
        after: Option<UserId>,
        limit: usize,
    ) -> Result<Reactors>;

    /// A live message's versions, oldest first, the current one last. `NotFound` as for
    /// [`MessageStore::get`]: a deleted message has no history.
    async fn history(&self, thread: ThreadId, id: MessageId) -> Result<History>;

    /// A live message of the thread, or `Error::NotFound`.
    async fn get(&self, thread: ThreadId, id: MessageId) -> Result<Message>;

    /// Applies `patch` if `user` wrote the message, giving it the thread's next number as its
    /// `rev`; keeps the version it replaced for [`MessageStore::history`] and stores the event
    /// `event` builds from the edited message in the same transaction. `NotFound` for a missing, deleted or other-thread message; `Forbidden`
    /// for another user's.
    async fn update(
        &self,
        thread: ThreadId,
        id: MessageId,
        user: UserId,
        patch: &MessagePatch,
        now: Timestamp,
        event: UpdateEvent,
    ) -> Result<Message>;

    /// Soft-deletes the message if `removal` may remove it (its author, or a moderator),
    /// giving the deletion the thread's next number, and stores the event `event` builds from
    /// the tombstone in the same transaction; returns the tombstone, which names the remover
    /// when not the author and keeps the reason. Its edit history and reactions go with it.
    /// `NotFound` for a missing, deleted or other-thread message; `Forbidden` for another
    /// user's when the remover is no moderator.
    async fn delete(
        &self,
        thread: ThreadId,
        id: MessageId,
        removal: &Removal,
        now: Timestamp,
        event: DeleteEvent,
    ) -> Result<Tombstone>;

    /// Removes every message of `ids` (distinct, in the order given) as
    /// [`MessageStore::delete`] would, each deletion numbered and evented of its own, all in
    /// one transaction: when one is not a live message of the thread, nothing is deleted and
    /// the answer is `Error::RefusedId` naming the first such id; `Forbidden` when `removal`
    /// may not remove one of them. The tombstones, in the order given.
    async fn delete_many(
        &self,
        thread: ThreadId,
        ids: &[MessageId],
        removal: &Removal,
        now: Timestamp,
        event: DeleteEvent,
    ) -> Result<Vec<Tombstone>>;

    /// Moves `user`'s read position in the thread by `mark` (see [`ReadMark`]; a position
    /// past the thread's head is clamped to it) and answers the state it leaves, unread
    /// counted up to `max`. Takes no number of the sequence and writes no event.
    async fn mark_read(
        &self,
        thread: ThreadId,
        user: UserId,
        mark: ReadMark,
        max: UnreadMax,
    ) -> Result<ReadState>;

    /// `user`'s read state in each of `threads` (at most
    /// [`UNREAD_THREADS_MAX`](crate::read::UNREAD_THREADS_MAX)), in the order given, each
    /// position and count from one snapshot: position 0 in a thread never read, unread the
    /// live messages after it that others wrote, counted up to `max`.
    async fn read_states(
        &self,
        user: UserId,
        threads: &[ThreadId],
        max: UnreadMax,
    ) -> Result<Vec<ReadState>>;

    /// A page of live messages by `seq`, read with `size + 1` rows so `has_more` is exact,
    /// with the thread's position read in the same snapshot.
    async fn page(&self, thread: ThreadId, query: PageQuery, size: PageSize) -> Result<Page>;

    /// The live messages around `id` (up to `half` on each side, oldest first), `id` itself
    /// unless it was deleted. A deleted message still anchors; an unknown id or one of
    /// another thread is `Error::NotFound`.
    async fn around(&self, thread: ThreadId, id: MessageId, half: usize) -> Result<Around>;

    /// Every message whose `rev` is greater than `since`, in `rev` order, each in its current
    /// state (deleted ones as tombstones), at most `limit`.
    async fn changes(&self, thread: ThreadId, since: i64, limit: ChangesLimit) -> Result<Changes>;

    /// The `seq` of a message of the thread, deleted or not; `None` for an unknown id.
    async fn locate(&self, thread: ThreadId, id: MessageId) -> Result<Option<i64>>;

    /// The thread's position: the number of its latest change, 0 for a thread never written.
    async fn head(&self, thread: ThreadId) -> Result<i64>;

    /// Whether the store can answer now (for readiness).
    async fn ping(&self) -> Result<()>;

    /// Whether other processes may write to this store too (a database server), so that a
    /// cache in this process cannot learn of every write by itself. False unless a store
    /// says otherwise: a store in memory or in a file has one process.
    fn is_shared(&self) -> bool {
        false
    }
}
