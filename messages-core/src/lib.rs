//! Message history for chat systems: storage, keyset pagination, a cache of each thread's
//! newest page, a per-thread sequence in commit order, live delivery, and event delivery
//! through a transactional outbox. Stores: in memory, SQLite (a file) and PostgreSQL.
//!
//! Start with [`MessageService`]; it is the only type most applications need.
//!
//! # Start
//!
//! A chat kept in a SQLite file: open the store (it creates the file), apply its migrations,
//! build the service over it, and run the relay it hands back (it delivers the event each
//! write leaves in the store; until it runs, the events stay there). Every operation of the
//! HTTP API is a method of the service.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use messages_core::storage::Schema;
//! use messages_core::storage::sqlite::{SqliteConfig, SqliteStore};
//! use messages_core::{MessageKind, MessageService, NewMessage, PageQuery, PageSize, ThreadId, UserId};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> messages_core::Result<()> {
//! # let dir = std::env::temp_dir().join(format!("messages-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir).expect("a temporary directory");
//! let store = SqliteStore::open(&SqliteConfig::new(dir.join("chat.db"))).await?;
//! store.migrate().await?;
//! let (service, relay) = MessageService::builder(Arc::new(store.clone())).build();
//! let relay = relay.spawn();
//!
//! let room = ThreadId::parse("0193a1a0-0000-7000-8000-0000000000e1")?;
//! let ada = UserId::parse("0193a1a0-0000-7000-8000-00000000a0da")?;
//! let hello = NewMessage::new(MessageKind::Text, "hello".into(), vec![], service.limits())?;
//! let created = service.create(room, ada, hello, None).await?;
//!
//! let page = service.page(room, PageQuery::Newest, PageSize::DEFAULT).await?;
//! assert_eq!(page.items[0].id, created.message().id);
//! assert_eq!(page.rev, 1); // the thread's position: follow `changes(room, 1, ..)` from here
//!
//! // At the end: deliver what is pending, then stop the writer and checkpoint the file.
//! relay.stop(Duration::from_secs(5)).await;
//! store.close().await?;
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok(())
//! # }
//! ```
//!
//! The builder takes a cache (`cache::redis` across replicas; in process by default), a
//! publisher (`events::amqp` for RabbitMQ; the in-process sink by default) and settings. The
//! other stores (`storage::memory`, `storage::postgres`) are opened the same way;
//! `examples/sqlite_chat.rs` goes further (edits, the changes feed). The stores answer through
//! tokio's timers, so the runtime needs them (`enable_time`, or `enable_all`).
//!
//! # Layout
//!
//! - `message`: the model (`Message`, `MessageKind`, ids, validated input, the clock).
//! - `sequence`: the per-thread sequence, and how a client names a position in it.
//! - `cursor`: the opaque cursor, a `seq` (or, from version 1, a message id).
//! - `write`: the requests a store takes for each write (create, edit, delete, bulk delete,
//!   read position).
//! - `rules`: who may change a message and what an edit or a removal keeps and announces,
//!   decided once for every store.
//! - `reaction`: emoji, a message's reaction summary and the rule every store applies to it
//!   (`plan`), its requests, the page of reactors.
//! - `replies`: reply threads: a root's summary of its replies (`ReplySummary`) and the rules
//!   that change it when a reply comes or goes, decided once for every store.
//! - `removal`: who removes a message (its author, or a moderator) and why; what a store keeps
//!   of a deletion, and the tombstone made of it.
//! - `read`: read positions (`ReadMark`, `ReadState`) and the cap on unread counts.
//! - `conversation`: reply conversations as each user follows them: following, read
//!   positions in replies, unread replies, the inbox.
//! - `history`: the versions an edit replaced, and a message's versions as clients read them.
//! - `page`: page sizes, page queries by `seq`, pages with an exact `has_more` and `rev`, the
//!   window around a message.
//! - `changes`: the changes feed (`Change`, `Changes`, `ChangesLimit`) and the event types.
//! - `json`: the hand-written JSON of responses and events.
//! - `error`: the error type of every operation (`live::FollowError` adds what a stream can
//!   end with).
//! - `locks`: the one policy for std locks (poisoning is cleared).
//! - `service`: orders store → cache → events for every operation; its builder hands back the
//!   relay.
//! - `storage`: the store's traits, one per concern (`CreateStore`, `ChangeStore`,
//!   `ReactionStore`, `PageStore`, `ReadStateStore`, `Outbox`), gathered by `MessageStore`;
//!   `memory`, `sqlite` and `postgres` backends, each split by the same concerns.
//! - `cache`: the `PageCache` trait, the `Window` every cache keeps, the `newest` front the
//!   service reads through (shared loads, reused encodings, unconfirmed invalidations,
//!   counters); `memory` and `redis` backends, and a circuit `breaker`.
//! - `limit`: per-user write rate limits, a token bucket per user in this process (`memory`)
//!   or shared in Redis (`redis`), failing open behind the cache's breaker.
//! - `events`: event encoding (`codec`), the outbox relay (`outbox`), publishers (`memory`,
//!   `amqp`).
//! - `redis_server`: where Redis is (one node or a cluster) and the connection over either.
//! - `live`: changes pushed to followers as they commit (`Hub`, `Follower`), across replicas
//!   through a transport (`redis`: sharded pub/sub; `postgres`: `LISTEN`/`NOTIFY`).
//! - `search`: the search query a client types (words and quoted phrases) and the one rule
//!   every backend matches a message's text by.
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod changes;
mod conversation;
mod cursor;
mod error;
mod history;
mod json;
mod locks;
mod message;
mod newest;
mod page;
mod reaction;
mod read;
mod removal;
mod replies;
mod rules;
mod sequence;
mod service;
mod write;

pub mod cache;
pub mod events;
pub mod limit;
pub mod live;
#[cfg(feature = "redis")]
pub mod redis_server;
pub mod search;
pub mod storage;
#[cfg(feature = "testing")]
pub mod testing;

pub use changes::{Change, Changes, ChangesLimit};
pub use conversation::{
    Conversation, FollowRequest, Inbox, InboxCursor, InboxEntry, RepliesReadRequest, advance,
};
pub use cursor::Cursor;
pub use error::{BoxError, Error, Result};
pub use events::outbox::{Relay, RelayConfig, RelayHandle};
pub use history::{History, Replaced, Version};
pub use message::{
    Clock, Emoji, IdempotencyKey, Limits, Mentions, Message, MessageId, MessageKind, MessagePatch,
    NewMessage, Reaction, ReplySummary, RequestFingerprint, ThreadId, Timestamp, Tombstone, UserId,
};
pub use newest::{NewestCursor, NewestPage};
pub use page::{Around, Page, PageJson, PageQuery, PageSize};
pub use reaction::{
    ClearRequest, Reacted, ReactionChange, ReactionLimits, ReactionRequest, Reactors,
    ReactorsLimit, summary_from_json, summary_to_json,
};
pub use read::{ReadMark, ReadState, ThreadList, UnreadMax, states_to_json};
pub use removal::{Deletion, REASON_MAX_CHARS, Removal};
pub use replies::{
    LiveReply, Participants, REPLIES_UPDATED, RepliesBody, RepliesChanged, after_reply,
    participants_from_text, participants_to_text, recount, renumber_root, root_of,
};
pub use sequence::parse_position;
pub use service::{MessageService, ServiceBuilder, ServiceConfig};
pub use write::{
    BulkDeleteRequest, BulkIds, CreateRequest, Created, DeleteRequest, EditRequest, Idempotency,
    MarkReadRequest,
};
