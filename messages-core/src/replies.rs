//! Reply threads: a root's summary of its replies, and the rules that change it.
//!
//! A root is a message with no `reply_to`. A reply names the message it answers in `reply_to`
//! and the conversation it belongs to in `root_id`: the root itself, or, for a reply to a
//! reply, that reply's root (one level, as Slack and Matrix do). A root's `replies` summary
//! counts its live replies and names the last one and the users who replied most recently.
//!
//! The summary is a change of the root like an edit: a reply takes the thread's next number
//! N, and the root's new summary N+1, in the same transaction, with an event of its own
//! (`replies.updated`). Replies to one root that a store commits together take their numbers
//! first, and the root one number after them all, its summary after every one of them. A
//! deleted reply is numbered first, the root's recounted summary after it. A root that is itself deleted keeps no summary and takes no number. Every store
//! decides the summary with the functions here and only reads and writes.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::json::write_open;
use crate::message::{Message, MessageId, ReplySummary, ThreadId, Timestamp, UserId};
use crate::storage::OutboxEvent;

/// Event type of a root whose replies changed.
pub const REPLIES_UPDATED: &str = "replies.updated";

/// How many participants a summary names: 1 to [`Participants::MAX`], 5 by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Participants(usize);

impl Participants {
    /// The most participants a summary may name.
    pub const MAX: usize = 20;
    /// The default.
    pub const DEFAULT: Participants = Participants(5);

    /// `n` participants; `Error::Invalid` (field `participants`) outside 1 to [`Self::MAX`].
    pub fn new(n: usize) -> Result<Self> {
        if (1..=Self::MAX).contains(&n) {
            Ok(Participants(n))
        } else {
            Err(Error::invalid(
                "participants",
                format!("must be from 1 to {}", Self::MAX),
            ))
        }
    }

    /// The number.
    pub fn get(self) -> usize {
        self.0
    }
}

impl Default for Participants {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The root of the conversation a reply to `target` belongs to: the target's own root when
/// the target is a reply, else the target.
pub fn root_of(target: &Message) -> MessageId {
    target.root_id.unwrap_or(target.id)
}

/// The root's summary after `reply` was added to it: one more, the reply the last, its author
/// the first participant.
pub fn after_reply(
    summary: Option<&ReplySummary>,
    reply: &Message,
    participants: Participants,
) -> ReplySummary {
    let mut users = Vec::with_capacity(participants.get());
    users.push(reply.user_id);
    if let Some(summary) = summary {
        users.extend(
            summary
                .participants
                .iter()
                .copied()
                .filter(|u| *u != reply.user_id),
        );
    }
    users.truncate(participants.get());
    ReplySummary {
        count: summary.map_or(0, |s| s.count) + 1,
        last_reply_at: reply.created_at,
        last_reply_id: reply.id,
        participants: users,
    }
}

/// One live reply, as a recount reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveReply {
    /// The reply.
    pub id: MessageId,
    /// Its author.
    pub user_id: UserId,
    /// When it was written.
    pub created_at: Timestamp,
}

/// A root's summary counted again from its live replies, given newest first (every one of
/// them: the count is exact); `None` when none is left.
pub fn recount(
    newest_first: impl IntoIterator<Item = LiveReply>,
    participants: Participants,
) -> Option<ReplySummary> {
    let mut replies = newest_first.into_iter();
    let last = replies.next()?;
    let mut users = vec![last.user_id];
    let mut count = 1;
    for reply in replies {
        count += 1;
        if users.len() < participants.get() && !users.contains(&reply.user_id) {
            users.push(reply.user_id);
        }
    }
    Some(ReplySummary {
        count,
        last_reply_at: last.created_at,
        last_reply_id: last.id,
        participants: users,
    })
}

/// A root's replies changed, as the event announces it before the store numbers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RepliesChanged {
    /// The root.
    pub message_id: MessageId,
    /// Its thread.
    pub thread_id: ThreadId,
    /// Its summary after the change (`null` once no live reply is left).
    pub replies: Option<ReplySummary>,
    /// When the change happened.
    pub changed_at: Timestamp,
}

impl RepliesChanged {
    /// The change of `root` (in its new state, summary included) at `at`.
    pub fn of(root: &Message, at: Timestamp) -> Self {
        RepliesChanged {
            message_id: root.id,
            thread_id: root.thread_id,
            replies: root.replies.as_deref().cloned(),
            changed_at: at,
        }
    }

    /// Its event, not yet numbered: `{"message_id", "thread_id", "replies", "changed_at",
    /// "seq", "rev"}` once the store closes it, `seq` the root's and `rev` the change's.
    pub fn event(&self) -> OutboxEvent {
        let mut open_payload = Vec::with_capacity(256);
        write_open(self, &mut open_payload);
        OutboxEvent {
            id: Uuid::now_v7(),
            kind: REPLIES_UPDATED,
            thread_id: self.thread_id,
            time: self.changed_at,
            open_payload,
        }
    }
}

