//! The store's calls as the contract's cases write them: one line each, the request built
//! here from its parts.

use async_trait::async_trait;

use crate::error::Result;
use crate::message::{
    Emoji, IdempotencyKey, Message, MessageId, MessagePatch, RequestFingerprint, ThreadId,
    Timestamp, Tombstone, UserId,
};
use crate::reaction::{ClearRequest, Reacted, Reactors, ReactorsLimit};
use crate::read::{ReadMark, ReadState, ThreadList, UnreadMax};
use crate::removal::Removal;
use crate::replies::Participants;
use crate::storage::MessageStore;
use crate::write::{
    BulkDeleteRequest, BulkIds, CreateRequest, Created, DeleteRequest, EditRequest, Idempotency,
    MarkReadRequest,
};

/// An idempotency key and the fingerprint of the request that carries it, as a case writes it.
#[derive(Clone, Copy, Debug)]
pub struct Keyed<'a> {
    /// The key.
    pub key: &'a IdempotencyKey,
    /// The request's fingerprint.
    pub fingerprint: RequestFingerprint,
}

/// The store's calls, from their parts.
#[async_trait]
pub trait Calls {
    /// Creates `m`, with a key when given.
    async fn create_with(&self, m: &Message, key: Option<Keyed<'_>>) -> Result<Created>;
    /// Edits as `user`.
    async fn update_as(
        &self,
        thread: ThreadId,
        id: MessageId,
        user: UserId,
        patch: &MessagePatch,
        at: Timestamp,
    ) -> Result<Message>;
    /// Removes as `removal` says.
    async fn delete_as(
        &self,
        thread: ThreadId,
        id: MessageId,
        removal: &Removal,
        at: Timestamp,
    ) -> Result<Tombstone>;
    /// Removes every id as `removal` says.
    async fn delete_many_as(
        &self,
        thread: ThreadId,
        ids: &[MessageId],
        removal: &Removal,
        at: Timestamp,
    ) -> Result<Vec<Tombstone>>;
    /// Clears every reaction as the moderator `by`.
    async fn clear_as(
        &self,
        thread: ThreadId,
        id: MessageId,
        by: UserId,
        at: Timestamp,
    ) -> Result<Reacted>;
    /// A page of reactors of `limit` (1 to 1,000).
    async fn reactors_of(
        &self,
        thread: ThreadId,
        id: MessageId,
        emoji: &Emoji,
        after: Option<UserId>,
        limit: usize,
    ) -> Result<Reactors>;
    /// Moves `user`'s position.
    async fn mark_read_as(
        &self,
        thread: ThreadId,
        user: UserId,
        mark: ReadMark,
        max: UnreadMax,
    ) -> Result<ReadState>;
    /// `user`'s states in `threads` (1 to 200).
    async fn read_states_of(
        &self,
        user: UserId,
        threads: &[ThreadId],
        max: UnreadMax,
    ) -> Result<Vec<ReadState>>;
}

#[async_trait]
impl<S: MessageStore + ?Sized> Calls for S {
    async fn create_with(&self, m: &Message, key: Option<Keyed<'_>>) -> Result<Created> {
        let idempotency = key.map(|k| Idempotency {
            key: k.key.clone(),
            fingerprint: k.fingerprint,
        });
        self.create(CreateRequest {
            message: m.clone(),
            idempotency,
            participants: Participants::DEFAULT,
        })
        .await
    }

    async fn update_as(
        &self,
        thread: ThreadId,
        id: MessageId,
        user: UserId,
        patch: &MessagePatch,
        at: Timestamp,
    ) -> Result<Message> {
        self.edit(EditRequest {
            thread,
            id,
            user,
            patch: patch.clone(),
            at,
        })
        .await
    }

    async fn delete_as(
        &self,
        thread: ThreadId,
        id: MessageId,
        removal: &Removal,
        at: Timestamp,
    ) -> Result<Tombstone> {
        self.delete(DeleteRequest {
            thread,
            id,
            removal: removal.clone(),
            at,
            participants: Participants::DEFAULT,
        })
        .await
    }

    async fn delete_many_as(
        &self,
        thread: ThreadId,
        ids: &[MessageId],
        removal: &Removal,
        at: Timestamp,
    ) -> Result<Vec<Tombstone>> {
        self.delete_many(BulkDeleteRequest {
            thread,
            ids: BulkIds::new(ids.to_vec())?,
            removal: removal.clone(),
            at,
            participants: Participants::DEFAULT,
        })
        .await
    }

    async fn clear_as(
        &self,
        thread: ThreadId,
        id: MessageId,
        by: UserId,
        at: Timestamp,
    ) -> Result<Reacted> {
        self.clear_reactions(ClearRequest { thread, id, by, at })
            .await
    }

    async fn reactors_of(
        &self,
        thread: ThreadId,
        id: MessageId,
        emoji: &Emoji,
        after: Option<UserId>,
        limit: usize,
    ) -> Result<Reactors> {
        self.reactors(thread, id, emoji, after, ReactorsLimit::new(limit)?)
            .await
    }

    async fn mark_read_as(
        &self,
        thread: ThreadId,
        user: UserId,
        mark: ReadMark,
        max: UnreadMax,
    ) -> Result<ReadState> {
        self.mark_read(MarkReadRequest {
            thread,
            user,
            mark,
            max,
        })
        .await
    }

    async fn read_states_of(
        &self,
        user: UserId,
        threads: &[ThreadId],
        max: UnreadMax,
    ) -> Result<Vec<ReadState>> {
        self.read_states(user, &ThreadList::new(threads.to_vec())?, max)
            .await
    }
}
