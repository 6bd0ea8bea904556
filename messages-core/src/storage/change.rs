//! Changing messages: [`ChangeStore`], edits and removals.

use async_trait::async_trait;

use crate::error::Result;
use crate::message::{Message, Tombstone};
use crate::write::{BulkDeleteRequest, DeleteRequest, EditRequest};

/// Edits and removals, each a change numbered in the thread's sequence with its event.
#[async_trait]
pub trait ChangeStore: Send + Sync + 'static {
    /// Edits a live message as `rules::edit` decides (its author only), giving the edit the
    /// thread's next number as the message's `rev`; keeps the version it replaced for
    /// [`PageStore::history`](super::PageStore::history) and stores the edit's event in the
    /// same transaction. `NotFound` for a missing, deleted or other-thread message;
    /// `Forbidden` for another user's.
    async fn edit(&self, request: EditRequest) -> Result<Message>;

    /// Soft-deletes a live message as `rules::remove` decides (its author, or a moderator),
    /// giving the deletion the thread's next number and storing its event in the same
    /// transaction; returns the tombstone. Its edit history and reactions go with it.
    /// `NotFound` for a missing, deleted or other-thread message; `Forbidden` for another
    /// user's when the remover is no moderator.
    async fn delete(&self, request: DeleteRequest) -> Result<Tombstone>;

    /// Removes every message of the request, in the order given, as
    /// [`ChangeStore::delete`] would, each deletion numbered and evented of its own, all in
    /// one transaction or none (`rules::may_remove_all`: `RefusedId` naming the first id that
    /// is not a live message of the thread, then `Forbidden`). The tombstones, in that order.
    async fn delete_many(&self, request: BulkDeleteRequest) -> Result<Vec<Tombstone>>;
}
