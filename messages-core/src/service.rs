//! The service: the one type an embedding application uses, and the one place that orders
//! store → cache → events for every operation.

use std::sync::Arc;

use tokio::sync::Notify;

use crate::cache::breaker::BreakerConfig;
use crate::cache::newest::NewestPages;
use crate::cache::{CacheStats, PageCache};
use crate::changes::{Changes, ChangesLimit};
use crate::cursor::Cursor;
use crate::error::{Error, Result};
use crate::events::codec;
use crate::history::History;
use crate::live::{Hub, LiveConfig};
use crate::message::Emoji;
use crate::message::{
    Clock, IdempotencyKey, Limits, Message, MessageId, MessagePatch, NewMessage,
    RequestFingerprint, ThreadId, Tombstone, UserId,
};
use crate::page::{Page, PageJson, PageQuery, PageSize};
use crate::reaction::{Reacted, ReactionChange, ReactionLimits, ReactionsCleared, Reactors};
use crate::read::{ReadMark, ReadState, UNREAD_THREADS_MAX, UnreadMax};
use crate::removal::Removal;
use crate::storage::{Created, Idempotency, MessageStore, ReactionRequest};

/// The most messages one bulk delete removes.
pub const BULK_DELETE_MAX: usize = 100;

/// Settings of the service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceConfig {
    /// Limits on message input. Default: [`Limits::default`].
    pub limits: Limits,
    /// How many of a thread's newest messages the cache keeps. Default 200, the largest page.
    pub window: PageSize,
    /// When to stop calling a failing cache for a while. Default: [`BreakerConfig::default`].
    pub breaker: BreakerConfig,
    /// Live delivery to followers. Default: [`LiveConfig::default`].
    pub live: LiveConfig,
    /// Bounds of reactions. Default: [`ReactionLimits::default`].
    pub reactions: ReactionLimits,
    /// How far unread messages are counted. Default: [`UnreadMax::DEFAULT`] (1,000).
    pub unread_max: UnreadMax,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            limits: Limits::default(),
            window: PageSize::MAX_SIZE,
            breaker: BreakerConfig::default(),
            live: LiveConfig::default(),
            reactions: ReactionLimits::default(),
            unread_max: UnreadMax::DEFAULT,
        }
    }
}

/// Message history for one application: create, edit, delete and page through threads.
///
/// ```
/// use messages_core::{MessageKind, MessageService, NewMessage, PageQuery, PageSize, ThreadId, UserId};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), messages_core::Error> {
/// let service = MessageService::in_memory();
/// let thread = ThreadId::parse("0193a1a0-0000-7000-8000-000000000001")?;
/// let user = UserId::parse("0193a1a0-0000-7000-8000-0000000000aa")?;
/// let new = NewMessage::new(MessageKind::Text, "hello".into(), vec![], service.limits())?;
/// let created = service.create(thread, user, new, None).await?;
///
/// let page = service.page(thread, PageQuery::Newest, PageSize::DEFAULT).await?;
/// assert_eq!(page.items, vec![created.message().clone()]);
/// assert!(!page.has_more);
/// # Ok(())
/// # }
/// ```
pub struct MessageService {
    store: Arc<dyn MessageStore>,
    newest: NewestPages,
    hub: Arc<Hub>,
    wake_relay: Arc<Notify>,
    config: ServiceConfig,
    clock: Clock,
}

impl MessageService {
    /// A service over the given backends.
    pub fn new(
        store: Arc<dyn MessageStore>,
        cache: Arc<dyn PageCache>,
        config: ServiceConfig,
    ) -> Self {
        // A cache of this process alone over a store other processes write to would miss
        // their writes: its hits are then checked against the store's position.
        let check_hits = store.is_shared() && cache.is_local();
        MessageService {
            hub: Hub::new(Arc::clone(&store), config.live),
            newest: NewestPages::new(cache, config.window, config.breaker, check_hits),
            store,
            wake_relay: Arc::new(Notify::new()),
            config,
            clock: Clock::new(),
        }
    }

