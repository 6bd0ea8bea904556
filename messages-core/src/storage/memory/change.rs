//! Edits and removals in memory.

use async_trait::async_trait;

use super::{MemoryStore, Thread};
use crate::error::{Error, Result};
use crate::locks;
use crate::message::{Message, MessageId, Timestamp, Tombstone};
use crate::replies::{self, Participants};
use crate::rules::{self, Removed};
use crate::storage::ChangeStore;
use crate::write::{BulkDeleteRequest, DeleteRequest, EditRequest};

impl MemoryStore {
    /// Writes a removal the rules allowed, of a live message of `thread`.
    /// Returns the root of the conversation the message replied to, if it was a reply.
    fn write_removal(
        &self,
        thread: &mut Thread,
        removed: Removed,
    ) -> Result<(Tombstone, Option<MessageId>)> {
        let seq = *thread.by_id.get(&removed.id).ok_or(Error::NotFound)?;
        let entry = thread.renumber(seq).ok_or(Error::NotFound)?;
        entry.deleted = Some(removed.deletion.clone());
        entry.replaced.clear();
        entry.holders.clear();
        let root = entry.message.root_id;
        let tombstone = removed.tombstone(seq, entry.message.rev);
        thread.live.remove(&seq);
        if let Some(seqs) = root.and_then(|root| thread.replies.get_mut(&root)) {
            seqs.remove(&seq);
        }
        locks::lock(&self.outbox).push(&removed.event, seq, tombstone.rev);
        Ok((tombstone, root))
    }

    /// After replies went: each live root among `roots` (once, in the order given) recounted
    /// and numbered.
    fn recount_roots(
        &self,
        thread: &mut Thread,
        roots: impl IntoIterator<Item = MessageId>,
        participants: Participants,
        at: Timestamp,
    ) {
        let mut seen = Vec::new();
        for root in roots {
            if seen.contains(&root) {
                continue;
            }
            seen.push(root);
            thread.renumber_root(root, at, &self.outbox, |_, live| {
                replies::recount(live, participants)
            });
        }
    }
}

/// The author of the live message `id` of `thread`, if there is one.
fn author(thread: Option<&Thread>, id: MessageId) -> Option<crate::message::UserId> {
    thread?.live(id).map(|e| e.message.user_id)
}

#[async_trait]
impl ChangeStore for MemoryStore {
    async fn edit(&self, request: EditRequest) -> Result<Message> {
        let mut threads = locks::write(&self.threads);
        let thread = threads.get_mut(&request.thread);
        let current = thread.as_deref().and_then(|t| t.live(request.id));
        let mut edit = rules::edit(current.map(|e| &e.message), &request)?;
        let thread = thread.ok_or(Error::NotFound)?;
        let seq = edit.message.seq;
        let entry = thread.renumber(seq).ok_or(Error::NotFound)?;
        edit.number(entry.message.rev);
        entry.message = edit.message.clone();
        entry.replaced.push(edit.replaced);
        locks::lock(&self.outbox).push(&edit.event, seq, edit.message.rev);
        Ok(edit.message)
    }

    async fn delete(&self, request: DeleteRequest) -> Result<Tombstone> {
        let DeleteRequest {
            thread: thread_id,
            id,
            removal,
            at,
            participants,
        } = request;
        let mut threads = locks::write(&self.threads);
        let thread = threads.get_mut(&thread_id);
        let removed = rules::remove(thread_id, id, author(thread.as_deref(), id), &removal, at)?;
        let thread = thread.ok_or(Error::NotFound)?;
        let (tombstone, root) = self.write_removal(thread, removed)?;
        self.recount_roots(thread, root, participants, at);
        Ok(tombstone)
    }

    async fn delete_many(&self, request: BulkDeleteRequest) -> Result<Vec<Tombstone>> {
        let BulkDeleteRequest {
            thread: thread_id,
            ids,
            removal,
            at,
            participants,
        } = request;
        let mut threads = locks::write(&self.threads);
        let thread = threads.get_mut(&thread_id);
        let found: Vec<_> = ids
            .as_slice()
            .iter()
            .map(|&id| (id, author(thread.as_deref(), id)))
            .collect();
        // Every check before any change: all of them or none.
        rules::may_remove_all(&found, &removal)?;
        let removals = found
            .iter()
            .map(|&(id, author)| rules::remove(thread_id, id, author, &removal, at))
            .collect::<Result<Vec<_>>>()?;
        let thread = thread.ok_or(Error::NotFound)?;
        let mut tombstones = Vec::with_capacity(removals.len());
        let mut roots = Vec::new();
        for removed in removals {
            let (tombstone, root) = self.write_removal(thread, removed)?;
            tombstones.push(tombstone);
            roots.extend(root);
        }
        self.recount_roots(thread, roots, participants, at);
        Ok(tombstones)
    }
}
