//! Reactions: the one set of rules every store applies to a message's reaction summary (each
//! emoji with its count and the first users who chose it; the types are the model's, in
//! `message::reaction`), the limits, the event a change announces, and the page of everyone
//! who reacted with one emoji.
//!
//! Every store keeps the summary beside the message and changes it with these functions
//! only, inside the write that numbers the change, so a reaction reads the same on every
//! backend and a page never joins another table.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::message::{Emoji, MessageId, Reaction, ThreadId, Timestamp, UserId};

/// The bounds of reactions, applied by every store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReactionLimits {
    /// Most distinct emoji on one message; one more is `Error::TooManyReactions`. Default 20
    /// (the server takes 1 to 1,000).
    pub max_emoji: usize,
    /// How many users each emoji of a message lists (the count is always exact). A change of
    /// this setting applies to an emoji's list at its next change. Default 10 (the server
    /// takes 0 to 100, so a message's JSON stays small).
    pub users_shown: usize,
}

impl Default for ReactionLimits {
    fn default() -> Self {
        ReactionLimits {
            max_emoji: 20,
            users_shown: 10,
        }
    }
}

/// Whether a reaction is being added or removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReactionChange {
    /// The caller adds their reaction.
    Add,
    /// The caller removes their own reaction.
    Remove,
}

/// Adds `user`'s new reaction `emoji` to a summary: a new emoji goes last (emoji are in the
/// order each was first used among the reactions still held), the user is listed when the
/// list has room. `Error::TooManyReactions` past `limits.max_emoji`. The caller has checked
/// that the user did not hold this reaction.
pub fn add_to_summary(
    summary: &mut Vec<Reaction>,
    emoji: &Emoji,
    user: UserId,
    limits: &ReactionLimits,
) -> Result<i64> {
    let full = summary.len() >= limits.max_emoji;
    match summary.iter_mut().find(|r| &r.emoji == emoji) {
        Some(reaction) => {
            reaction.count += 1;
            if reaction.users.len() < limits.users_shown {
                reaction.users.push(user);
            }
            Ok(reaction.count)
        }
        None if full => Err(Error::TooManyReactions {
            max: limits.max_emoji,
        }),
        None => {
            summary.push(Reaction {
                emoji: emoji.clone(),
                count: 1,
                users: if limits.users_shown > 0 {
                    vec![user]
                } else {
                    Vec::new()
                },
            });
            Ok(1)
        }
    }
}

/// The users `summary` lists for `emoji` (none when no one holds it).
pub fn shown<'a>(summary: &'a [Reaction], emoji: &Emoji) -> &'a [UserId] {
    summary
        .iter()
        .find(|r| &r.emoji == emoji)
        .map_or(&[], |r| r.users.as_slice())
}

/// How many users hold `emoji` by `summary` (0 when no one does).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub fn count(summary: &[Reaction], emoji: &Emoji) -> i64 {
    summary
        .iter()
        .find(|r| &r.emoji == emoji)
        .map_or(0, |r| r.count)
}

/// What a removal needs from the store before [`remove_from_summary`]: whether the removed
/// user was listed, so the store can find the next holder to list in their place.
pub fn listed(summary: &[Reaction], emoji: &Emoji, user: UserId) -> bool {
    summary
        .iter()
        .any(|r| &r.emoji == emoji && r.users.contains(&user))
}

/// Removes `user`'s reaction `emoji` from a summary; `next` is the earliest holder not yet
/// listed (the store's answer when [`listed`] was true), listed last so the list stays the
/// first holders in order. An emoji no one holds any more leaves the summary. Returns the new
/// count. The caller has checked that the user held this reaction.
pub fn remove_from_summary(
    summary: &mut Vec<Reaction>,
    emoji: &Emoji,
    user: UserId,
    next: Option<UserId>,
    limits: &ReactionLimits,
) -> i64 {
    let Some(at) = summary.iter().position(|r| &r.emoji == emoji) else {
        return 0;
    };
    let reaction = &mut summary[at];
    reaction.count -= 1;
    reaction.users.retain(|u| *u != user);
    if let Some(next) = next
        && reaction.users.len() < limits.users_shown
        && !reaction.users.contains(&next)
    {
        reaction.users.push(next);
    }
    let count = reaction.count;
    if count <= 0 {
        summary.remove(at);
    }
    count.max(0)
}

/// The summary as stored: its JSON (`[]` for none).
pub fn summary_to_json(summary: &[Reaction]) -> String {
    serde_json::to_string(summary).expect("emoji, counts and ids always serialise")
}

