//! The message model: ids, kinds, validated input (`NewMessage`, `MessagePatch`), time, and
//! `Message`, the stored message as clients see it.
//!
//! Every type here checks its input when it is built, so a value that exists is valid and the
//! rest of the crate never validates again.
//!
//! - `ids`: `ThreadId`, `UserId`, `MessageId`.
//! - `input`: `MessageKind`, `Limits`, `NewMessage`, `MessagePatch`, `IdempotencyKey`,
//!   `RequestFingerprint`.
//! - `reaction`: `Emoji`, `Reaction` (one emoji of a message's summary).
//! - `replies`: `ReplySummary` (what a root shows of its replies).
//! - `mentions`: `Mentions` (whom a message addresses).
//! - `time`: `Timestamp`, `Clock`.

use serde::{Deserialize, Serialize};

use crate::json::{close_numbered, write_open};

mod ids;
mod input;
mod mentions;
mod reaction;
mod replies;
mod time;

pub use ids::{MessageId, ThreadId, UserId};
pub use input::{
    IdempotencyKey, Limits, MessageKind, MessagePatch, NewMessage, RequestFingerprint,
};
pub use mentions::Mentions;
pub use reaction::{Emoji, Reaction};
pub use replies::ReplySummary;
pub use time::{Clock, Timestamp};

/// A stored message as clients see it.
///
/// Its JSON is `{id, thread_id, user_id, type, content, paths, created_at, updated_at,
/// reply_to, root_id, reactions, replies, mentions?, seq, rev}`, in that order (`mentions`
/// only when the message has some): the numbers come last, so an event's body can be encoded before the
/// store has numbered the change and closed once it has (see `Message::write_open_json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The message's id.
    pub id: MessageId,
    /// The thread it belongs to.
    pub thread_id: ThreadId,
    /// Its author.
    pub user_id: UserId,
    /// Its kind, serialised as `type`.
    #[serde(rename = "type")]
    pub kind: MessageKind,
    /// The text.
    pub content: String,
    /// Attached file paths.
    pub paths: Vec<String>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was last edited (equal to `created_at` until then; a reaction is no edit).
    pub updated_at: Timestamp,
    /// The message of the same thread this one replies to. It stays when that message is
    /// deleted later (clients show "deleted message").
    #[serde(default)]
    pub reply_to: Option<MessageId>,
    /// The root of the reply conversation this message belongs to (see `replies`): the
    /// message `reply_to` names, or that message's root when it is a reply itself; `None` for
    /// a root. Set by the store that creates the reply; it never changes.
    #[serde(default)]
    pub root_id: Option<MessageId>,
    /// Each emoji users reacted with, in the order each was first used, with its count and
    /// first users (see [`Reaction`]).
    #[serde(default)]
    pub reactions: Vec<Reaction>,
    /// What the message shows of its live replies when it is a root with any (`null`
    /// otherwise); a change of it is numbered like an edit (see `replies`).
    #[serde(default)]
    pub replies: Option<Box<ReplySummary>>,
    /// Whom the message addresses (see [`Mentions`]); `None`, and absent from its JSON, when
    /// no one. An edit replaces them; a deleted message mentions no one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mentions: Option<Mentions>,
    /// The thread's number its creation took; it orders pages and never changes. 0 until a
    /// store has numbered the message.
    pub seq: i64,
    /// The thread's number of the message's latest change (its creation, its latest edit or
    /// reaction change); it orders the changes feed. 0 until a store has numbered the message.
    pub rev: i64,
}

/// The fields of a message before its numbers, as [`Message`] serialises them.
#[derive(Serialize)]
struct MessageHead<'a> {
    id: MessageId,
    thread_id: ThreadId,
    user_id: UserId,
    #[serde(rename = "type")]
    kind: MessageKind,
    content: &'a str,
    paths: &'a [String],
    created_at: Timestamp,
    updated_at: Timestamp,
    reply_to: Option<MessageId>,
    root_id: Option<MessageId>,
    reactions: &'a [Reaction],
    replies: Option<&'a ReplySummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mentions: Option<&'a Mentions>,
}

impl Message {
    /// Builds a message from validated input, an id and a time; a store numbers it.
    pub fn from_new(
        id: MessageId,
        thread_id: ThreadId,
        user_id: UserId,
        new: NewMessage,
        now: Timestamp,
    ) -> Self {
        let (kind, content, paths, reply_to, mentions) = new.into_parts();
        Message {
            id,
            thread_id,
            user_id,
            kind,
            content,
            paths,
            created_at: now,
            updated_at: now,
            reply_to,
            root_id: None,
            reactions: Vec::new(),
            replies: None,
            mentions: mentions.and_then(|m| m.of_author(user_id)),
            seq: 0,
            rev: 0,
        }
    }

    /// A message with neither text nor paths, which no write may leave behind.
    pub fn is_blank(&self) -> bool {
        self.content.trim().is_empty() && self.paths.is_empty()
    }

