//! Readers' positions in memory.

use async_trait::async_trait;

use super::MemoryStore;
use crate::error::Result;
use crate::locks;
use crate::message::UserId;
use crate::newest::{NewestCursor, NewestPage};
use crate::page::PageSize;
use crate::read::{ReadState, ThreadList, UnreadMax};
use crate::storage::ReadStateStore;
use crate::write::MarkReadRequest;

#[async_trait]
impl ReadStateStore for MemoryStore {
    async fn mark_read(&self, request: MarkReadRequest) -> Result<ReadState> {
        let MarkReadRequest {
            thread,
            user,
            mark,
            max,
        } = request;
        let mut threads = locks::write(&self.threads);
        let entry = threads.entry(thread).or_default();
        let current = entry.read.get(&user).copied().unwrap_or(0);
        let moved = mark.apply(current, entry.head);
        entry.read.insert(user, moved);
        Ok(entry.read_state(thread, user, max))
    }

    async fn read_states(
        &self,
        user: UserId,
        threads: &ThreadList,
        max: UnreadMax,
    ) -> Result<Vec<ReadState>> {
        let stored = locks::read(&self.threads);
        Ok(threads
            .as_slice()
            .iter()
            .map(|&thread| match stored.get(&thread) {
                Some(entry) => entry.read_state(thread, user, max),
                None => ReadState::from_unread(thread, 0, 0, None, 0, max),
            })
            .collect())
    }

    async fn mentions(
        &self,
        user: UserId,
        threads: &ThreadList,
        after: Option<NewestCursor>,
        size: PageSize,
        unread_only: bool,
    ) -> Result<NewestPage> {
        let stored = locks::read(&self.threads);
        let mut found = Vec::new();
        for thread in threads.as_slice() {
            let Some(entry) = stored.get(thread) else {
                continue;
            };
            let from = match unread_only {
                true => entry.read.get(&user).copied().unwrap_or(0),
                false => 0,
            };
            found.extend(
                entry
                    .live
                    .range(from + 1..)
                    .filter_map(|seq| entry.by_seq.get(seq))
                    .map(|e| &e.message)
                    .filter(|m| m.user_id != user)
                    .filter(|m| m.mentions.as_ref().is_some_and(|x| x.address(user)))
                    .cloned(),
            );
        }
        Ok(NewestPage::from_candidates(found, after, size.get()))
    }
}