    /// A service with the in-memory store and cache and default settings.
    pub fn in_memory() -> Self {
        MessageService::new(
            Arc::new(crate::storage::memory::MemoryStore::new()),
            Arc::new(crate::cache::memory::MemoryCache::default()),
            ServiceConfig::default(),
        )
    }

    /// The input limits, for building [`NewMessage`] and [`MessagePatch`].
    pub fn limits(&self) -> &Limits {
        &self.config.limits
    }

    /// Signalled after every write, so a relay delivers events without polling.
    pub fn relay_signal(&self) -> Arc<Notify> {
        Arc::clone(&self.wake_relay)
    }

    /// The threads followed live in this process: follow one, wait for one to move, or link
    /// the replicas with a transport.
    pub fn hub(&self) -> Arc<Hub> {
        Arc::clone(&self.hub)
    }

    /// The circuit breaker in front of the cache (`None` for a cache in this process), to
    /// guard other users of the same service with: the Redis rate limiter shares it.
    pub fn cache_breaker(&self) -> Option<Arc<crate::cache::breaker::Breaker>> {
        self.newest.breaker()
    }

    /// What the cache did so far.
    pub fn cache_stats(&self) -> CacheStats {
        self.newest.stats()
    }

    /// Creates a message in `thread` by `user`. With an idempotency key, a retry of the same
    /// request returns the first message as [`Created::Replayed`] and stores nothing.
    pub async fn create(
        &self,
        thread: ThreadId,
        user: UserId,
        new: NewMessage,
        key: Option<IdempotencyKey>,
    ) -> Result<Created> {
        let idempotency = key.as_ref().map(|key| Idempotency {
            key,
            fingerprint: RequestFingerprint::of(&new),
        });
        let message = Message::from_new(MessageId::new_v7(), thread, user, new, self.clock.now());
        let event = codec::created(&message);
        let created = self
            .outcome_known(
                thread,
                self.store.create(&message, idempotency, event).await,
            )
            .await?;
        if let Created::New(numbered) = &created {
            self.after_write(thread, numbered.rev).await;
        }
        Ok(created)
    }

    /// Edits a message; only its author may.
    pub async fn update(
        &self,
        thread: ThreadId,
        id: MessageId,
        user: UserId,
        patch: MessagePatch,
    ) -> Result<Message> {
        let now = self.clock.now();
        let updated = self
            .store
            .update(thread, id, user, &patch, now, codec::updated)
            .await;
        let message = self.outcome_known(thread, updated).await?;
        self.after_write(thread, message.rev).await;
        Ok(message)
    }

    /// Soft-deletes a message as its author (see [`MessageService::remove`] for a
    /// moderator). Returns what is left of it.
    pub async fn delete(&self, thread: ThreadId, id: MessageId, user: UserId) -> Result<Tombstone> {
        self.remove(thread, id, &Removal::by_author(user)).await
    }

    /// Soft-deletes a message as `removal` says: its author, or a moderator (anyone's
    /// message), with an optional reason. The tombstone, in the changes feed, the stream and the
    /// event, names the remover when not the author and keeps the reason.
    pub async fn remove(
        &self,
        thread: ThreadId,
        id: MessageId,
        removal: &Removal,
    ) -> Result<Tombstone> {
        let now = self.clock.now();
        let deleted = self
            .store
            .delete(thread, id, removal, now, codec::deleted)
            .await;
        let tombstone = self.outcome_known(thread, deleted).await?;
        self.after_write(thread, tombstone.rev).await;
        Ok(tombstone)
    }

