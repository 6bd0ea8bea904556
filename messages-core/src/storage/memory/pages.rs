//! Reads of messages in memory, under the store's read lock (one snapshot).

use async_trait::async_trait;

use super::{Entry, MemoryStore};
use crate::changes::{Changes, ChangesLimit};
use crate::error::{Error, Result};
use crate::history::History;
use crate::locks;
use crate::message::{Message, MessageId, ThreadId};
use crate::page::{Around, Page, PageQuery, PageSize};
use crate::storage::PageStore;

#[async_trait]
impl PageStore for MemoryStore {
    async fn get(&self, thread: ThreadId, id: MessageId) -> Result<Message> {
        let threads = locks::read(&self.threads);
        let thread = threads.get(&thread).ok_or(Error::NotFound)?;
        Ok(thread.live_entry(id)?.message.clone())
    }

    async fn page(&self, thread: ThreadId, query: PageQuery, size: PageSize) -> Result<Page> {
        let threads = locks::read(&self.threads);
        let Some(thread) = threads.get(&thread) else {
            return Ok(Page::from_overfetch(Vec::new(), size, 0));
        };
        let take = size.get() + 1;
        let seqs: Vec<&i64> = match query {
            PageQuery::Newest => thread.live.iter().rev().take(take).collect(),
            PageQuery::Before(s) => thread.live.range(..s).rev().take(take).collect(),
            PageQuery::After(s) => thread
                .live
                .range(s.saturating_add(1)..)
                .take(take)
                .collect(),
        };
        let rows = seqs
            .into_iter()
            .filter_map(|seq| thread.message_at(seq))
            .collect();
        Ok(Page::from_overfetch(rows, size, thread.head))
    }

    async fn replies(
        &self,
        thread: ThreadId,
        root: MessageId,
        after: i64,
        size: PageSize,
    ) -> Result<Page> {
        let threads = locks::read(&self.threads);
        let thread = threads.get(&thread).ok_or(Error::NotFound)?;
        if thread.live_entry(root)?.message.reply_to.is_some() {
            return Err(Error::NotFound);
        }
        let rows = thread
            .replies
            .get(&root)
            .into_iter()
            .flat_map(|seqs| seqs.range(after.saturating_add(1)..))
            .take(size.get() + 1)
            .filter_map(|seq| thread.message_at(seq))
            .collect();
        Ok(Page::from_overfetch(rows, size, thread.head))
    }

    async fn around(&self, thread: ThreadId, id: MessageId, half: usize) -> Result<Around> {
        let threads = locks::read(&self.threads);
        let thread = threads.get(&thread).ok_or(Error::NotFound)?;
        let anchor = *thread.by_id.get(&id).ok_or(Error::NotFound)?;
        let before = thread
            .live
            .range(..anchor)
            .rev()
            .take(half + 1)
            .filter_map(|seq| thread.message_at(seq))
            .collect();
        let after = thread
            .live
            .range(anchor.saturating_add(1)..)
            .take(half + 1)
            .filter_map(|seq| thread.message_at(seq))
            .collect();
        let anchor = thread
            .live
            .contains(&anchor)
            .then(|| thread.message_at(&anchor))
            .flatten();
        Ok(Around::from_overfetch(
            before,
            anchor,
            after,
            half,
            thread.head,
        ))
    }

    async fn changes(&self, thread: ThreadId, since: i64, limit: ChangesLimit) -> Result<Changes> {
        let threads = locks::read(&self.threads);
        let Some(thread) = threads.get(&thread) else {
            return Ok(Changes::from_overfetch(Vec::new(), since, 0, limit.get()));
        };
        let rows = thread
            .by_rev
            .range(since.saturating_add(1)..)
            .take(limit.get() + 1)
            .filter_map(|(_, seq)| thread.by_seq.get(seq).map(Entry::change))
            .collect();
        Ok(Changes::from_overfetch(
            rows,
            since,
            thread.head,
            limit.get(),
        ))
    }

    async fn locate(&self, thread: ThreadId, id: MessageId) -> Result<Option<i64>> {
        let threads = locks::read(&self.threads);
        Ok(threads.get(&thread).and_then(|t| t.by_id.get(&id).copied()))
    }

    async fn head(&self, thread: ThreadId) -> Result<i64> {
        Ok(locks::read(&self.threads)
            .get(&thread)
            .map_or(0, |t| t.head))
    }

    async fn history(&self, thread: ThreadId, id: MessageId) -> Result<History> {
        let threads = locks::read(&self.threads);
        let thread = threads.get(&thread).ok_or(Error::NotFound)?;
        let entry = thread.live_entry(id)?;
        Ok(History::new(&entry.message, entry.replaced.clone()))
    }
}
