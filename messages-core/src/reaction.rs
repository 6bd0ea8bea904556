//! Reactions: the one set of rules every store applies to a message's reaction summary (each
//! emoji with its count and the first users who chose it; the types are the model's, in
//! `message::reaction`), the requests, the limits, and the page of everyone who reacted with
//! one emoji.
//!
//! What a reaction change does is decided here, once: [`plan`] takes the summary a store
//! read, whether the user holds the reaction and, for a listed holder leaving, the next holder
//! the store found, and answers unchanged, or the new summary with the emoji's count and the
//! change's event. Every store keeps the summary beside the message and changes it only
//! through [`plan`], inside the write that numbers the change, so a reaction reads the same on
//! every backend and a page never joins another table.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::events::codec::{self, ReactionEvent, ReactionsCleared};
use crate::message::{Emoji, Message, MessageId, Reaction, ThreadId, Timestamp, UserId};
use crate::storage::OutboxEvent;

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

/// A reaction to add or remove, as the service hands it to a store.
#[derive(Clone, Debug)]
pub struct ReactionRequest {
    /// The message's thread.
    pub thread: ThreadId,
    /// The message.
    pub id: MessageId,
    /// Who reacts.
    pub user: UserId,
    /// With what.
    pub emoji: Emoji,
    /// Add or remove.
    pub change: ReactionChange,
    /// When.
    pub at: Timestamp,
    /// The bounds the summary keeps.
    pub limits: ReactionLimits,
}

/// A moderator clearing every reaction of a message.
#[derive(Clone, Copy, Debug)]
pub struct ClearRequest {
    /// The message's thread.
    pub thread: ThreadId,
    /// The message.
    pub id: MessageId,
    /// The moderator.
    pub by: UserId,
    /// When.
    pub at: Timestamp,
}

/// What a reaction change comes to, decided by [`plan`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Already as asked (a repeat add, or a removal of a reaction the user does not hold):
    /// nothing is written, no number taken, no event.
    Unchanged,
    /// A change: the summary after it, the emoji's count after it, and its event (not yet
    /// numbered). The store writes the holder's row and the summary, takes the thread's next
    /// number as the message's `rev`, and keeps the event, in one transaction.
    Changed {
        /// The message's summary after the change.
        summary: Vec<Reaction>,
        /// How many users hold the emoji after the change.
        count: i64,
        /// The change's event.
        event: OutboxEvent,
    },
}

/// Whether [`plan`] needs the next holder of the emoji for this request on this summary: the
/// user takes their reaction away and the summary lists them, so the earliest holder it does
/// not list takes their place. Only then does a store look that holder up.
pub(crate) fn needs_next_holder(summary: &[Reaction], request: &ReactionRequest) -> bool {
    request.change == ReactionChange::Remove && listed(summary, &request.emoji, request.user)
}

/// Whether the user holds the reaction, as far as the summary alone tells: yes when it lists
/// them, no when no one holds the emoji, `None` when others hold it and the list does not
/// show the user (only the store's rows tell then).
pub(crate) fn holds_by_summary(summary: &[Reaction], request: &ReactionRequest) -> Option<bool> {
    match summary.iter().find(|r| r.emoji == request.emoji) {
        None => Some(false),
        Some(r) if r.users.contains(&request.user) => Some(true),
        Some(_) => None,
    }
}

/// Decides a reaction change on a message whose summary is `summary`: `holds` is whether the
/// user holds the reaction now (from the store's rows), `next` the next holder when
/// [`needs_next_holder`] said one is needed. `Error::TooManyReactions` for a new emoji past
/// the limit.
pub(crate) fn plan(
    summary: &[Reaction],
    holds: bool,
    next: Option<UserId>,
    request: &ReactionRequest,
) -> Result<Plan> {
    let ReactionRequest {
        emoji,
        user,
        change,
        limits,
        ..
    } = request;
    let mut summary = summary.to_vec();
    let count = match (change, holds) {
        (ReactionChange::Add, true) | (ReactionChange::Remove, false) => {
            return Ok(Plan::Unchanged);
        }
        (ReactionChange::Add, false) => add_to_summary(&mut summary, emoji, *user, limits)?,
        (ReactionChange::Remove, true) => {
            remove_from_summary(&mut summary, emoji, *user, next, limits)
        }
    };
    let body = ReactionEvent {
        message_id: request.id,
        thread_id: request.thread,
        user_id: *user,
        emoji: emoji.clone(),
        count,
        reacted_at: request.at,
    };
    let event = match change {
        ReactionChange::Add => codec::reaction_added(&body),
        ReactionChange::Remove => codec::reaction_removed(&body),
    };
    Ok(Plan::Changed {
        summary,
        count,
        event,
    })
}

