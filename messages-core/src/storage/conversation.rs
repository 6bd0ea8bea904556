//! Reply conversations as users follow them: [`ConversationStore`].

use async_trait::async_trait;

use crate::conversation::{Conversation, FollowRequest, Inbox, InboxCursor, RepliesReadRequest};
use crate::error::Result;
use crate::message::UserId;
use crate::page::PageSize;
use crate::read::{ThreadList, UnreadMax};

/// Who follows which root's conversation, their read positions in it, and their inbox.
/// Private to each user: nothing here takes a number or leaves an event. (A reply follows
/// its author and its root's author in the create's own transaction: see `CreateStore`.)
#[async_trait]
pub trait ConversationStore: Send + Sync + 'static {
    /// Follows (or stops following) the live root `request.root`; the user's state in its
    /// conversation. A root the thread does not hold live (or a reply) is `Error::NotFound`.
    async fn follow(&self, request: FollowRequest) -> Result<Conversation>;

    /// Moves the user's position in a live root's replies forward to `request.seq` (never past
    /// the thread's head, never back); their state after it. `Error::NotFound` as for
    /// [`ConversationStore::follow`].
    async fn mark_replies_read(&self, request: RepliesReadRequest) -> Result<Conversation>;

    /// The conversations `user` follows in `threads` whose root is live and has live replies,
    /// the most recent reply first (then by thread and root, descending), after `after`, read
    /// with `size + 1` so `has_more` is exact; each with its unread replies up to `max`.
    async fn inbox(
        &self,
        user: UserId,
        threads: &ThreadList,
        after: Option<InboxCursor>,
        size: PageSize,
        max: UnreadMax,
    ) -> Result<Inbox>;
}
