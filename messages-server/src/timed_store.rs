//! A store decorator that records how long each operation takes, as the histogram
//! `store_operation_duration_seconds` by `operation` and `outcome`.

use std::sync::Arc;
use std::time::Instant;

use messages_core::storage::{
    Created, DeleteEvent, Idempotency, MessageStore, OutboxEvent, ReactionEventBuilder, UpdateEvent,
};
use messages_core::{
    Around, Changes, ChangesLimit, Emoji, Error, History, Message, MessageId, MessagePatch, Page,
    PageQuery, PageSize, Reacted, ReactionRequest, Reactors, ReadMark, ReadState, Removal, Result,
    ThreadId, Timestamp, Tombstone, UnreadMax, UserId,
};

/// The store operations measured, each a value of the `operation` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Operation {
    Create,
    Get,
    Update,
    Delete,
    Page,
    Ping,
    Around,
    Changes,
    Locate,
    Head,
    React,
    Reactors,
    History,
    MarkRead,
    ReadStates,
    DeleteMany,
    ClearReactions,
}

impl Operation {
    const ALL: [Operation; 17] = [
        Operation::Create,
        Operation::Get,
        Operation::Update,
        Operation::Delete,
        Operation::Page,
        Operation::Ping,
        Operation::Around,
        Operation::Changes,
        Operation::Locate,
        Operation::Head,
        Operation::React,
        Operation::Reactors,
        Operation::History,
        Operation::MarkRead,
        Operation::ReadStates,
        Operation::DeleteMany,
        Operation::ClearReactions,
    ];

    fn label(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Get => "get",
            Operation::Update => "update",
            Operation::Delete => "delete",
            Operation::Page => "page",
            Operation::Ping => "ping",
            Operation::Around => "around",
            Operation::Changes => "changes",
            Operation::Locate => "locate",
            Operation::Head => "head",
            Operation::React => "react",
            Operation::MarkRead => "mark_read",
            Operation::ReadStates => "read_states",
            Operation::DeleteMany => "delete_many",
            Operation::ClearReactions => "clear_reactions",
            Operation::Reactors => "reactors",
            Operation::History => "history",
        }
    }
}

/// How an operation ended, each a value of the `outcome` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// Done.
    Ok,
    /// A client's error: not found, forbidden, invalid.
    Refused,
    /// The backend did not answer.
    Unavailable,
    /// An internal error.
    Error,
}

impl Outcome {
    const ALL: [Outcome; 4] = [
        Outcome::Ok,
        Outcome::Refused,
        Outcome::Unavailable,
        Outcome::Error,
    ];

    fn of<T>(result: &Result<T>) -> Outcome {
        match result {
            Ok(_) => Outcome::Ok,
            Err(Error::Unavailable { .. }) => Outcome::Unavailable,
            Err(Error::Internal { .. }) => Outcome::Error,
            Err(_) => Outcome::Refused,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Refused => "refused",
            Outcome::Unavailable => "unavailable",
            Outcome::Error => "error",
        }
    }
}

/// A store that times every operation of the store it wraps. The histogram of every
/// operation and outcome is registered once, here, so a call does not look one up by its
/// labels.
pub struct TimedStore {
    inner: Arc<dyn MessageStore>,
    /// By `operation as usize * Outcome::ALL.len() + outcome as usize`.
    histograms: Vec<metrics::Histogram>,
}

impl TimedStore {
    /// Wraps `inner`. Call after [`crate::metrics::install`], or the histograms record
    /// nowhere.
    pub fn new(inner: Arc<dyn MessageStore>) -> Self {
        let histograms = Operation::ALL
            .iter()
            .flat_map(|operation| {
                Outcome::ALL.iter().map(move |outcome| {
                    metrics::histogram!(
                        "store_operation_duration_seconds",
                        "operation" => operation.label(),
                        "outcome" => outcome.label()
                    )
                })
            })
            .collect();
        TimedStore { inner, histograms }
    }

    async fn timed<T>(
        &self,
        operation: Operation,
        f: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let started = Instant::now();
        let result = f.await;
        let index = operation as usize * Outcome::ALL.len() + Outcome::of(&result) as usize;
        if let Some(histogram) = self.histograms.get(index) {
            histogram.record(started.elapsed().as_secs_f64());
        }
        result
    }
}

#[async_trait::async_trait]
impl MessageStore for TimedStore {
    async fn create(
        &self,
        message: &Message,
        idempotency: Option<Idempotency<'_>>,
        event: OutboxEvent,
    ) -> Result<Created> {
        let created = self.inner.create(message, idempotency, event);
        self.timed(Operation::Create, created).await
    }