/// Decides a moderator's clearing of `message`'s reactions: `None` when it has none (nothing
/// to write, no number), else the change's event.
pub(crate) fn plan_clear(message: &Message, request: &ClearRequest) -> Option<OutboxEvent> {
    (!message.reactions.is_empty()).then(|| {
        codec::cleared(&ReactionsCleared {
            message_id: request.id,
            thread_id: request.thread,
            cleared_by: request.by,
            cleared_at: request.at,
        })
    })
}

/// Adds `user`'s new reaction `emoji` to a summary: a new emoji goes last (emoji are in the
/// order each was first used among the reactions still held), the user is listed when the
/// list has room. `Error::TooManyReactions` past `limits.max_emoji`. The caller has checked
/// that the user did not hold this reaction.
fn add_to_summary(
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

/// The users `summary` lists for `emoji` (none when no one holds it): a store looking for the
/// next holder skips them.
pub(crate) fn shown<'a>(summary: &'a [Reaction], emoji: &Emoji) -> &'a [UserId] {
    summary
        .iter()
        .find(|r| &r.emoji == emoji)
        .map_or(&[], |r| r.users.as_slice())
}

/// How many users hold `emoji` by `summary` (0 when no one does).
pub(crate) fn count(summary: &[Reaction], emoji: &Emoji) -> i64 {
    summary
        .iter()
        .find(|r| &r.emoji == emoji)
        .map_or(0, |r| r.count)
}

/// Whether the summary lists `user` among the holders of `emoji`.
fn listed(summary: &[Reaction], emoji: &Emoji, user: UserId) -> bool {
    summary
        .iter()
        .any(|r| &r.emoji == emoji && r.users.contains(&user))
}

/// Removes `user`'s reaction `emoji` from a summary; `next` is the earliest holder not yet
/// listed (the store's answer when [`needs_next_holder`] was true), listed last so the list
/// stays the first holders in order. An emoji no one holds any more leaves the summary.
/// Returns the new count. The caller has checked that the user held this reaction.
fn remove_from_summary(
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

/// What a reaction request did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reacted {
    /// The message after the request, in its current state.
    pub message: Message,
    /// Whether anything changed: false for a repeat add or a removal of a reaction the user
    /// did not hold, which take no number and send no event.
    pub changed: bool,
}

/// How many reactors a page lists: 1 to [`ReactorsLimit::MAX`], [`ReactorsLimit::DEFAULT`]
/// when the client names none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReactorsLimit(usize);

impl ReactorsLimit {
    /// The largest page of reactors.
    pub const MAX: usize = 1_000;
    /// A page when the client names no limit.
    pub const DEFAULT: ReactorsLimit = ReactorsLimit(100);

    /// `n` reactors a page; `Error::Invalid` (field `limit`) outside 1 to [`Self::MAX`].
    pub fn new(n: usize) -> Result<Self> {
        if (1..=Self::MAX).contains(&n) {
            Ok(ReactorsLimit(n))
        } else {
            Err(Self::refused())
        }
    }

    /// A limit as a query gives it, a decimal integer.
    pub fn parse(text: &str) -> Result<Self> {
        text.parse::<usize>()
            .map_err(|_| Self::refused())
            .and_then(Self::new)
    }

    fn refused() -> Error {
        Error::invalid(
            "limit",
            format!("must be an integer from 1 to {}", Self::MAX),
        )
    }

