//! The service's reads: pages (the newest from the cache), one message, the changes feed, who
//! reacted, edit history, read states, readiness.

use super::MessageService;
use crate::changes::{Changes, ChangesLimit};
use crate::conversation::{Inbox, InboxCursor};
use crate::cursor::Cursor;
use crate::error::{Error, Result};
use crate::history::History;
use crate::message::{Emoji, Message, MessageId, ThreadId, UserId};
use crate::newest::{NewestCursor, NewestPage};
use crate::page::{Page, PageJson, PageQuery, PageSize};
use crate::reaction::{Reactors, ReactorsLimit};
use crate::read::{ReadState, ThreadList};
use crate::storage::Operation;

impl MessageService {
    /// Who reacted to a live message with `emoji`, by user id after `after`.
    pub async fn reactors(
        &self,
        thread: ThreadId,
        id: MessageId,
        emoji: &Emoji,
        after: Option<UserId>,
        limit: ReactorsLimit,
    ) -> Result<Reactors> {
        self.store
            .call(Operation::Reactors, |s| {
                s.reactors(thread, id, emoji, after, limit)
            })
            .await
    }

    /// A live message's versions, oldest first, the current one last.
    pub async fn history(&self, thread: ThreadId, id: MessageId) -> Result<History> {
        self.store
            .call(Operation::History, |s| s.history(thread, id))
            .await
    }

    /// `user`'s read state in each of `threads`, in that order.
    pub async fn read_states(&self, user: UserId, threads: &ThreadList) -> Result<Vec<ReadState>> {
        let max = self.config.unread_max;
        self.store
            .call(Operation::ReadStates, |s| s.read_states(user, threads, max))
            .await
    }

    /// One live message.
    pub async fn get(&self, thread: ThreadId, id: MessageId) -> Result<Message> {
        self.store.call(Operation::Get, |s| s.get(thread, id)).await
    }

    /// A page as typed messages, read from the store.
    pub async fn page(&self, thread: ThreadId, query: PageQuery, size: PageSize) -> Result<Page> {
        self.store
            .call(Operation::Page, |s| s.page(thread, query, size))
            .await
    }

    /// The live replies of the live root `root` after `after` (a `seq`, 0 for the first),
    /// oldest first, with the thread's position. `Error::NotFound` for a root the thread does
    /// not hold live (a reply is no root).
    pub async fn replies(
        &self,
        thread: ThreadId,
        root: MessageId,
        after: i64,
        size: PageSize,
    ) -> Result<Page> {
        self.store
            .call(Operation::Replies, |s| s.replies(thread, root, after, size))
            .await
    }

    /// The conversations `user` follows in `threads` with live replies, the most recent reply
    /// first, after `after`; each with its unread replies.
    pub async fn inbox(
        &self,
        user: UserId,
        threads: &ThreadList,
        after: Option<InboxCursor>,
        size: PageSize,
    ) -> Result<Inbox> {
        let max = self.config.unread_max;
        self.store
            .call(Operation::Inbox, |s| {
                s.inbox(user, threads, after, size, max)
            })
            .await
    }

    /// The live messages of `threads` others wrote that name `user` or the room, newest
    /// first, after `after`; with `unread_only`, those after the user's position.
    pub async fn mentions(
        &self,
        user: UserId,
        threads: &ThreadList,
        after: Option<NewestCursor>,
        size: PageSize,
        unread_only: bool,
    ) -> Result<NewestPage> {
        self.store
            .call(Operation::Mentions, |s| {
                s.mentions(user, threads, after, size, unread_only)
            })
            .await
    }

    /// The messages a search finds (see [`crate::search`]): a page, newest first, and the
    /// position of each thread it reflects. Read from the store, never a cache, so an edit or
    /// a delete is in the next answer.
    pub async fn search(
        &self,
        query: &crate::search::SearchQuery,
    ) -> Result<crate::search::SearchPage> {
        self.store
            .call(Operation::Search, |s| s.search(query))
            .await
    }

    /// A page as response JSON. The newest page comes from the cache when it can; every
    /// other page is a keyset query on the store.
    pub async fn page_json(
        &self,
        thread: ThreadId,
        query: PageQuery,
        size: PageSize,
    ) -> Result<PageJson> {
        if query == PageQuery::Newest && self.newest.serves(size) {
            return self.newest.page_json(&self.store, thread, size).await;
        }
        Ok(PageJson::whole(
            self.page(thread, query, size).await?.to_json(),
        ))
    }

    /// The `seq` a cursor names: its own, or for a cursor of version 1, that of the message it
    /// names (`Error::InvalidCursor` when the thread has no such message).
    pub async fn resolve(&self, thread: ThreadId, cursor: Cursor) -> Result<i64> {
        match cursor {
            Cursor::Seq(seq) => Ok(seq),
            Cursor::Legacy(id) => self
                .store
                .call(Operation::Locate, |s| s.locate(thread, id))
                .await?
                .ok_or(Error::InvalidCursor),
        }
    }

    /// The messages around `id`: up to `size / 2` on each side, oldest first, as response
    /// JSON. `Error::NotFound` for an id the thread does not have.
    pub async fn around_json(
        &self,
        thread: ThreadId,
        id: MessageId,
        size: PageSize,
    ) -> Result<Vec<u8>> {
        let half = size.get() / 2;
        let around = self
            .store
            .call(Operation::Around, |s| s.around(thread, id, half))
            .await?;
        Ok(around.to_json())
    }

    /// The changes after `since`, in `rev` order.
    pub async fn changes(
        &self,
        thread: ThreadId,
        since: i64,
        limit: ChangesLimit,
    ) -> Result<Changes> {
        self.store
            .call(Operation::Changes, |s| s.changes(thread, since, limit))
            .await
    }

    /// The thread's position: the number of its latest change.
    pub async fn head(&self, thread: ThreadId) -> Result<i64> {
        self.store.call(Operation::Head, |s| s.head(thread)).await
    }

    /// Whether the store answers: the service can serve every request. A failing cache is
    /// not unreadiness (requests fall back to the store); see [`MessageService::cache_ready`].
    pub async fn ready(&self) -> Result<()> {
        self.store.call(Operation::Ping, |s| s.ping()).await
    }

    /// Whether the cache answers.
    pub async fn cache_ready(&self) -> Result<()> {
        self.newest.ping().await
    }
}
