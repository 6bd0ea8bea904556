//! Durable message history: the store's traits, one per concern, and the backends that
//! implement them (`memory`, `sqlite`, `postgres`), each split by the same concerns into
//! files of its own.
//!
//! A store writes a change of a message, the thread's next number and the change's event
//! atomically, and keeps the event in its outbox until the relay has delivered it. Numbers
//! become visible in the order they were taken. What a change may do and what it announces is
//! decided by the core's rules (`rules`, `reaction`), which every store calls; a store's code
//! is its statements and the transaction around them. The store knows nothing of caches or
//! brokers.
//!
//! One value is the whole store: [`MessageStore`] gathers the concerns, and the service and
//! the relay take the same `Arc<dyn MessageStore>`.
//!
//! - `create`: [`CreateStore`], new messages and idempotent retries.
//! - `change`: [`ChangeStore`], edits, removals and bulk removals.
//! - `react`: [`ReactionStore`], reactions and who holds them.
//! - `pages`: [`PageStore`], reads of messages, pages, the changes feed and edit history.
//! - `read_state`: [`ReadStateStore`], readers' positions and unread counts.
//! - `conversation`: [`ConversationStore`], who follows which reply conversation, their
//!   positions in it and their inbox.
//! - `search`: [`SearchStore`], the messages a search finds.
//! - `outbox`: [`Outbox`], the events writes leave, for the relay.
//! - `observed`: [`ObservedStore`], the store as the service calls it, each call reported to
//!   an observer (the server's metrics).

use async_trait::async_trait;

use crate::error::Result;

mod change;
mod conversation;
mod create;
mod observed;
mod outbox;
mod pages;
mod react;
mod read_state;
mod search;

pub mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;

pub use change::ChangeStore;
pub use conversation::ConversationStore;
pub use create::CreateStore;
pub use observed::{ObservedStore, Operation, Outcome, StoreObserver};
#[cfg(feature = "postgres")]
pub(crate) use outbox::close_payload;
pub use outbox::{Outbox, OutboxEvent, StoredEvent};
pub use pages::PageStore;
pub use react::ReactionStore;
pub use read_state::ReadStateStore;
pub use search::SearchStore;

/// A whole store: every concern, one value. Every method names the thread (or threads), so a
/// store can be distributed by it.
#[async_trait]
pub trait MessageStore:
    CreateStore
    + ChangeStore
    + ReactionStore
    + PageStore
    + ReadStateStore
    + ConversationStore
    + SearchStore
    + Outbox
{
    /// Whether the store can answer now (for readiness).
    async fn ping(&self) -> Result<()>;

    /// Whether other processes may write to this store too (a database server), so that a
    /// cache in this process cannot learn of every write by itself. False unless a store
    /// says otherwise: a store in memory or in a file has one process.
    fn is_shared(&self) -> bool {
        false
    }
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