    /// How many.
    pub fn get(self) -> usize {
        self.0
    }
}

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
    pub(crate) fn from_overfetch(
        emoji: Emoji,
        count: i64,
        mut users: Vec<UserId>,
        limit: ReactorsLimit,
    ) -> Self {
        let limit = limit.get();
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

    fn request(emoji: &Emoji, user: UserId, change: ReactionChange) -> ReactionRequest {
        ReactionRequest {
            thread: ThreadId::from_uuid(Uuid::from_u128(7)),
            id: MessageId::from_uuid(Uuid::from_u128(8)),
            user,
            emoji: emoji.clone(),
            change,
            at: Timestamp::from_micros(1),
            limits: ReactionLimits {
                max_emoji: 2,
                users_shown: 2,
            },
        }
    }

    /// Applies a change the way a store does: holdings from `held`, the next holder from
    /// `held` when asked for. Answers the emoji's count after it, or `None` when unchanged.
    fn apply(
        summary: &mut Vec<Reaction>,
        held: &mut Vec<(Emoji, UserId)>,
        request: &ReactionRequest,
    ) -> Result<Option<i64>> {
        let holds = held.contains(&(request.emoji.clone(), request.user));
        let next = needs_next_holder(summary, request)
            .then(|| {
                let shown = shown(summary, &request.emoji);
                held.iter()
                    .find(|(e, u)| *e == request.emoji && *u != request.user && !shown.contains(u))
                    .map(|(_, u)| *u)
            })
            .flatten();
        match plan(summary, holds, next, request)? {
            Plan::Unchanged => Ok(None),
            Plan::Changed {
                summary: after,
                count,
                event,
            } => {
                let expected = match request.change {
                    ReactionChange::Add => codec::REACTION_ADDED,
                    ReactionChange::Remove => codec::REACTION_REMOVED,
                };
                assert_eq!(event.kind, expected);
                *summary = after;
                match request.change {
                    ReactionChange::Add => held.push((request.emoji.clone(), request.user)),
                    ReactionChange::Remove => {
                        held.retain(|h| *h != (request.emoji.clone(), request.user))
                    }
                }
                Ok(Some(count))
            }
        }
    }

    #[test]
    fn a_summary_lists_the_first_holders_and_counts_them_all() {
        use ReactionChange::{Add, Remove};
        let up = Emoji::parse("👍").unwrap();
        let heart = Emoji::parse("❤️").unwrap();
        let (mut s, mut held) = (Vec::new(), Vec::new());
        let mut go = |emoji: &Emoji, u: u128, change| {
            apply(&mut s, &mut held, &request(emoji, user(u), change))
        };
        assert_eq!(go(&up, 1, Add).unwrap(), Some(1));
        assert_eq!(go(&heart, 2, Add).unwrap(), Some(1));
        assert_eq!(go(&up, 3, Add).unwrap(), Some(2));
        assert_eq!(go(&up, 4, Add).unwrap(), Some(3));
        assert_eq!(go(&up, 4, Add).unwrap(), None, "a repeat changes nothing");
        assert_eq!(go(&heart, 9, Remove).unwrap(), None, "not held: nothing");
        let third = Emoji::parse(":x:").unwrap();
        assert!(matches!(
            go(&third, 1, Add),
            Err(Error::TooManyReactions { max: 2 })
        ));
        // A listed holder leaves: the next holder takes the place.
        assert_eq!(go(&up, 1, Remove).unwrap(), Some(2));
        // The last holder of an emoji leaves: the emoji goes, and a new one comes last.
        assert_eq!(go(&heart, 2, Remove).unwrap(), Some(0));
        assert_eq!(go(&heart, 9, Add).unwrap(), Some(1));
        assert_eq!(s[0].users, [user(3), user(4)]);
        assert_eq!((s.len(), &s[1].emoji), (2, &heart));
        let back = summary_from_json(&summary_to_json(&s)).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn the_summary_tells_whether_a_user_holds_only_when_it_can() {
        let up = Emoji::parse("👍").unwrap();
        let summary = vec![Reaction {
            emoji: up.clone(),
            count: 3,
            users: vec![user(1)],
        }];
        let of =
            |u, e: &Emoji| holds_by_summary(&summary, &request(e, user(u), ReactionChange::Add));
        assert_eq!(of(1, &up), Some(true));
        assert_eq!(of(2, &up), None, "held by others the list does not show");
        assert_eq!(of(2, &Emoji::parse("❤️").unwrap()), Some(false));
    }

    #[test]
    fn a_reactors_page_says_where_the_next_begins() {
        let emoji = Emoji::parse("👍").unwrap();
        let two = ReactorsLimit::new(2).unwrap();
        let page = Reactors::from_overfetch(emoji.clone(), 3, vec![user(1), user(2), user(3)], two);
        assert_eq!(page.users, [user(1), user(2)]);
        assert_eq!(page.next, Some(user(2)));
        let last = Reactors::from_overfetch(emoji, 3, vec![user(3)], two);
        assert_eq!(last.next, None);
        assert!(ReactorsLimit::parse("0").is_err());
        assert!(ReactorsLimit::parse("1001").is_err());
        assert_eq!(ReactorsLimit::parse("1000").unwrap().get(), 1_000);
    }
}