    /// The message as response JSON.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(320);
        self.write_json(&mut out);
        out
    }

    /// Appends the message's response JSON to `out`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        self.write_open_json(out);
        close_numbered(out, self.seq, self.rev);
    }

    /// Appends the message's JSON up to, not including, its numbers: what the service hands
    /// a store, which closes it once the change is numbered.
    pub(crate) fn write_open_json(&self, out: &mut Vec<u8>) {
        write_open(
            &MessageHead {
                id: self.id,
                thread_id: self.thread_id,
                user_id: self.user_id,
                kind: self.kind,
                content: &self.content,
                paths: &self.paths,
                created_at: self.created_at,
                updated_at: self.updated_at,
                reply_to: self.reply_to,
                root_id: self.root_id,
                reactions: &self.reactions,
                replies: self.replies.as_deref(),
                mentions: self.mentions.as_ref(),
            },
            out,
        );
    }
}

/// What is left of a deleted message: enough to remove it from a client's view.
///
/// Its JSON is `{id, thread_id, deleted_at, deleted_by?, reason?, seq, rev}`, numbers last as
/// for [`Message`]; `deleted_by` is there when someone other than the author (a moderator)
/// removed it, `reason` when one was given.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    /// The deleted message.
    pub id: MessageId,
    /// Its thread.
    pub thread_id: ThreadId,
    /// When it was deleted.
    pub deleted_at: Timestamp,
    /// Who removed it, when not its author.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_by: Option<UserId>,
    /// Why, when the remover said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The number its creation took.
    pub seq: i64,
    /// The number its deletion took.
    pub rev: i64,
}

/// The fields of a tombstone before its numbers.
#[derive(Serialize)]
struct TombstoneHead<'a> {
    id: MessageId,
    thread_id: ThreadId,
    deleted_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    deleted_by: Option<UserId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

impl Tombstone {
    /// The tombstone as JSON.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        self.write_json(&mut out);
        out
    }

    /// Appends the tombstone's JSON to `out`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        self.write_open_json(out);
        close_numbered(out, self.seq, self.rev);
    }

    /// Appends the tombstone's JSON up to, not including, its numbers.
    pub(crate) fn write_open_json(&self, out: &mut Vec<u8>) {
        write_open(
            &TombstoneHead {
                id: self.id,
                thread_id: self.thread_id,
                deleted_at: self.deleted_at,
                deleted_by: self.deleted_by,
                reason: self.reason.as_deref(),
            },
            out,
        );
    }
}