/// The body of a `replies.updated` event, as a consumer decodes it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct RepliesBody {
    /// The root.
    pub message_id: MessageId,
    /// Its thread.
    pub thread_id: ThreadId,
    /// Its summary after the change.
    pub replies: Option<ReplySummary>,
    /// When the change happened.
    pub changed_at: Timestamp,
    /// The root's `seq`.
    pub seq: i64,
    /// The change's number.
    pub rev: i64,
}

/// Where a root stands after a write that touched its replies: the new summary on the root,
/// numbered `rev`, and its event. A store calls it once it has the root's number.
pub fn renumber_root(
    root: &mut Message,
    summary: Option<ReplySummary>,
    rev: i64,
    at: Timestamp,
) -> OutboxEvent {
    root.replies = summary.map(Box::new);
    root.rev = rev;
    RepliesChanged::of(root, at).event()
}

/// A stored summary read back from its columns: a root with no live reply stores a count of
/// 0 and no last reply.
pub fn summary_from_columns(
    count: i64,
    last_reply_at: Option<Timestamp>,
    last_reply_id: Option<MessageId>,
    participants: Vec<UserId>,
) -> Result<Option<ReplySummary>> {
    match (count, last_reply_at, last_reply_id) {
        (0, _, _) => Ok(None),
        (count, Some(last_reply_at), Some(last_reply_id)) if count > 0 => Ok(Some(ReplySummary {
            count,
            last_reply_at,
            last_reply_id,
            participants,
        })),
        _ => Err(Error::internal(
            "decode replies",
            format!("a summary of {count} replies without its last reply"),
        )),
    }
}

/// The participants as stored: each id's 32 hex digits, comma-separated (as SQLite's
/// migration writes them too).
pub fn participants_to_text(users: &[UserId]) -> String {
    let mut out = String::with_capacity(users.len() * 33);
    for (i, u) in users.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&u.as_uuid().simple().to_string());
    }
    out
}

/// Stored participants read back.
pub fn participants_from_text(text: &str) -> Result<Vec<UserId>> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|id| {
            Uuid::parse_str(id)
                .map(UserId::from_uuid)
                .map_err(|e| Error::internal("decode participants", e))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Limits, MessageKind, NewMessage, Timestamp};

    fn user() -> UserId {
        UserId::from_uuid(Uuid::new_v4())
    }

    fn reply(user: UserId, micros: i64) -> Message {
        let new = NewMessage::new(MessageKind::Text, "hi".into(), vec![], &Limits::default());
        Message::from_new(
            MessageId::new_v7(),
            ThreadId::from_uuid(Uuid::new_v4()),
            user,
            new.unwrap(),
            Timestamp::checked_from_micros(micros).unwrap(),
        )
    }

    #[test]
    fn a_reply_puts_its_author_first_once_and_keeps_at_most_the_setting() {
        let n = Participants::new(2).unwrap();
        let (a, b, c) = (user(), user(), user());
        let s = after_reply(None, &reply(a, 1), n);
        assert_eq!((s.count, s.participants.clone()), (1, vec![a]));
        let s = after_reply(Some(&s), &reply(b, 2), n);
        assert_eq!(s.participants, vec![b, a]);
        let s = after_reply(Some(&s), &reply(a, 3), n);
        assert_eq!(s.participants, vec![a, b]);
        let last = reply(c, 4);
        let s = after_reply(Some(&s), &last, n);
        assert_eq!((s.count, s.participants.clone()), (4, vec![c, a]));
        assert_eq!(
            (s.last_reply_id, s.last_reply_at),
            (last.id, last.created_at)
        );
    }

    #[test]
    fn a_recount_counts_every_reply_and_names_the_newest() {
        let (a, b) = (user(), user());
        let live: Vec<LiveReply> = [(a, 3), (a, 2), (b, 1)]
            .into_iter()
            .map(|(u, t)| {
                let m = reply(u, t);
                LiveReply {
                    id: m.id,
                    user_id: u,
                    created_at: m.created_at,
                }
            })
            .collect();
        let s = recount(live.clone(), Participants::DEFAULT).unwrap();
        assert_eq!(s.count, 3);
        assert_eq!(s.last_reply_id, live[0].id);
        assert_eq!(s.participants, vec![a, b]);
        assert_eq!(recount(Vec::new(), Participants::DEFAULT), None);
    }

    #[test]
    fn participants_survive_their_stored_text() {
        let users = vec![user(), user()];
        let text = participants_to_text(&users);
        assert_eq!(participants_from_text(&text).unwrap(), users);
        assert_eq!(participants_from_text("").unwrap(), Vec::<UserId>::new());
        assert!(participants_from_text("nope").is_err());
    }

    #[test]
    fn participants_outside_their_range_are_refused() {
        assert!(Participants::new(0).is_err());
        assert!(Participants::new(Participants::MAX + 1).is_err());
        assert_eq!(Participants::new(5).unwrap(), Participants::DEFAULT);
    }
}
