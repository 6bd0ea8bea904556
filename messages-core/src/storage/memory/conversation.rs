//! Reply conversations in memory: following, positions in replies, the inbox.

use async_trait::async_trait;

use super::MemoryStore;
use crate::conversation::{
    self, Conversation, FollowRequest, Inbox, InboxCursor, InboxEntry, RepliesReadRequest,
};
use crate::error::{Error, Result};
use crate::locks;
use crate::message::UserId;
use crate::page::PageSize;
use crate::read::{ThreadList, UnreadMax};
use crate::storage::ConversationStore;

#[async_trait]
impl ConversationStore for MemoryStore {
    async fn follow(&self, request: FollowRequest) -> Result<Conversation> {
        let mut threads = locks::write(&self.threads);
        let thread = threads.get_mut(&request.thread).ok_or(Error::NotFound)?;
        thread.live_root(request.root)?;
        let follow = thread
            .follows
            .entry((request.root, request.user))
            .or_default();
        follow.following = request.follow;
        Ok(thread.conversation(request.thread, request.root, request.user, request.max))
    }

    async fn mark_replies_read(&self, request: RepliesReadRequest) -> Result<Conversation> {
        let mut threads = locks::write(&self.threads);
        let thread = threads.get_mut(&request.thread).ok_or(Error::NotFound)?;
        thread.live_root(request.root)?;
        let head = thread.head;
        let follow = thread
            .follows
            .entry((request.root, request.user))
            .or_default();
        follow.seq = conversation::advance(follow.seq, request.seq, head);
        Ok(thread.conversation(request.thread, request.root, request.user, request.max))
    }

    async fn inbox(
        &self,
        user: UserId,
        threads: &ThreadList,
        after: Option<InboxCursor>,
        size: PageSize,
        max: UnreadMax,
    ) -> Result<Inbox> {
        let all = locks::read(&self.threads);
        let mut followed = Vec::new();
        for &thread_id in threads.as_slice() {
            let Some(thread) = all.get(&thread_id) else {
                continue;
            };
            for (&(root, follower), follow) in &thread.follows {
                if follower == user
                    && follow.following
                    && let Ok(entry) = thread.live_root(root)
                {
                    followed.push(entry.message.clone());
                }
            }
        }
        let items = Inbox::page_roots(followed, after, size.get())
            .into_iter()
            .filter_map(|root| {
                let thread = all.get(&root.thread_id)?;
                let conversation = thread.conversation(root.thread_id, root.id, user, max);
                Some(InboxEntry { root, conversation })
            })
            .collect();
        Ok(Inbox::from_overfetch(items, size.get()))
    }
}
