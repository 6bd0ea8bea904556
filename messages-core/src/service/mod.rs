//! The service: the one type an embedding application uses, and the one place that orders
//! store → cache → events for every operation. It is built by [`ServiceBuilder`], which hands
//! back the outbox relay beside it: the relay delivers the events every write leaves in the
//! store, and until it runs they stay there.
//!
//! The writes are here; `reads` has the reads, `config` the settings.

use std::sync::Arc;

use tokio::sync::Notify;

use crate::cache::newest::NewestPages;
use crate::cache::{CacheStats, PageCache};
use crate::conversation::{Conversation, FollowRequest, RepliesReadRequest};
use crate::error::{Error, Result};
use crate::events::Publisher;
use crate::events::memory::MemorySink;
use crate::events::outbox::{Relay, RelayConfig};
use crate::live::Hub;
use crate::message::{
    Clock, Emoji, IdempotencyKey, Limits, Message, MessageId, MessagePatch, NewMessage,
    RequestFingerprint, ThreadId, Tombstone, UserId,
};
use crate::reaction::{ClearRequest, Reacted, ReactionChange, ReactionRequest};
use crate::read::{ReadMark, ReadState};
use crate::removal::Removal;
use crate::storage::{MessageStore, ObservedStore, Operation, StoreObserver};
mod config;
mod reads;

pub use config::ServiceConfig;

use crate::write::{
    BulkDeleteRequest, BulkIds, CreateRequest, Created, DeleteRequest, EditRequest, Idempotency,
    MarkReadRequest,
};

/// Builds a [`MessageService`] over a store, and the [`Relay`] that delivers the events its
/// writes leave in the store. Every part but the store has a default: the in-process cache
/// ([`MemoryCache`](crate::cache::memory::MemoryCache)), the in-process event sink
/// ([`MemorySink`]), [`ServiceConfig::default`], [`RelayConfig::default`], no observer.
///
/// ```
/// use std::sync::Arc;
/// use messages_core::MessageService;
/// use messages_core::storage::memory::MemoryStore;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let (service, relay) = MessageService::builder(Arc::new(MemoryStore::new())).build();
/// let relay = relay.spawn(); // delivers every write's event until stopped
/// // ... use `service` ...
/// relay.stop(std::time::Duration::from_secs(5)).await; // delivers what is left, then ends
/// # drop(service);
/// # }
/// ```
#[must_use = "call build(): it returns the service and the relay to run beside it"]
pub struct ServiceBuilder {
    store: Arc<dyn MessageStore>,
    cache: Option<Arc<dyn PageCache>>,
    publisher: Option<Arc<dyn Publisher>>,
    config: ServiceConfig,
    relay: RelayConfig,
    observer: Option<Arc<dyn StoreObserver>>,
}

