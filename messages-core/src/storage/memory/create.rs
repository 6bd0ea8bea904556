//! Creating messages in memory.

use async_trait::async_trait;

use super::{Entry, MemoryStore};
use crate::error::{Error, Result};
use crate::locks;
use crate::message::Message;
use crate::replies;
use crate::storage::CreateStore;
use crate::write::{CreateRequest, Created};

#[async_trait]
impl CreateStore for MemoryStore {
    async fn create(&self, request: CreateRequest) -> Result<Created> {
        let CreateRequest {
            mut message,
            idempotency,
            participants,
        } = request;
        let mut threads = locks::write(&self.threads);
        let thread = threads.entry(message.thread_id).or_default();
        let slot = idempotency
            .as_ref()
            .map(|idem| (message.user_id, idem.key.as_str().to_owned()));
        if let (Some(slot), Some(idem)) = (&slot, &idempotency)
            && let Some((id, fingerprint)) = thread.idempotency.get(slot)
        {
            if *fingerprint != idem.fingerprint {
                return Err(Error::IdempotencyConflict);
            }
            let original = thread
                .by_id
                .get(id)
                .and_then(|seq| thread.message_at(seq))
                .ok_or(Error::NotFound)?;
            return Ok(Created::Replayed(original));
        }
        if let Some(target) = message.reply_to {
            let target = thread.live(target).ok_or(Error::InvalidReplyTo)?;
            message.root_id = Some(replies::root_of(&target.message));
        }
        let event = crate::events::codec::created(&message);
        if let (Some(slot), Some(idem)) = (slot, &idempotency) {
            thread
                .idempotency
                .insert(slot, (message.id, idem.fingerprint));
        }
        thread.head += 1;
        let seq = thread.head;
        message.seq = seq;
        message.rev = seq;
        thread.by_seq.insert(seq, Entry::new(message.clone()));
        thread.live.insert(seq);
        thread.by_rev.insert(seq, seq);
        thread.by_id.insert(message.id, seq);
        let position = thread.read.entry(message.user_id).or_default();
        *position = (*position).max(seq);
        locks::lock(&self.outbox).push(&event, seq, seq);
        let Some(root) = message.root_id else {
            return Ok(Created::New(message));
        };
        thread.replies.entry(root).or_default().insert(seq);
        if let Some(entry) = thread.live(root) {
            let root = entry.message.clone();
            thread.follow_on_reply(&root, &message);
        }
        let at = message.created_at;
        let summary = |root: &Message, _| {
            Some(replies::after_reply(
                root.replies.as_deref(),
                &message,
                participants,
            ))
        };
        match thread.renumber_root(root, at, &self.outbox, summary) {
            Some(root) => Ok(Created::Reply {
                reply: message,
                root: Box::new(root),
            }),
            None => Ok(Created::New(message)),
        }
    }
}