    async fn get(&self, thread: ThreadId, id: MessageId) -> Result<Message> {
        self.timed(Operation::Get, self.inner.get(thread, id)).await
    }

    async fn update(
        &self,
        thread: ThreadId,
        id: MessageId,
        user: UserId,
        patch: &MessagePatch,
        now: Timestamp,
        event: UpdateEvent,
    ) -> Result<Message> {
        let updated = self.inner.update(thread, id, user, patch, now, event);
        self.timed(Operation::Update, updated).await
    }

    async fn delete(
        &self,
        thread: ThreadId,
        id: MessageId,
        removal: &Removal,
        now: Timestamp,
        event: DeleteEvent,
    ) -> Result<Tombstone> {
        let deleted = self.inner.delete(thread, id, removal, now, event);
        self.timed(Operation::Delete, deleted).await
    }

    async fn delete_many(
        &self,
        thread: ThreadId,
        ids: &[MessageId],
        removal: &Removal,
        now: Timestamp,
        event: DeleteEvent,
    ) -> Result<Vec<Tombstone>> {
        let deleted = self.inner.delete_many(thread, ids, removal, now, event);
        self.timed(Operation::DeleteMany, deleted).await
    }

    async fn react(
        &self,
        request: ReactionRequest,
        event: ReactionEventBuilder,
    ) -> Result<Reacted> {
        let reacted = self.inner.react(request, event);
        self.timed(Operation::React, reacted).await
    }

    async fn clear_reactions(
        &self,
        thread: ThreadId,
        id: MessageId,
        event: OutboxEvent,
    ) -> Result<Reacted> {
        let cleared = self.inner.clear_reactions(thread, id, event);
        self.timed(Operation::ClearReactions, cleared).await
    }

    async fn reactors(
        &self,
        thread: ThreadId,
        id: MessageId,
        emoji: &Emoji,
        after: Option<UserId>,
        limit: usize,
    ) -> Result<Reactors> {
        let reactors = self.inner.reactors(thread, id, emoji, after, limit);
        self.timed(Operation::Reactors, reactors).await
    }

    async fn history(&self, thread: ThreadId, id: MessageId) -> Result<History> {
        self.timed(Operation::History, self.inner.history(thread, id))
            .await
    }

    async fn mark_read(
        &self,
        thread: ThreadId,
        user: UserId,
        mark: ReadMark,
        max: UnreadMax,
    ) -> Result<ReadState> {
        let marked = self.inner.mark_read(thread, user, mark, max);
        self.timed(Operation::MarkRead, marked).await
    }

    async fn read_states(
        &self,
        user: UserId,
        threads: &[ThreadId],
        max: UnreadMax,
    ) -> Result<Vec<ReadState>> {
        let states = self.inner.read_states(user, threads, max);
        self.timed(Operation::ReadStates, states).await
    }

    async fn page(&self, thread: ThreadId, query: PageQuery, size: PageSize) -> Result<Page> {
        let page = self.inner.page(thread, query, size);
        self.timed(Operation::Page, page).await
    }

    async fn around(&self, thread: ThreadId, id: MessageId, half: usize) -> Result<Around> {
        let around = self.inner.around(thread, id, half);
        self.timed(Operation::Around, around).await
    }

    async fn changes(&self, thread: ThreadId, since: i64, limit: ChangesLimit) -> Result<Changes> {
        let changes = self.inner.changes(thread, since, limit);
        self.timed(Operation::Changes, changes).await
    }

    async fn locate(&self, thread: ThreadId, id: MessageId) -> Result<Option<i64>> {
        self.timed(Operation::Locate, self.inner.locate(thread, id))
            .await
    }

    async fn head(&self, thread: ThreadId) -> Result<i64> {
        self.timed(Operation::Head, self.inner.head(thread)).await
    }

    async fn ping(&self) -> Result<()> {
        self.timed(Operation::Ping, self.inner.ping()).await
    }

    fn is_shared(&self) -> bool {
        self.inner.is_shared()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_and_outcome_has_its_own_histogram() {
        let mut seen = std::collections::HashSet::new();
        for operation in Operation::ALL {
            for outcome in Outcome::ALL {
                assert!(seen.insert(operation as usize * Outcome::ALL.len() + outcome as usize));
            }
        }
        assert_eq!(seen.len(), Operation::ALL.len() * Outcome::ALL.len());
        assert!(seen.iter().all(|&i| i < seen.len()));
    }
}
