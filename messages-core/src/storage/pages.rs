//! Reading messages: [`PageStore`], one message, pages, the changes feed and edit history.

use async_trait::async_trait;

use crate::changes::{Changes, ChangesLimit};
use crate::error::Result;
use crate::history::History;
use crate::message::{Message, MessageId, ThreadId};
use crate::page::{Around, Page, PageQuery, PageSize};

/// Reads of a thread, each from one snapshot with the thread's position.
#[async_trait]
pub trait PageStore: Send + Sync + 'static {
    /// A live message of the thread, or `Error::NotFound`.
    async fn get(&self, thread: ThreadId, id: MessageId) -> Result<Message>;

    /// A page of live messages by `seq`, read with `size + 1` rows so `has_more` is exact,
    /// with the thread's position read in the same snapshot.
    async fn page(&self, thread: ThreadId, query: PageQuery, size: PageSize) -> Result<Page>;

    /// The live replies of the root `root` with a `seq` above `after`, oldest first (a
    /// conversation reads down), read with `size + 1` rows so `has_more` is exact, with the
    /// thread's position read in the same snapshot. A root not live in the thread (unknown,
    /// deleted, or a reply itself) is `Error::NotFound`.
    async fn replies(
        &self,
        thread: ThreadId,
        root: MessageId,
        after: i64,
        size: PageSize,
    ) -> Result<Page>;

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

    /// A live message's versions, oldest first, the current one last. `NotFound` as for
    /// [`PageStore::get`]: a deleted message has no history.
    async fn history(&self, thread: ThreadId, id: MessageId) -> Result<History>;
}