/// A valid text message for unit tests: a new id, nil thread and author, time 1 µs.
#[cfg(test)]
pub(crate) fn sample_text(text: &str) -> Message {
    let new = NewMessage::new(MessageKind::Text, text.into(), vec![], &Limits::default())
        .expect("a valid text");
    Message::from_new(
        MessageId::new_v7(),
        ThreadId::from_uuid(uuid::Uuid::nil()),
        UserId::from_uuid(uuid::Uuid::nil()),
        new,
        Timestamp::from_micros(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use chrono::{DateTime, Utc};
    use uuid::Uuid;

    #[test]
    fn ids_accept_uuids_only() {
        assert!(ThreadId::parse("67e55044-10b1-426f-9247-bb680e5fe0c8").is_ok());
        for bad in [
            "",
            "x",
            "67e55044-10b1-426f-9247",
            "67e55044-10b1-426f-9247-bb680e5fe0c8x",
        ] {
            assert!(matches!(
                ThreadId::parse(bad),
                Err(Error::Invalid {
                    field: "thread_id",
                    ..
                })
            ));
        }
    }

    #[test]
    fn content_and_paths_are_bounded() {
        let limits = Limits::default();
        let ok = NewMessage::new(MessageKind::Text, "a".repeat(4_000), vec![], &limits);
        assert!(ok.is_ok());
        let long = NewMessage::new(MessageKind::Text, "a".repeat(4_001), vec![], &limits);
        assert!(matches!(
            long,
            Err(Error::Invalid {
                field: "content",
                ..
            })
        ));
        // Characters, not bytes: 4,000 two-byte characters fit.
        assert!(NewMessage::new(MessageKind::Text, "é".repeat(4_000), vec![], &limits).is_ok());
        let many = NewMessage::new(MessageKind::File, "x".into(), vec!["p".into(); 17], &limits);
        assert!(matches!(many, Err(Error::Invalid { field: "paths", .. })));
        let long_path = NewMessage::new(
            MessageKind::File,
            "x".into(),
            vec!["p".repeat(1_025)],
            &limits,
        );
        assert!(matches!(
            long_path,
            Err(Error::Invalid { field: "paths", .. })
        ));
        let blank = NewMessage::new(MessageKind::Text, "  ".into(), vec![], &limits);
        assert!(matches!(
            blank,
            Err(Error::Invalid {
                field: "content",
                ..
            })
        ));
        assert!(
            NewMessage::new(
                MessageKind::File,
                String::new(),
                vec!["a.png".into()],
                &limits
            )
            .is_ok()
        );
    }

    #[test]
    fn empty_patch_is_refused() {
        assert!(MessagePatch::new(None, None, &Limits::default()).is_err());
    }

    #[test]
    fn idempotency_keys_are_visible_ascii() {
        assert!(IdempotencyKey::parse("abc-123_X").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(128)).is_ok());
        for bad in ["", "has space", "tab\t", "é", &"k".repeat(129)] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn fingerprint_separates_fields() {
        let l = Limits::default();
        let a = NewMessage::new(MessageKind::Text, "ab".into(), vec!["c".into()], &l).unwrap();
        let b = NewMessage::new(MessageKind::Text, "a".into(), vec!["bc".into()], &l).unwrap();
        assert_ne!(RequestFingerprint::of(&a), RequestFingerprint::of(&b));
        assert_eq!(
            RequestFingerprint::of(&a),
            RequestFingerprint::of(&a.clone())
        );
    }

    #[test]
    fn the_accepted_range_is_years_1_to_9999() {
        assert_eq!(Timestamp::MIN.to_rfc3339(), "0001-01-01T00:00:00.000000Z");
        assert_eq!(Timestamp::MAX.to_rfc3339(), "9999-12-31T23:59:59.999999Z");
        assert!(Timestamp::checked_from_micros(Timestamp::MIN.as_micros()).is_some());
        assert!(Timestamp::checked_from_micros(Timestamp::MAX.as_micros()).is_some());
        assert!(Timestamp::checked_from_micros(Timestamp::MIN.as_micros() - 1).is_none());
        assert!(Timestamp::checked_from_micros(Timestamp::MAX.as_micros() + 1).is_none());
        assert!(Timestamp::checked_from_micros(i64::MIN).is_none());
        // Beyond chrono's range: saturates instead of jumping to the other end.
        assert_eq!(
            Timestamp::from_micros(i64::MAX).to_datetime(),
            DateTime::<Utc>::MAX_UTC
        );
        assert_eq!(
            Timestamp::from_micros(i64::MIN).to_datetime(),
            DateTime::<Utc>::MIN_UTC
        );
    }

    #[test]
    fn clock_never_goes_back_and_json_uses_micros() {
        let clock = Clock::new();
        let a = clock.now();
        let b = clock.now();
        assert!(b >= a);
        assert_eq!(
            Timestamp::from_micros(1_700_000_000_123_456).to_rfc3339(),
            "2023-11-14T22:13:20.123456Z"
        );
    }

    #[test]
    fn open_json_closed_with_the_numbers_is_the_json() {
        let l = Limits::default();
        let new = NewMessage::new(
            MessageKind::File,
            "quote \" and é".into(),
            vec!["a.pdf".into()],
            &l,
        )
        .unwrap();
        let mut m = Message::from_new(
            MessageId::new_v7(),
            ThreadId::from_uuid(Uuid::now_v7()),
            UserId::from_uuid(Uuid::now_v7()),
            new,
            Timestamp::from_micros(1_764_000_000_000_001),
        );
        for (seq, rev) in [(0, 0), (1, 1), (7, 9_000_000_000), (i64::MAX, i64::MAX)] {
            m.seq = seq;
            m.rev = rev;
            let mut open = Vec::new();
            m.write_open_json(&mut open);
            close_numbered(&mut open, seq, rev);
            assert_eq!(open, serde_json::to_vec(&m).unwrap(), "seq {seq} rev {rev}");
            let t = Tombstone {
                id: m.id,
                thread_id: m.thread_id,
                deleted_at: m.updated_at,
                deleted_by: None,
                reason: None,
                seq,
                rev,
            };
            let mut open = Vec::new();
            t.write_open_json(&mut open);
            close_numbered(&mut open, seq, rev);
            assert_eq!(open, serde_json::to_vec(&t).unwrap());
            let removed = Tombstone {
                deleted_by: Some(m.user_id),
                reason: Some("spam \"quoted\"".into()),
                ..t
            };
            let mut open = Vec::new();
            removed.write_open_json(&mut open);
            close_numbered(&mut open, seq, rev);
            assert_eq!(open, serde_json::to_vec(&removed).unwrap());
        }
    }

    #[test]
    fn message_json_has_the_documented_fields() {
        let l = Limits::default();
        let new =
            NewMessage::new(MessageKind::Audio, "hi".into(), vec!["a.ogg".into()], &l).unwrap();
        let thread = ThreadId::from_uuid(Uuid::nil());
        let user = UserId::from_uuid(Uuid::max());
        let m = Message::from_new(
            MessageId::new_v7(),
            thread,
            user,
            new,
            Timestamp::from_micros(0),
        );
        let v: serde_json::Value = serde_json::from_slice(&m.to_json()).unwrap();
        assert_eq!(v["type"], "audio");
        assert_eq!(v["thread_id"], "00000000-0000-0000-0000-000000000000");
        assert_eq!(v["created_at"], "1970-01-01T00:00:00.000000Z");
        assert_eq!(v["paths"], serde_json::json!(["a.ogg"]));
        assert_eq!(v["seq"], 0);
        assert_eq!(v["rev"], 0);
        let back: Message = serde_json::from_slice(&m.to_json()).unwrap();
        assert_eq!(back, m);
    }
}
