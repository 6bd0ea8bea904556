//! Who removes a message, and why: its author, or a moderator, who may remove anyone's, with
//! a reason the tombstone keeps; and what a store keeps of a deletion, from which every
//! tombstone is made ([`Deletion::tombstone`], the one place that says what a tombstone holds).

use crate::error::{Error, Result};
use crate::message::{MessageId, ThreadId, Timestamp, Tombstone, UserId};

/// The longest reason a removal keeps, in characters.
pub const REASON_MAX_CHARS: usize = 512;

/// A removal's remover and reason, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Removal {
    by: UserId,
    moderator: bool,
    reason: Option<String>,
}

impl Removal {
    /// The author removing their own message, without a reason.
    pub fn by_author(user: UserId) -> Self {
        Removal {
            by: user,
            moderator: false,
            reason: None,
        }
    }

    /// `user` removing a message (any message when `moderator`), with `reason`: at most
    /// [`REASON_MAX_CHARS`] characters; a blank one is none.
    pub fn new(user: UserId, moderator: bool, reason: Option<String>) -> Result<Self> {
        let reason = reason
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty());
        if let Some(reason) = &reason {
            if reason.chars().count() > REASON_MAX_CHARS {
                return Err(Error::invalid(
                    "reason",
                    format!("at most {REASON_MAX_CHARS} characters"),
                ));
            }
            if reason.chars().any(char::is_control) {
                return Err(Error::invalid("reason", "no control characters"));
            }
        }
        Ok(Removal {
            by: user,
            moderator,
            reason,
        })
    }

    /// Who removes.
    pub fn by(&self) -> UserId {
        self.by
    }

    /// Whether the remover may remove anyone's message.
    pub fn is_moderator(&self) -> bool {
        self.moderator
    }

    /// Why, when said.
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    /// Whether the remover may remove a message `author` wrote.
    pub fn may_remove(&self, author: UserId) -> bool {
        self.moderator || author == self.by
    }

    /// What a store keeps of this removal of a message `author` wrote: when, who removed it
    /// when not its author, and why.
    pub fn deletion(&self, author: UserId, at: Timestamp) -> Deletion {
        Deletion {
            at,
            by: (author != self.by).then_some(self.by),
            reason: self.reason.clone(),
        }
    }
}

/// What a store keeps of a deletion, beside the message's row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deletion {
    /// When.
    pub at: Timestamp,
    /// Who removed the message, when not its author.
    pub by: Option<UserId>,
    /// Why, when the remover said.
    pub reason: Option<String>,
}

impl Deletion {
    /// The tombstone of the message `id` of `thread` (numbered `seq`) that this deletion
    /// removed as the change numbered `rev`: what every store answers and announces for it.
    pub fn tombstone(&self, id: MessageId, thread: ThreadId, seq: i64, rev: i64) -> Tombstone {
        Tombstone {
            id,
            thread_id: thread,
            deleted_at: self.at,
            deleted_by: self.by,
            reason: self.reason.clone(),
            seq,
            rev,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> UserId {
        UserId::from_uuid(uuid::Uuid::new_v4())
    }

    #[test]
    fn only_moderators_remove_what_others_wrote() {
        let (author, other) = (user(), user());
        assert!(Removal::by_author(author).may_remove(author));
        assert!(!Removal::by_author(other).may_remove(author));
        let moderator = Removal::new(other, true, Some("spam".into())).expect("valid");
        assert!(moderator.may_remove(author));
        let at = Timestamp::from_micros(1);
        let theirs = moderator.deletion(author, at);
        assert_eq!(
            (theirs.by, theirs.reason.as_deref()),
            (Some(other), Some("spam"))
        );
        assert_eq!(moderator.deletion(other, at).by, None, "their own message");
    }

    #[test]
    fn reasons_are_bounded_and_blank_is_none() {
        let u = user();
        assert_eq!(
            Removal::new(u, true, Some("  ".into()))
                .expect("valid")
                .reason(),
            None
        );
        let most = "é".repeat(REASON_MAX_CHARS);
        assert!(Removal::new(u, true, Some(most)).is_ok());
        assert!(Removal::new(u, true, Some("x".repeat(REASON_MAX_CHARS + 1))).is_err());
        assert!(Removal::new(u, true, Some("a\u{0}b".into())).is_err());
        assert_eq!(
            Removal::new(u, true, Some(" spam ".into()))
                .expect("valid")
                .reason(),
            Some("spam")
        );
    }
}