/// A stored summary read back.
pub fn summary_from_json(text: &str) -> Result<Vec<Reaction>> {
    serde_json::from_str(text).map_err(|e| Error::internal("decode reactions", e))
}

/// A moderator clearing every reaction of a message, as its event announces it before the
/// store numbers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReactionsCleared {
    /// The message.
    pub message_id: MessageId,
    /// Its thread.
    pub thread_id: ThreadId,
    /// The moderator.
    pub cleared_by: UserId,
    /// When.
    pub cleared_at: Timestamp,
}

/// A reaction change as its event announces it, before the store numbers it: who, which
/// emoji, on which message, and the emoji's count after the change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReactionEvent {
    /// The message reacted to.
    pub message_id: MessageId,
    /// Its thread.
    pub thread_id: ThreadId,
    /// Who added or removed the reaction.
    pub user_id: UserId,
    /// The emoji.
    pub emoji: Emoji,
    /// How many users hold this emoji on the message after the change.
    pub count: i64,
    /// When it happened.
    pub reacted_at: Timestamp,
}

/// What a reaction request did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reacted {
    /// The message after the request, in its current state.
    pub message: crate::message::Message,
    /// Whether anything changed: false for a repeat add or a removal of a reaction the user
    /// did not hold, which take no number and send no event.
    pub changed: bool,
}

/// How many reactors a page lists when the client names no limit, and at most.
pub const REACTORS_DEFAULT: usize = 100;
/// The largest page of reactors.
pub const REACTORS_MAX: usize = 1_000;

/// A page of the users who reacted with one emoji, by user id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reactors {
    /// The emoji.
    pub emoji: Emoji,
    /// How many users hold it.
    pub count: i64,
    /// Users after the page's `after`, by id.
    pub users: Vec<UserId>,
    /// The id to pass as `after` for the next page; `null` on the last.
    pub next: Option<UserId>,
}

impl Reactors {
    /// A page from up to `limit + 1` user ids read in order: the extra one says another page
    /// follows.
    pub fn from_overfetch(emoji: Emoji, count: i64, mut users: Vec<UserId>, limit: usize) -> Self {
        let next = if users.len() > limit {
            users.truncate(limit);
            users.last().copied()
        } else {
            None
        };
        Reactors {
            emoji,
            count,
            users,
            next,
        }
    }

    /// The page as response JSON.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("emoji, counts and ids always serialise")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn user(n: u128) -> UserId {
        UserId::from_uuid(Uuid::from_u128(n))
    }

    #[test]
    fn a_summary_lists_the_first_holders_and_counts_them_all() {
        let limits = ReactionLimits {
            max_emoji: 2,
            users_shown: 2,
        };
        let up = Emoji::parse("👍").unwrap();
        let heart = Emoji::parse("❤️").unwrap();
        let mut s = Vec::new();
        assert_eq!(add_to_summary(&mut s, &up, user(1), &limits).unwrap(), 1);
        assert_eq!(add_to_summary(&mut s, &heart, user(2), &limits).unwrap(), 1);
        assert_eq!(add_to_summary(&mut s, &up, user(3), &limits).unwrap(), 2);
        assert_eq!(add_to_summary(&mut s, &up, user(4), &limits).unwrap(), 3);
        assert_eq!(s[0].users, [user(1), user(3)]);
        let third = Emoji::parse(":x:").unwrap();
        assert!(matches!(
            add_to_summary(&mut s, &third, user(1), &limits),
            Err(Error::TooManyReactions { max: 2 })
        ));
        // A listed holder leaves: the next holder takes the place.
        assert!(listed(&s, &up, user(1)));
        assert_eq!(
            remove_from_summary(&mut s, &up, user(1), Some(user(4)), &limits),
            2
        );
        assert_eq!(s[0].users, [user(3), user(4)]);
        // The last holder of an emoji leaves: the emoji goes, and a new one comes last.
        assert_eq!(
            remove_from_summary(&mut s, &heart, user(2), None, &limits),
            0
        );
        assert_eq!(s.len(), 1);
        add_to_summary(&mut s, &heart, user(9), &limits).unwrap();
        assert_eq!(s[1].emoji, heart);
        let back = summary_from_json(&summary_to_json(&s)).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn a_reactors_page_says_where_the_next_begins() {
        let emoji = Emoji::parse("👍").unwrap();
        let page = Reactors::from_overfetch(emoji.clone(), 3, vec![user(1), user(2), user(3)], 2);
        assert_eq!(page.users, [user(1), user(2)]);
        assert_eq!(page.next, Some(user(2)));
        let last = Reactors::from_overfetch(emoji, 3, vec![user(3)], 2);
        assert_eq!(last.next, None);
    }
}
