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
        let mut entries = Vec::new();
        for &thread_id in threads.as_slice() {
            let Some(thread) = all.get(&thread_id) else {
                continue;
            };
            for (&(root, follower), follow) in &thread.follows {
                if follower != user || !follow.following {
                    continue;
                }
                let Ok(entry) = thread.live_root(root) else {
                    continue;
                };
                let Some(key) = InboxCursor::after(&entry.message).map(|c| c.key()) else {
                    continue;
                };
                if after.is_some_and(|a| key >= a.key()) {
                    continue;
                }
                entries.push((key, thread_id, entry.message.clone()));
            }
        }
        // The same thread named twice lists its conversations once.
        entries.sort_by_key(|e| std::cmp::Reverse(e.0));
        entries.dedup_by(|a, b| a.0 == b.0);
        entries.truncate(size.get() + 1);
        let items = entries
            .into_iter()
            .filter_map(|(_, thread_id, root)| {
                let thread = all.get(&thread_id)?;
                let conversation = thread.conversation(thread_id, root.id, user, max);
                Some(InboxEntry { root, conversation })
            })
            .collect();
        Ok(Inbox::from_overfetch(items, size.get()))
    }
}
