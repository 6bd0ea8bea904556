//! Readers' positions: [`ReadStateStore`]. Private to each reader: no number of the sequence,
//! no event.

use async_trait::async_trait;

use crate::error::Result;
use crate::message::UserId;
use crate::newest::{NewestCursor, NewestPage};
use crate::page::PageSize;
use crate::read::{ReadState, ThreadList, UnreadMax};
use crate::write::MarkReadRequest;

/// Where each user stopped reading each thread, and what is unread after it.
#[async_trait]
pub trait ReadStateStore: Send + Sync + 'static {
    /// Moves the reader's position as the request's mark says (see
    /// [`ReadMark`](crate::ReadMark); a position past the thread's head is clamped to it) and
    /// answers the state it leaves, unread counted up to the request's `max`.
    async fn mark_read(&self, request: MarkReadRequest) -> Result<ReadState>;

    /// `user`'s read state in each of `threads`, in the order given, each position and count
    /// from one snapshot: position 0 in a thread never read, unread the live messages after
    /// it that others wrote, counted up to `max`.
    async fn read_states(
        &self,
        user: UserId,
        threads: &ThreadList,
        max: UnreadMax,
    ) -> Result<Vec<ReadState>>;

    /// The live messages of `threads` that others wrote and that name `user` or address the
    /// room, newest first (see [`NewestCursor::key`]), after `after`, `size` of them with
    /// `has_more` exact; with `unread_only`, only those after the user's position in their
    /// thread.
    async fn mentions(
        &self,
        user: UserId,
        threads: &ThreadList,
        after: Option<NewestCursor>,
        size: PageSize,
        unread_only: bool,
    ) -> Result<NewestPage>;
}
