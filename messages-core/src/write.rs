//! The writes a store takes, one request type each, made by the service (ids, times, who) and
//! handed to the store whole: the store decides nothing a rule of the core decides, and builds
//! each change's event with the rule that decides the change (see `rules`). A reaction's
//! requests are `reaction`'s, beside its rules.

use crate::error::{Error, Result};
use crate::message::{
    IdempotencyKey, Message, MessageId, MessagePatch, RequestFingerprint, ThreadId, Timestamp,
    UserId,
};
use crate::read::{ReadMark, UnreadMax};
use crate::removal::Removal;
use crate::replies::Participants;

/// A new message to store: made by the service (id, author, times), not yet numbered.
#[derive(Clone, Debug)]
pub struct CreateRequest {
    /// The message, its `seq` and `rev` still 0, its `root_id` for the store to find.
    pub message: Message,
    /// The client's idempotency key, when it sent one.
    pub idempotency: Option<Idempotency>,
    /// How many participants a root's summary names, when the message is a reply.
    pub participants: Participants,
}

/// An idempotency key and the fingerprint of the request that carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Idempotency {
    /// The client's key, scoped to the thread and the user.
    pub key: IdempotencyKey,
    /// Tells a retry (same fingerprint) from a different request reusing the key.
    pub fingerprint: RequestFingerprint,
}

/// What a create did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Created {
    /// A new message was stored.
    New(Message),
    /// A new reply was stored, and its live root's summary changed with a number after the
    /// reply's: the next one, or, for replies to it committed together, the one after them all.
    Reply {
        /// The reply.
        reply: Message,
        /// The root in its new state.
        root: Box<Message>,
    },
    /// The idempotency key was seen before with the same request: nothing was stored, and
    /// this is the message the first request created.
    Replayed(Message),
}

impl Created {
    /// The message, new or replayed.
    pub fn message(&self) -> &Message {
        match self {
            Created::New(m) | Created::Replayed(m) | Created::Reply { reply: m, .. } => m,
        }
    }

    /// The number of the last change the create made (the root's after a reply); `None`
    /// for a replay, which made none.
    pub fn last_rev(&self) -> Option<i64> {
        match self {
            Created::New(m) => Some(m.rev),
            Created::Reply { root, .. } => Some(root.rev),
            Created::Replayed(_) => None,
        }
    }
}

/// An edit of a message by `user`, who must be its author.
#[derive(Clone, Debug)]
pub struct EditRequest {
    /// The message's thread.
    pub thread: ThreadId,
    /// The message.
    pub id: MessageId,
    /// Who edits.
    pub user: UserId,
    /// What changes.
    pub patch: MessagePatch,
    /// When.
    pub at: Timestamp,
}

/// A removal of one message, by its author or a moderator.
#[derive(Clone, Debug)]
pub struct DeleteRequest {
    /// The message's thread.
    pub thread: ThreadId,
    /// The message.
    pub id: MessageId,
    /// Who removes it, and why.
    pub removal: Removal,
    /// When.
    pub at: Timestamp,
    /// How many participants a root's recounted summary names, when a reply goes.
    pub participants: Participants,
}

/// A moderator's removal of several messages of one thread at once: all of them or none.
#[derive(Clone, Debug)]
pub struct BulkDeleteRequest {
    /// The messages' thread.
    pub thread: ThreadId,
    /// The messages, in the order their deletions are numbered.
    pub ids: BulkIds,
    /// Who removes them, and why.
    pub removal: Removal,
    /// When.
    pub at: Timestamp,
    /// How many participants a root's recounted summary names, when replies go.
    pub participants: Participants,
}

/// The ids of a bulk delete: 1 to [`BulkIds::MAX`], each once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BulkIds(Vec<MessageId>);

impl BulkIds {
    /// The most messages one bulk delete removes.
    pub const MAX: usize = 100;

    /// The ids, checked: `Error::Invalid` (field `ids`) for none or more than
    /// [`BulkIds::MAX`], `Error::RefusedId` for an id named twice.
    pub fn new(ids: Vec<MessageId>) -> Result<Self> {
        if ids.is_empty() || ids.len() > Self::MAX {
            return Err(Error::invalid(
                "ids",
                format!("name 1 to {} messages", Self::MAX),
            ));
        }
        let mut seen = std::collections::HashSet::with_capacity(ids.len());
        if let Some(&id) = ids.iter().find(|id| !seen.insert(**id)) {
            return Err(Error::RefusedId {
                id: *id.as_uuid(),
                why: "is named twice",
            });
        }
        Ok(BulkIds(ids))
    }

    /// The ids, in the order given.
    pub fn as_slice(&self) -> &[MessageId] {
        &self.0
    }
}

/// A move of a reader's position; private to the reader, so it takes no number and leaves
/// no event.
#[derive(Clone, Copy, Debug)]
pub struct MarkReadRequest {
    /// The thread.
    pub thread: ThreadId,
    /// The reader.
    pub user: UserId,
    /// Where to.
    pub mark: ReadMark,
    /// How far the answer counts what is unread.
    pub max: UnreadMax,
}