    /// A moderator removes `ids` (1 to [`BULK_DELETE_MAX`], distinct, all live messages of
    /// the thread) at once: all of them or none, each deletion numbered in the order given and
    /// evented of its own. `Forbidden` for a remover who is no moderator; `RefusedId` naming an
    /// id named twice or not live in the thread (nothing is deleted).
    pub async fn remove_many(
        &self,
        thread: ThreadId,
        ids: &[MessageId],
        removal: &Removal,
    ) -> Result<Vec<Tombstone>> {
        if !removal.is_moderator() {
            return Err(Error::Forbidden);
        }
        if ids.is_empty() || ids.len() > BULK_DELETE_MAX {
            return Err(Error::invalid(
                "ids",
                format!("name 1 to {BULK_DELETE_MAX} messages"),
            ));
        }
        let mut seen = std::collections::HashSet::with_capacity(ids.len());
        if let Some(&id) = ids.iter().find(|id| !seen.insert(**id)) {
            return Err(Error::RefusedId {
                id: *id.as_uuid(),
                why: "is named twice",
            });
        }
        let now = self.clock.now();
        let deleted = self
            .store
            .delete_many(thread, ids, removal, now, codec::deleted)
            .await;
        let tombstones = self.outcome_known(thread, deleted).await?;
        if let Some(last) = tombstones.last() {
            self.after_write(thread, last.rev).await;
        }
        Ok(tombstones)
    }

    /// Adds (`ReactionChange::Add`) or removes the user's reaction on a live message. A
    /// change takes the thread's next number like an edit and is cached, pushed and replayed
    /// like one; a repeat changes nothing (`Reacted::changed` false).
    pub async fn react(
        &self,
        thread: ThreadId,
        id: MessageId,
        user: UserId,
        emoji: Emoji,
        change: ReactionChange,
    ) -> Result<Reacted> {
        let request = ReactionRequest {
            thread,
            id,
            user,
            emoji,
            change,
            now: self.clock.now(),
            limits: self.config.reactions,
        };
        let reacted = self
            .outcome_known(thread, self.store.react(request, codec::reaction).await)
            .await?;
        if reacted.changed {
            self.after_write(thread, reacted.message.rev).await;
        }
        Ok(reacted)
    }

    /// A moderator clears every reaction of a live message: one change, numbered, cached,
    /// pushed (`message.updated` on the stream) and sent as a `reaction.cleared` event.
    /// `Forbidden` for a remover who is no moderator; nothing to clear changes nothing.
    pub async fn clear_reactions(
        &self,
        thread: ThreadId,
        id: MessageId,
        removal: &Removal,
    ) -> Result<Reacted> {
        if !removal.is_moderator() {
            return Err(Error::Forbidden);
        }
        let event = codec::cleared(&ReactionsCleared {
            message_id: id,
            thread_id: thread,
            cleared_by: removal.by(),
            cleared_at: self.clock.now(),
        });
        let reacted = self
            .outcome_known(thread, self.store.clear_reactions(thread, id, event).await)
            .await?;
        if reacted.changed {
            self.after_write(thread, reacted.message.rev).await;
        }
        Ok(reacted)
    }

    /// Who reacted to a live message with `emoji`, by user id after `after`.
    pub async fn reactors(
        &self,
        thread: ThreadId,
        id: MessageId,
        emoji: &Emoji,
        after: Option<UserId>,
        limit: usize,
    ) -> Result<Reactors> {
        let limit = limit.clamp(1, crate::reaction::REACTORS_MAX);
        self.store.reactors(thread, id, emoji, after, limit).await
    }

    /// A live message's versions, oldest first, the current one last.
    pub async fn history(&self, thread: ThreadId, id: MessageId) -> Result<History> {
        self.store.history(thread, id).await
    }

    /// Moves `user`'s read position in the thread (forward only, or back with
    /// [`ReadMark::UnreadFrom`]) and answers it with what is unread after it. Private to the
    /// user: no number of the thread's sequence, no event, the cached page untouched.
    pub async fn mark_read(
        &self,
        thread: ThreadId,
        user: UserId,
        mark: ReadMark,
    ) -> Result<ReadState> {
        self.store
            .mark_read(thread, user, mark, self.config.unread_max)
            .await
    }

