//! Message history for chat systems: storage, keyset pagination, a cache of each thread's
//! newest page, and event delivery through a transactional outbox.
//!
//! Start with [`MessageService`]; it is the only type most applications need.
//!
//! # Layout
//!
//! - `message`: the model (`Message`, `MessageKind`, ids, validated input, the clock).
//! - `cursor`: the opaque cursor, a `seq` (or, from version 1, a message id).
//! - `page`: page sizes, page queries by `seq`, pages with an exact `has_more` and `rev`.
//! - `sync`: the per-thread sequence: changes, the changes feed, the window around a message.
//! - `error`: the one error type.
//! - `locks`: the one policy for std locks (poisoning is cleared).
//! - `event`: the event types below storage and events (`OutboxEvent`, `StoredEvent`).
//! - `service`: orders store → cache → events for every operation.
//! - `newest`: the newest page through the cache (shared loads, reused encodings,
//!   unconfirmed invalidations, counters).
//! - `storage`: the `MessageStore` trait and the `Outbox` trait beside it; `memory` and
//!   `postgres` backends implement both.
//! - `cache`: the `PageCache` trait; `memory` and `redis` backends, and a circuit `breaker`.
//! - `events`: event encoding (`codec`), the outbox relay (`outbox`), publishers (`memory`,
//!   `amqp`).
//! - `live`: changes pushed to followers as they commit (`Hub`, `Follower`), across replicas
//!   through a transport (`postgres`).
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod cursor;
mod error;
mod event;
mod locks;
mod message;
mod newest;
mod page;
mod service;
mod sync;

pub mod cache;
pub mod events;
pub mod live;
pub mod storage;
#[cfg(feature = "testing")]
pub mod testing;

pub use cursor::Cursor;
pub use error::{BoxError, Error, Result};
pub use message::{
    Clock, IdempotencyKey, Limits, Message, MessageId, MessageKind, MessagePatch, NewMessage,
    RequestFingerprint, ThreadId, Timestamp, Tombstone, UserId,
};
pub use page::{Page, PageJson, PageQuery, PageSize, write_page_json};
pub use service::{MessageService, ServiceConfig};
pub use storage::Created;
pub use sync::{Around, Change, Changes, ChangesLimit, parse_position};
