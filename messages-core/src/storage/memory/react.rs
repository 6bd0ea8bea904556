//! Reactions in memory: every holder of each emoji is kept beside the message, in the order
//! they reacted, and the summary is changed only as `reaction::plan` decides.

use async_trait::async_trait;

use super::MemoryStore;
use crate::error::{Error, Result};
use crate::locks;
use crate::message::{Emoji, MessageId, ThreadId, UserId};
use crate::reaction::{
    self, ClearRequest, Plan, Reacted, ReactionChange, ReactionRequest, Reactors, ReactorsLimit,
};
use crate::storage::ReactionStore;

#[async_trait]
impl ReactionStore for MemoryStore {
    async fn react(&self, request: ReactionRequest) -> Result<Reacted> {
        let mut threads = locks::write(&self.threads);
        let thread = threads.get_mut(&request.thread).ok_or(Error::NotFound)?;
        let entry = thread.live_entry(request.id)?;
        let holders = entry
            .holders
            .get(&request.emoji)
            .map_or(&[][..], Vec::as_slice);
        let summary = &entry.message.reactions;
        let next = reaction::needs_next_holder(summary, &request)
            .then(|| {
                let shown = reaction::shown(summary, &request.emoji);
                holders
                    .iter()
                    .copied()
                    .find(|u| *u != request.user && !shown.contains(u))
            })
            .flatten();
        let holds = holders.contains(&request.user);
        let Plan::Changed { summary, event, .. } = reaction::plan(summary, holds, next, &request)?
        else {
            return Ok(Reacted {
                message: entry.message.clone(),
                changed: false,
            });
        };
        let seq = entry.message.seq;
        let entry = thread.renumber(seq).ok_or(Error::NotFound)?;
        let holders = entry.holders.entry(request.emoji.clone()).or_default();
        match request.change {
            ReactionChange::Add => holders.push(request.user),
            ReactionChange::Remove => holders.retain(|u| *u != request.user),
        }
        if holders.is_empty() {
            entry.holders.remove(&request.emoji);
        }
        entry.message.reactions = summary;
        let message = entry.message.clone();
        locks::lock(&self.outbox).push(&event, seq, message.rev);
        Ok(Reacted {
            message,
            changed: true,
        })
    }

    async fn clear_reactions(&self, request: ClearRequest) -> Result<Reacted> {
        let mut threads = locks::write(&self.threads);
        let thread = threads.get_mut(&request.thread).ok_or(Error::NotFound)?;
        let current = thread.live_entry(request.id)?;
        let Some(event) = reaction::plan_clear(&current.message, &request) else {
            return Ok(Reacted {
                message: current.message.clone(),
                changed: false,
            });
        };
        let seq = current.message.seq;
        let entry = thread.renumber(seq).ok_or(Error::NotFound)?;
        entry.holders.clear();
        entry.message.reactions.clear();
        let message = entry.message.clone();
        locks::lock(&self.outbox).push(&event, seq, message.rev);
        Ok(Reacted {
            message,
            changed: true,
        })
    }

    async fn reactors(
        &self,
        thread: ThreadId,
        id: MessageId,
        emoji: &Emoji,
        after: Option<UserId>,
        limit: ReactorsLimit,
    ) -> Result<Reactors> {
        let threads = locks::read(&self.threads);
        let thread = threads.get(&thread).ok_or(Error::NotFound)?;
        let entry = thread.live_entry(id)?;
        let mut users: Vec<UserId> = entry.holders.get(emoji).cloned().unwrap_or_default();
        let count = users.len() as i64;
        users.sort_unstable();
        users.retain(|u| after.is_none_or(|after| *u > after));
        users.truncate(limit.get() + 1);
        Ok(Reactors::from_overfetch(emoji.clone(), count, users, limit))
    }
}