    /// `user`'s read state in each of `threads` (1 to [`UNREAD_THREADS_MAX`]), in that order.
    pub async fn read_states(&self, user: UserId, threads: &[ThreadId]) -> Result<Vec<ReadState>> {
        if threads.is_empty() || threads.len() > UNREAD_THREADS_MAX {
            return Err(Error::invalid(
                "threads",
                format!("name 1 to {UNREAD_THREADS_MAX} threads"),
            ));
        }
        self.store
            .read_states(user, threads, self.config.unread_max)
            .await
    }

    /// After a commit: make the cached page stale, tell the thread's followers (here and on
    /// the other replicas), then wake the relay for the event.
    async fn after_write(&self, thread: ThreadId, rev: i64) {
        self.newest.invalidate(thread).await;
        self.hub.committed(thread, rev);
        self.wake_relay.notify_one();
    }

    /// Passes a write's result on. A write the store could not answer (`Unavailable`: the
    /// connection dropped or the operation timed out) may have committed all the same, its
    /// answer lost on the way back: it is treated as a commit of unknown number, so a change
    /// that did land does not wait for the thread's next write to reach the cached page, the
    /// live followers here and on other replicas, or the relay. They read the store when it
    /// answers, and find the change or nothing.
    async fn outcome_known<T>(&self, thread: ThreadId, result: Result<T>) -> Result<T> {
        if matches!(result, Err(Error::Unavailable { .. })) {
            self.after_write(thread, 0).await;
        }
        result
    }

    /// One live message.
    pub async fn get(&self, thread: ThreadId, id: MessageId) -> Result<Message> {
        self.store.get(thread, id).await
    }

    /// A page as typed messages, read from the store.
    pub async fn page(&self, thread: ThreadId, query: PageQuery, size: PageSize) -> Result<Page> {
        self.store.page(thread, query, size).await
    }

    /// A page as response JSON. The newest page comes from the cache when it can; every
    /// other page is a keyset query on the store.
    pub async fn page_json(
        &self,
        thread: ThreadId,
        query: PageQuery,
        size: PageSize,
    ) -> Result<PageJson> {
        if query == PageQuery::Newest && self.newest.serves(size) {
            return self
                .newest
                .page_json(self.store.as_ref(), thread, size)
                .await;
        }
        Ok(PageJson::whole(
            self.store.page(thread, query, size).await?.to_json(),
        ))
    }

    /// The `seq` a cursor names: its own, or for a cursor of version 1, that of the message it
    /// names (`Error::InvalidCursor` when the thread has no such message).
    pub async fn resolve(&self, thread: ThreadId, cursor: Cursor) -> Result<i64> {
        match cursor {
            Cursor::Seq(seq) => Ok(seq),
            Cursor::Legacy(id) => self
                .store
                .locate(thread, id)
                .await?
                .ok_or(Error::InvalidCursor),
        }
    }

    /// The messages around `id`: up to `size / 2` on each side, oldest first, as response
    /// JSON. `Error::NotFound` for an id the thread does not have.
    pub async fn around_json(
        &self,
        thread: ThreadId,
        id: MessageId,
        size: PageSize,
    ) -> Result<Vec<u8>> {
        Ok(self
            .store
            .around(thread, id, size.get() / 2)
            .await?
            .to_json())
    }

    /// The changes after `since`, in `rev` order.
    pub async fn changes(
        &self,
        thread: ThreadId,
        since: i64,
        limit: ChangesLimit,
    ) -> Result<Changes> {
        self.store.changes(thread, since, limit).await
    }

    /// The thread's position: the number of its latest change.
    pub async fn head(&self, thread: ThreadId) -> Result<i64> {
        self.store.head(thread).await
    }

    /// Whether the store answers: the service can serve every request. A failing cache is
    /// not unreadiness (requests fall back to the store); see [`MessageService::cache_ready`].
    pub async fn ready(&self) -> Result<()> {
        self.store.ping().await
    }

    /// Whether the cache answers.
    pub async fn cache_ready(&self) -> Result<()> {
        self.newest.ping().await
    }
}
