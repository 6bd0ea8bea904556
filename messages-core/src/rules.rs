//! The rules of a change that every store applies, decided once here: who may change a
//! message (its author, or for a removal a moderator; "not found" before "forbidden"), what an
//! edit keeps and announces, what a removal keeps and announces. A store reads what a rule
//! needs, asks the rule, and writes what it answers. The reactions' rules are `reaction`'s.

use crate::error::{Error, Result};
use crate::events::codec;
use crate::history::Replaced;
use crate::message::{Mentions, Message, MessageId, ThreadId, Timestamp, Tombstone, UserId};
use crate::removal::{Deletion, Removal};
use crate::storage::OutboxEvent;
use crate::write::EditRequest;

/// Who asks to change a message.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Actor<'a> {
    /// A user editing: only the author may.
    Author(UserId),
    /// A remover: the author, or a moderator.
    Remover(&'a Removal),
}

/// Whether `actor` may change a message, given the author of the live message the store
/// found (`None` when the thread holds no live message by that id). `NotFound` before
/// `Forbidden`, so a message of another thread is indistinguishable from a missing one.
pub(crate) fn may_change(author: Option<UserId>, actor: Actor<'_>) -> Result<()> {
    let author = author.ok_or(Error::NotFound)?;
    let allowed = match actor {
        Actor::Author(user) => author == user,
        Actor::Remover(removal) => removal.may_remove(author),
    };
    if allowed {
        Ok(())
    } else {
        Err(Error::Forbidden)
    }
}

/// Whether `removal` may remove every message of a bulk delete, given the author of each live
/// message found (`None` for an id that is not a live message of the thread). Every id is
/// looked at for existence first: `RefusedId` naming the first that is not live, then
/// `Forbidden` when the remover may not remove one of them.
pub(crate) fn may_remove_all(
    found: &[(MessageId, Option<UserId>)],
    removal: &Removal,
) -> Result<()> {
    if let Some((id, _)) = found.iter().find(|(_, author)| author.is_none()) {
        return Err(Error::RefusedId {
            id: *id.as_uuid(),
            why: "is not a live message of this thread",
        });
    }
    found
        .iter()
        .try_for_each(|(_, author)| may_change(*author, Actor::Remover(removal)))
}

/// An edit decided: the message after it, the version it replaces, and its event; the
/// numbers still to take.
#[derive(Clone, Debug)]
pub(crate) struct Edit {
    /// The message after the edit; its `rev` is set by [`Edit::number`].
    pub message: Message,
    /// The version the edit replaces, kept for the message's history.
    pub replaced: Replaced,
    /// The edit's event, encoded up to its numbers.
    pub event: OutboxEvent,
}

impl Edit {
    /// Gives the edit the number the store took for it.
    pub fn number(&mut self, rev: i64) {
        self.message.rev = rev;
        self.replaced.replaced_by = rev;
    }
}

/// Decides an edit of `current`, the live message the store found (`None` when none), locked
/// by the store until it commits: only its author may, and the patch must leave it valid.
pub(crate) fn edit(current: Option<&Message>, request: &EditRequest) -> Result<Edit> {
    may_change(current.map(|m| m.user_id), Actor::Author(request.user))?;
    let current = current.ok_or(Error::NotFound)?;
    let mut message = current.clone();
    request.patch.apply(&mut message, request.at)?;
    let newly = Mentions::new_in(message.mentions.as_ref(), current.mentions.as_ref());
    let event = codec::updated(&message, newly.as_ref());
    Ok(Edit {
        replaced: Replaced {
            content: current.content.clone(),
            paths: current.paths.clone(),
            mentions: current.mentions.clone(),
            made_at: current.updated_at,
            replaced_by: 0,
        },
        message,
        event,
    })
}

/// A removal decided: what the store keeps of it, and its event; the numbers still to take.
#[derive(Clone, Debug)]
pub(crate) struct Removed {
    /// The message removed.
    pub id: MessageId,
    /// Its thread.
    pub thread: ThreadId,
    /// What the store keeps beside the message's row.
    pub deletion: Deletion,
    /// The removal's event, encoded up to its numbers.
    pub event: OutboxEvent,
}

