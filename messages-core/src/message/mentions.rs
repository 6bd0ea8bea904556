//! Whom a message addresses: the users its author names and, with `room`, everyone in the
//! thread (`@room`, `@here`). Chosen by the author and sent with the message, as Matrix's
//! `m.mentions` is, never parsed from the text: the users service owns names, and an "@name"
//! quoted or left in an edit must not notify anyone.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::UserId;
use crate::error::{Error, Result};

/// A message's mentions: the users it names, each once and never its author, in the order
/// first named, and whether it addresses the whole room.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Mentions {
    /// The users named.
    pub users: Vec<UserId>,
    /// Whether everyone in the thread is addressed.
    #[serde(default)]
    pub room: bool,
}

impl Mentions {
    /// Mentions as a client sent them: duplicates folded, at most `max` users after that.
    pub fn new(users: Vec<UserId>, room: bool, max: usize) -> Result<Self> {
        let mut seen = HashSet::with_capacity(users.len().min(max + 1));
        let mut folded = Vec::with_capacity(users.len().min(max + 1));
        for user in users {
            if seen.insert(user) {
                if folded.len() == max {
                    return Err(Error::invalid(
                        "mentions",
                        format!("users: at most {max} different users"),
                    ));
                }
                folded.push(user);
            }
        }
        Ok(Mentions {
            users: folded,
            room,
        })
    }

    /// The mentions of a message by `author`: the author's own id left out (no one mentions
    /// themselves); `None` when no one is left and the room is not addressed.
    pub fn of_author(mut self, author: UserId) -> Option<Self> {
        self.users.retain(|user| *user != author);
        (!self.users.is_empty() || self.room).then_some(self)
    }

    /// Whether `user` is addressed: named, or one of the room.
    pub fn address(&self, user: UserId) -> bool {
        self.room || self.users.contains(&user)
    }

    /// The ids a store files the message under, to count and list the mentions of a reader:
    /// the room's ([`Mentions::ROOM`]) alone when the room is addressed (every reader is then),
    /// else each named user's. So a message counts once for a reader however it names them.
    pub fn keys(mentions: Option<&Mentions>) -> Vec<uuid::Uuid> {
        match mentions {
            None => Vec::new(),
            Some(m) if m.room => vec![Self::ROOM],
            Some(m) => m.users.iter().map(|u| *u.as_uuid()).collect(),
        }
    }

    /// The key of a mention of the room: the nil id, which is never a user's.
    pub const ROOM: uuid::Uuid = uuid::Uuid::nil();

    /// The users named by `self` and not by `before` (all of them when `before` is `None`):
    /// whom an edit mentions anew.
    pub fn added_since(&self, before: Option<&Mentions>) -> Vec<UserId> {
        self.users
            .iter()
            .copied()
            .filter(|user| before.is_none_or(|b| !b.users.contains(user)))
            .collect()
    }

    /// What an edit from `before` to `after` mentions anew: the users `after` names that
    /// `before` did not, and the room when only `after` addresses it; `None` when nothing.
    /// A notification service pushes these, so each mention is pushed once.
    pub fn new_in(after: Option<&Mentions>, before: Option<&Mentions>) -> Option<Mentions> {
        let after = after?;
        let users = after.added_since(before);
        let room = after.room && !before.is_some_and(|b| b.room);
        (!users.is_empty() || room).then_some(Mentions { users, room })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(n: u128) -> UserId {
        UserId::from_uuid(uuid::Uuid::from_u128(n))
    }

    #[test]
    fn duplicates_fold_and_the_bound_counts_users_once() {
        let m = Mentions::new(vec![user(1), user(2), user(1), user(2)], false, 2).unwrap();
        assert_eq!(m.users, vec![user(1), user(2)]);
        let refused = Mentions::new(vec![user(1), user(2), user(3)], false, 2);
        assert!(matches!(
            refused,
            Err(Error::Invalid {
                field: "mentions",
                ..
            })
        ));
    }

    #[test]
    fn the_author_is_never_mentioned_and_nothing_left_is_none() {
        let m = Mentions::new(vec![user(1), user(2)], false, 50).unwrap();
        assert_eq!(m.clone().of_author(user(1)).unwrap().users, vec![user(2)]);
        let only_self = Mentions::new(vec![user(1)], false, 50).unwrap();
        assert_eq!(only_self.of_author(user(1)), None);
        let room = Mentions::new(vec![user(1)], true, 50).unwrap();
        let kept = room.of_author(user(1)).expect("the room stays");
        assert!(kept.users.is_empty() && kept.address(user(9)));
    }

    #[test]
    fn an_edit_mentions_anew_only_users_it_adds() {
        let before = Mentions::new(vec![user(1), user(2)], false, 50).unwrap();
        let after = Mentions::new(vec![user(2), user(3)], false, 50).unwrap();
        assert_eq!(after.added_since(Some(&before)), vec![user(3)]);
        assert_eq!(after.added_since(None), vec![user(2), user(3)]);
        let room = Mentions::new(vec![user(2)], true, 50).unwrap();
        let fresh = Mentions::new_in(Some(&room), Some(&before)).expect("the room is new");
        assert_eq!((fresh.users, fresh.room), (vec![], true));
        let fewer = Mentions::new(vec![user(2)], false, 50).unwrap();
        assert_eq!(
            Mentions::new_in(Some(&fewer), Some(&room)),
            None,
            "removals are not new"
        );
        assert_eq!(Mentions::new_in(None, Some(&before)), None);
    }
}
