//! Reactions: [`ReactionStore`].

use async_trait::async_trait;

use crate::error::Result;
use crate::message::{Emoji, MessageId, ThreadId, UserId};
use crate::reaction::{ClearRequest, Reacted, ReactionRequest, Reactors, ReactorsLimit};

/// Reactions on messages, each change numbered in the thread's sequence with its event.
#[async_trait]
pub trait ReactionStore: Send + Sync + 'static {
    /// Adds or removes the user's reaction on a live message as `reaction::plan` decides: a
    /// change takes the thread's next number as the message's `rev`, writes the new summary
    /// and the holder's row, and stores the change's event, atomically; a repeat add or a
    /// removal of a reaction the user does not hold changes nothing and takes no number
    /// (`Reacted::changed` false). `NotFound` for a missing, deleted or other-thread message;
    /// `TooManyReactions` for a new emoji past the limit.
    async fn react(&self, request: ReactionRequest) -> Result<Reacted>;

    /// Removes every reaction of a live message (a moderator's act) as
    /// `reaction::plan_clear` decides: one change, numbered as the message's `rev`, with its
    /// event; a message without reactions changes nothing and takes no number
    /// (`Reacted::changed` false). `NotFound` as for [`ReactionStore::react`].
    async fn clear_reactions(&self, request: ClearRequest) -> Result<Reacted>;

    /// The users who hold `emoji` on a live message, by user id after `after` (from the
    /// first when `None`), at most `limit`. `NotFound` as for [`ReactionStore::react`]; an
    /// emoji no one holds is an empty page.
    async fn reactors(
        &self,
        thread: ThreadId,
        id: MessageId,
        emoji: &Emoji,
        after: Option<UserId>,
        limit: ReactorsLimit,
    ) -> Result<Reactors>;
}
