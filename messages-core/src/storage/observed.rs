//! The store as the service calls it: every call names its [`Operation`], and when an
//! observer is set (the server's metrics), how long it took and how it ended are reported.
//!
//! A decorator store would forward each method by hand, one more place to touch for every new
//! operation; a call through [`ObservedStore::call`] is timed whatever the operation is.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::MessageStore;
use crate::error::{Error, Result};

/// A store operation, as observers label it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    /// [`CreateStore::create`](super::CreateStore::create).
    Create,
    /// [`PageStore::get`](super::PageStore::get).
    Get,
    /// [`ChangeStore::edit`](super::ChangeStore::edit).
    Edit,
    /// [`ChangeStore::delete`](super::ChangeStore::delete).
    Delete,
    /// [`PageStore::page`](super::PageStore::page).
    Page,
    /// [`MessageStore::ping`](super::MessageStore::ping).
    Ping,
    /// [`PageStore::around`](super::PageStore::around).
    Around,
    /// [`PageStore::changes`](super::PageStore::changes).
    Changes,
    /// [`PageStore::locate`](super::PageStore::locate).
    Locate,
    /// [`PageStore::head`](super::PageStore::head).
    Head,
    /// [`ReactionStore::react`](super::ReactionStore::react).
    React,
    /// [`ReactionStore::reactors`](super::ReactionStore::reactors).
    Reactors,
    /// [`PageStore::history`](super::PageStore::history).
    History,
    /// [`ReadStateStore::mark_read`](super::ReadStateStore::mark_read).
    MarkRead,
    /// [`ReadStateStore::read_states`](super::ReadStateStore::read_states).
    ReadStates,
    /// [`ChangeStore::delete_many`](super::ChangeStore::delete_many).
    DeleteMany,
    /// [`ReactionStore::clear_reactions`](super::ReactionStore::clear_reactions).
    ClearReactions,
    /// [`PageStore::replies`](super::PageStore::replies).
    Replies,
    /// [`ConversationStore::follow`](super::ConversationStore::follow).
    Follow,
    /// [`ConversationStore::mark_replies_read`](super::ConversationStore::mark_replies_read).
    RepliesRead,
    /// [`ConversationStore::inbox`](super::ConversationStore::inbox).
    Inbox,
    /// [`ReadStateStore::mentions`](super::ReadStateStore::mentions).
    Mentions,
    /// [`SearchStore::search`](super::SearchStore::search).
    Search,
}

impl Operation {
    /// Every operation, in declaration order: `ALL[op as usize] == op`.
    pub const ALL: [Operation; 23] = [
        Operation::Create,
        Operation::Get,
        Operation::Edit,
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
        Operation::Replies,
        Operation::Follow,
        Operation::RepliesRead,
        Operation::Inbox,
        Operation::Mentions,
        Operation::Search,
    ];

    /// The operation's label in metrics (an edit keeps the label `update` it has always had).
    pub fn label(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Get => "get",
            Operation::Edit => "update",
            Operation::Delete => "delete",
            Operation::Page => "page",
            Operation::Ping => "ping",
            Operation::Around => "around",
            Operation::Changes => "changes",
            Operation::Locate => "locate",
            Operation::Head => "head",
            Operation::React => "react",
            Operation::Reactors => "reactors",
            Operation::History => "history",
            Operation::MarkRead => "mark_read",
            Operation::ReadStates => "read_states",
            Operation::DeleteMany => "delete_many",
            Operation::ClearReactions => "clear_reactions",
            Operation::Replies => "replies",
            Operation::Follow => "follow",
            Operation::RepliesRead => "replies_read",
            Operation::Inbox => "inbox",
            Operation::Mentions => "mentions",
            Operation::Search => "search",
        }
    }
}

/// How a store call ended, as observers label it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
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
    /// Every outcome, in declaration order.
    pub const ALL: [Outcome; 4] = [
        Outcome::Ok,
        Outcome::Refused,
        Outcome::Unavailable,
        Outcome::Error,
    ];

    /// How `result` ended.
    pub fn of<T>(result: &Result<T>) -> Outcome {
        match result {
            Ok(_) => Outcome::Ok,
            Err(Error::Unavailable { .. }) => Outcome::Unavailable,
            Err(Error::Internal { .. }) => Outcome::Error,
            Err(_) => Outcome::Refused,
        }
    }

    /// The outcome's label in metrics.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Refused => "refused",
            Outcome::Unavailable => "unavailable",
            Outcome::Error => "error",
        }
    }
}

/// Told of every store call the service makes: the server records them as a histogram.
pub trait StoreObserver: Send + Sync + 'static {
    /// `operation` ended as `outcome` after `elapsed`.
    fn observe(&self, operation: Operation, outcome: Outcome, elapsed: Duration);
}

/// The store and the observer every call reports to. Cheap to clone.
#[derive(Clone)]
pub struct ObservedStore {
    store: Arc<dyn MessageStore>,
    observer: Option<Arc<dyn StoreObserver>>,
}

impl ObservedStore {
    /// `store`, its calls reported to `observer` when there is one.
    pub fn new(store: Arc<dyn MessageStore>, observer: Option<Arc<dyn StoreObserver>>) -> Self {
        ObservedStore { store, observer }
    }

    /// Runs `call` on the store as `operation`, reporting it. Without an observer the clock is
    /// not read.
    pub async fn call<'a, T, F, Fut>(&'a self, operation: Operation, call: F) -> Result<T>
    where
        F: FnOnce(&'a dyn MessageStore) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let Some(observer) = &self.observer else {
            return call(self.store.as_ref()).await;
        };
        let started = Instant::now();
        let result = call(self.store.as_ref()).await;
        observer.observe(operation, Outcome::of(&result), started.elapsed());
        result
    }

    /// The store itself, for what is not observed (the relay's outbox, `is_shared`).
    pub fn store(&self) -> &Arc<dyn MessageStore> {
        &self.store
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_listed_in_declaration_order_with_distinct_labels() {
        let mut labels = std::collections::HashSet::new();
        for (i, operation) in Operation::ALL.iter().enumerate() {
            assert_eq!(*operation as usize, i, "{operation:?}");
            assert!(labels.insert(operation.label()), "{operation:?}");
        }
        for (i, outcome) in Outcome::ALL.iter().enumerate() {
            assert_eq!(*outcome as usize, i, "{outcome:?}");
        }
    }
}