impl ServiceBuilder {
    /// The cache in front of the store. Default: a [`MemoryCache`](crate::cache::memory::MemoryCache)
    /// with its default settings.
    pub fn cache(mut self, cache: Arc<dyn PageCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Where the relay delivers events. Default: a [`MemorySink`] (the log, and in-process
    /// subscribers).
    pub fn publisher(mut self, publisher: Arc<dyn Publisher>) -> Self {
        self.publisher = Some(publisher);
        self
    }

    /// The service's settings. Default: [`ServiceConfig::default`].
    pub fn config(mut self, config: ServiceConfig) -> Self {
        self.config = config;
        self
    }

    /// The relay's settings. Default: [`RelayConfig::default`].
    pub fn relay(mut self, relay: RelayConfig) -> Self {
        self.relay = relay;
        self
    }

    /// Told of every store call the service makes (the server records them as metrics).
    /// Default: none, and calls are not timed.
    pub fn observer(mut self, observer: Arc<dyn StoreObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The service, and the relay that delivers its writes' events: run it
    /// ([`Relay::spawn`], or [`Relay::run`] with a stop of your own), or the store's outbox
    /// keeps every event.
    pub fn build(self) -> (MessageService, Relay) {
        let cache = self
            .cache
            .unwrap_or_else(|| Arc::new(crate::cache::memory::MemoryCache::default()));
        let publisher = self
            .publisher
            .unwrap_or_else(|| Arc::new(MemorySink::default()));
        // A cache of this process alone over a store other processes write to would miss
        // their writes: its hits are then checked against the store's position.
        let check_hits = self.store.is_shared() && cache.is_local();
        let wake_relay = Arc::new(Notify::new());
        let relay = Relay::new(
            Arc::clone(&self.store),
            publisher,
            Arc::clone(&wake_relay),
            self.relay,
        );
        let store = ObservedStore::new(self.store, self.observer);
        let config = self.config;
        let service = MessageService {
            hub: Hub::new(store.clone(), config.live),
            newest: NewestPages::new(cache, config.window, config.breaker, check_hits),
            store,
            wake_relay,
            config,
            clock: Clock::new(),
        };
        (service, relay)
    }
}

/// Message history for one application: create, edit, delete and page through threads.
///
/// ```
/// use messages_core::{MessageKind, MessageService, NewMessage, PageQuery, PageSize, ThreadId, UserId};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), messages_core::Error> {
/// let (service, relay) = MessageService::in_memory();
/// let relay = relay.spawn();
/// let thread = ThreadId::parse("0193a1a0-0000-7000-8000-000000000001")?;
/// let user = UserId::parse("0193a1a0-0000-7000-8000-0000000000aa")?;
/// let new = NewMessage::new(MessageKind::Text, "hello".into(), vec![], service.limits())?;
/// let created = service.create(thread, user, new, None).await?;
///
/// let page = service.page(thread, PageQuery::Newest, PageSize::DEFAULT).await?;
/// assert_eq!(page.items, vec![created.message().clone()]);
/// assert!(!page.has_more);
/// relay.stop(std::time::Duration::from_secs(1)).await;
/// # Ok(())
/// # }
/// ```
pub struct MessageService {
    store: ObservedStore,
    newest: NewestPages,
    hub: Arc<Hub>,
    wake_relay: Arc<Notify>,
    config: ServiceConfig,
    clock: Clock,
}

impl MessageService {
    /// Starts building a service over `store`: see [`ServiceBuilder`].
    pub fn builder(store: Arc<dyn MessageStore>) -> ServiceBuilder {
        ServiceBuilder {
            store,
            cache: None,
            publisher: None,
            config: ServiceConfig::default(),
            relay: RelayConfig::default(),
            observer: None,
        }
    }

    /// A service with the in-memory store and every default, and its relay.
    pub fn in_memory() -> (Self, Relay) {
        MessageService::builder(Arc::new(crate::storage::memory::MemoryStore::new())).build()
    }

    /// The input limits, for building [`NewMessage`] and [`MessagePatch`].
    pub fn limits(&self) -> &Limits {
        &self.config.limits
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

    /// The store, for what the service does not do itself (an outbox's backlog for metrics).
    pub fn store(&self) -> &Arc<dyn MessageStore> {
        self.store.store()
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
        let idempotency = key.map(|key| Idempotency {
            key,
            fingerprint: RequestFingerprint::of(&new),
        });
        let message = Message::from_new(MessageId::new_v7(), thread, user, new, self.clock.now());
        let request = CreateRequest {
            message,
            idempotency,
            participants: self.config.participants,
        };
        let created = self
            .store
            .call(Operation::Create, |s| s.create(request))
            .await;
        let created = self.unknown_outcome_as_commit(thread, created).await?;
        if let Some(rev) = created.last_rev() {
            self.after_write(thread, rev).await;
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
        let request = EditRequest {
            thread,
            id,
            user,
            patch,
            at: self.clock.now(),
        };
        let edited = self.store.call(Operation::Edit, |s| s.edit(request)).await;
        let message = self.unknown_outcome_as_commit(thread, edited).await?;
        self.after_write(thread, message.rev).await;
        Ok(message)
    }

    /// Soft-deletes a message as its author (see [`MessageService::remove`] for a
    /// moderator). Returns what is left of it.
    pub async fn delete(&self, thread: ThreadId, id: MessageId, user: UserId) -> Result<Tombstone> {
        self.remove(thread, id, Removal::by_author(user)).await
    }

    /// Soft-deletes a message as `removal` says: its author, or a moderator (anyone's
    /// message), with an optional reason. The tombstone, in the changes feed, the stream and the
    /// event, names the remover when not the author and keeps the reason.
    pub async fn remove(
        &self,
        thread: ThreadId,
        id: MessageId,
        removal: Removal,
    ) -> Result<Tombstone> {
        let request = DeleteRequest {
            thread,
            id,
            removal,
            at: self.clock.now(),
            participants: self.config.participants,
        };
        let deleted = self
            .store
            .call(Operation::Delete, |s| s.delete(request))
            .await;
        let tombstone = self.unknown_outcome_as_commit(thread, deleted).await?;
        self.after_write(thread, tombstone.rev).await;
        Ok(tombstone)
    }

    /// A moderator removes `ids` (all live messages of the thread) at once: all of them or
    /// none, each deletion numbered in the order given and evented of its own. `Forbidden` for
    /// a remover who is no moderator; `RefusedId` naming an id not live in the thread (nothing
    /// is deleted).
    pub async fn remove_many(
        &self,
        thread: ThreadId,
        ids: BulkIds,
        removal: Removal,
    ) -> Result<Vec<Tombstone>> {
        if !removal.is_moderator() {
            return Err(Error::Forbidden);
        }
        let request = BulkDeleteRequest {
            thread,
            ids,
            removal,
            at: self.clock.now(),
            participants: self.config.participants,
        };
        let deleted = self
            .store
            .call(Operation::DeleteMany, |s| s.delete_many(request))
            .await;
        let tombstones = self.unknown_outcome_as_commit(thread, deleted).await?;
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
            at: self.clock.now(),
            limits: self.config.reactions,
        };
        let reacted = self
            .store
            .call(Operation::React, |s| s.react(request))
            .await;
        self.after_reaction(thread, reacted).await
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
        let request = ClearRequest {
            thread,
            id,
            by: removal.by(),
            at: self.clock.now(),
        };
        let cleared = self
            .store
            .call(Operation::ClearReactions, |s| s.clear_reactions(request))
            .await;
        self.after_reaction(thread, cleared).await
    }

    /// After a reaction's write: a change is a commit like any (see
    /// [`MessageService::after_write`]); a repeat changed nothing.
    async fn after_reaction(&self, thread: ThreadId, reacted: Result<Reacted>) -> Result<Reacted> {
        let reacted = self.unknown_outcome_as_commit(thread, reacted).await?;
        if reacted.changed {
            self.after_write(thread, reacted.message.rev).await;
        }
        Ok(reacted)
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
        let request = MarkReadRequest {
            thread,
            user,
            mark,
            max: self.config.unread_max,
        };
        self.store
            .call(Operation::MarkRead, |s| s.mark_read(request))
            .await
    }

    /// Follows (or stops following) the conversation of a live root; private to the user like
    /// a read position: no number, no event. The user's state in it.
    pub async fn follow(
        &self,
        thread: ThreadId,
        root: MessageId,
        user: UserId,
        follow: bool,
    ) -> Result<Conversation> {
        let request = FollowRequest {
            thread,
            root,
            user,
            follow,
            max: self.config.unread_max,
        };
        self.store
            .call(Operation::Follow, |s| s.follow(request))
            .await
    }

    /// Moves the user's position in a live root's replies forward to `seq`; their state after.
    pub async fn mark_replies_read(
        &self,
        thread: ThreadId,
        root: MessageId,
        user: UserId,
        seq: i64,
    ) -> Result<Conversation> {
        let request = RepliesReadRequest {
            thread,
            root,
            user,
            seq,
            max: self.config.unread_max,
        };
        self.store
            .call(Operation::RepliesRead, |s| s.mark_replies_read(request))
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
    async fn unknown_outcome_as_commit<T>(&self, thread: ThreadId, result: Result<T>) -> Result<T> {
        if matches!(result, Err(Error::Unavailable { .. })) {
            self.after_write(thread, 0).await;
        }
        result
    }
}