impl Removed {
    /// The tombstone, once the store has the message's `seq` and the removal's `rev`.
    pub fn tombstone(&self, seq: i64, rev: i64) -> Tombstone {
        self.deletion.tombstone(self.id, self.thread, seq, rev)
    }
}

/// Decides the removal of message `id` of `thread`, whose live row the store found written by
/// `author` (`None` when none), by `removal` at `at`.
pub(crate) fn remove(
    thread: ThreadId,
    id: MessageId,
    author: Option<UserId>,
    removal: &Removal,
    at: Timestamp,
) -> Result<Removed> {
    may_change(author, Actor::Remover(removal))?;
    let author = author.ok_or(Error::NotFound)?;
    let deletion = removal.deletion(author, at);
    // The event carries the tombstone up to its numbers.
    let event = codec::deleted(&deletion.tombstone(id, thread, 0, 0));
    Ok(Removed {
        id,
        thread,
        deletion,
        event,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> UserId {
        UserId::from_uuid(uuid::Uuid::new_v4())
    }

    #[test]
    fn an_edit_announces_whom_it_mentions_anew() {
        let (author, a, b) = (user(), user(), user());
        let thread = ThreadId::from_uuid(uuid::Uuid::now_v7());
        let mut current = crate::testing::text_message(thread, author, 1, "hi");
        current.mentions = Some(Mentions::new(vec![a], false, 50).expect("valid"));
        let edit_to = |users: Vec<UserId>, room: bool| EditRequest {
            thread,
            id: current.id,
            user: author,
            patch: crate::message::MessagePatch::with_mentions(
                None,
                None,
                Some(Mentions::new(users, room, 50).expect("valid")),
                &crate::message::Limits::default(),
            )
            .expect("valid"),
            at: Timestamp::from_micros(2),
        };
        let body = |edit: Edit| -> serde_json::Value {
            let mut payload = edit.event.open_payload;
            payload.push(b'}');
            serde_json::from_slice(&payload).expect("JSON")
        };
        let added = body(edit(Some(&current), &edit_to(vec![a, b], true)).expect("edit"));
        assert_eq!(
            added["newly_mentioned"],
            serde_json::json!({"users": [b], "room": true})
        );
        assert_eq!(added["mentions"]["users"], serde_json::json!([a, b]));
        let same = body(edit(Some(&current), &edit_to(vec![a], false)).expect("edit"));
        assert!(same.get("newly_mentioned").is_none(), "no one new");
    }

    #[test]
    fn not_found_comes_before_forbidden() {
        let (author, other) = (user(), user());
        assert!(may_change(Some(author), Actor::Author(author)).is_ok());
        assert!(matches!(
            may_change(Some(author), Actor::Author(other)),
            Err(Error::Forbidden)
        ));
        assert!(matches!(
            may_change(None, Actor::Author(other)),
            Err(Error::NotFound)
        ));
        let moderator = Removal::new(other, true, None).expect("valid");
        assert!(may_change(Some(author), Actor::Remover(&moderator)).is_ok());
        assert!(matches!(
            may_change(Some(author), Actor::Remover(&Removal::by_author(other))),
            Err(Error::Forbidden)
        ));
    }

    #[test]
    fn a_bulk_removal_names_a_missing_id_before_a_forbidden_one() {
        let (author, other) = (user(), user());
        let (foreign, missing) = (MessageId::new_v7(), MessageId::new_v7());
        let found = [(foreign, Some(author)), (missing, None)];
        let refused = may_remove_all(&found, &Removal::by_author(other));
        assert!(
            matches!(refused, Err(Error::RefusedId { id, .. }) if id == *missing.as_uuid()),
            "{refused:?}"
        );
        assert!(matches!(
            may_remove_all(&found[..1], &Removal::by_author(other)),
            Err(Error::Forbidden)
        ));
    }
}
