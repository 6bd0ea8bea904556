//! Event encoding: the types, the bodies consumers receive, and a decode for consumers.
//!
//! A created or updated event carries the message JSON exactly as the HTTP API returns it (the
//! body consumers of the old service read, with `seq` and `rev` added); a deleted event
//! carries the tombstone `{"id", "thread_id", "deleted_at", "seq", "rev"}`; a reaction event
//! (`reaction.added`, `reaction.removed`) carries `{"message_id", "thread_id", "user_id",
//! "emoji", "count", "reacted_at", "seq", "rev"}`, where `count` is how many users hold the
//! emoji after the change, `seq` the message's and `rev` the change's number, so a consumer
//! that indexes content can tell a reaction from an edit; `reaction.cleared` carries
//! `{"message_id", "thread_id", "cleared_by", "cleared_at", "seq", "rev"}`; `replies.updated`
//! carries `{"message_id", "thread_id", "replies", "changed_at", "seq", "rev"}`: a root's
//! summary after a reply came or went (see `replies`). The service
//! encodes a body up to its numbers; the store closes it once it has numbered the change.

use uuid::Uuid;

pub use crate::changes::{CREATED, DELETED, UPDATED};
use crate::error::{Error, Result};
use crate::json::write_open;
use crate::message::{Emoji, Mentions, Message, MessageId, ThreadId, Timestamp, Tombstone, UserId};
use crate::storage::{OutboxEvent, StoredEvent};

/// A moderator clearing every reaction of a message, as its event announces it before the
/// store numbers it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
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
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
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

/// The body of a deleted event: the tombstone.
pub type Deleted = Tombstone;

/// Event type of a reaction added.
pub const REACTION_ADDED: &str = "reaction.added";
/// Event type of a reaction removed.
pub const REACTION_REMOVED: &str = "reaction.removed";

/// Event type of every reaction of a message cleared by a moderator.
pub const REACTIONS_CLEARED: &str = "reaction.cleared";

/// The body of a `reaction.cleared` event, as a consumer decodes it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct ClearedBody {
    /// The message.
    pub message_id: MessageId,
    /// Its thread.
    pub thread_id: ThreadId,
    /// The moderator who cleared them.
    pub cleared_by: UserId,
    /// When.
    pub cleared_at: Timestamp,
    /// The message's `seq`.
    pub seq: i64,
    /// The change's number, as `cloudEvents:sequence`.
    pub rev: i64,
}

/// The event announcing that a moderator cleared a message's reactions, not yet numbered.
pub fn cleared(event: &ReactionsCleared) -> OutboxEvent {
    let mut open_payload = Vec::with_capacity(192);
    write_open(event, &mut open_payload);
    OutboxEvent {
        id: Uuid::now_v7(),
        kind: REACTIONS_CLEARED,
        thread_id: event.thread_id,
        time: event.cleared_at,
        open_payload,
    }
}

/// The body of a reaction event, as a consumer decodes it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct ReactionBody {
    /// The message reacted to.
    pub message_id: MessageId,
    /// Its thread.
    pub thread_id: ThreadId,
    /// Who added or removed the reaction.
    pub user_id: UserId,
    /// The emoji.
    pub emoji: Emoji,
    /// How many users hold the emoji on the message after the change.
    pub count: i64,
    /// When it happened.
    pub reacted_at: Timestamp,
    /// The message's `seq`.
    pub seq: i64,
    /// The change's number, as `cloudEvents:sequence`.
    pub rev: i64,
}

/// The event announcing a reaction added, not yet numbered.
pub fn reaction_added(event: &ReactionEvent) -> OutboxEvent {
    reaction(event, REACTION_ADDED)
}

/// The event announcing a reaction removed, not yet numbered.
pub fn reaction_removed(event: &ReactionEvent) -> OutboxEvent {
    reaction(event, REACTION_REMOVED)
}

fn reaction(event: &ReactionEvent, kind: &'static str) -> OutboxEvent {
    let mut open_payload = Vec::with_capacity(256);
    write_open(event, &mut open_payload);
    OutboxEvent {
        id: Uuid::now_v7(),
        kind,
        thread_id: event.thread_id,
        time: event.reacted_at,
        open_payload,
    }
}

/// The event announcing `message`, not yet numbered.
pub fn created(message: &Message) -> OutboxEvent {
    let mut open_payload = Vec::with_capacity(320);
    message.write_open_json(&mut open_payload);
    OutboxEvent {
        id: Uuid::now_v7(),
        kind: CREATED,
        thread_id: message.thread_id,
        time: message.created_at,
        open_payload,
    }
}

/// The event announcing an edit; `message` is the message after it, `newly` whom the edit
/// mentions that the version before did not (see `Mentions::new_in`), in the body as
/// `newly_mentioned` (absent when no one), so a notification service pushes each mention once.
pub fn updated(message: &Message, newly: Option<&Mentions>) -> OutboxEvent {
    let mut open_payload = Vec::with_capacity(320);
    message.write_open_json(&mut open_payload);
    if let Some(newly) = newly {
        open_payload.extend_from_slice(b",\"newly_mentioned\":");
        serde_json::to_writer(&mut open_payload, newly)
            .expect("ids and a flag always serialise into memory");
    }
    OutboxEvent {
        id: Uuid::now_v7(),
        kind: UPDATED,
        thread_id: message.thread_id,
        time: message.updated_at,
        open_payload,
    }
}

/// The event announcing a deletion, from the tombstone before its numbers (who removed the
/// message and why ride along when the tombstone carries them).
pub fn deleted(tombstone: &Tombstone) -> OutboxEvent {
    let mut open_payload = Vec::with_capacity(128);
    tombstone.write_open_json(&mut open_payload);
    OutboxEvent {
        id: Uuid::now_v7(),
        kind: DELETED,
        thread_id: tombstone.thread_id,
        time: tombstone.deleted_at,
        open_payload,
    }
}

/// The CloudEvents 1.0 spec version every event declares.
pub const SPEC_VERSION: &str = "1.0";
/// The content type of every body.
pub const CONTENT_TYPE: &str = "application/json";

/// The CloudEvents attributes of an event in binary mode, as AMQP application properties:
/// `cloudEvents:id`, `:source`, `:specversion`, `:type`, `:time`, `:subject` (the thread id)
/// and `:sequence` (the change's `rev`: per thread, without gaps, in commit order, as a
/// decimal string).
pub fn headers(event: &StoredEvent, source: &str) -> [(&'static str, String); 7] {
    [
        ("cloudEvents:id", event.id.to_string()),
        ("cloudEvents:source", source.to_owned()),
        ("cloudEvents:specversion", SPEC_VERSION.to_owned()),
        ("cloudEvents:type", event.kind.clone()),
        ("cloudEvents:time", event.time.to_rfc3339()),
        ("cloudEvents:subject", event.thread_id.to_string()),
        ("cloudEvents:sequence", event.sequence.to_string()),
    ]
}

/// An event as a consumer receives it: its CloudEvents attributes and its decoded body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedEvent {
    /// `cloudEvents:id`: unique per event; de-duplicate by it.
    pub id: Uuid,
    /// `cloudEvents:type`.
    pub kind: String,
    /// `cloudEvents:subject`: the thread.
    pub thread_id: ThreadId,
    /// `cloudEvents:sequence`: the change's `rev`, which orders the events of one thread
    /// without gaps.
    pub sequence: i64,
    /// `cloudEvents:time`.
    pub time: Timestamp,
    /// The body.
    pub body: EventBody,
}

/// Decodes an event from its headers (name → string value) and body, for consumers and tests.
pub fn decode_event<'a>(
    header: impl Fn(&str) -> Option<&'a str>,
    payload: &[u8],
) -> Result<ReceivedEvent> {
    let get = |name: &'static str| {
        header(name).ok_or_else(|| Error::invalid("event", format!("missing header {name}")))
    };
    if get("cloudEvents:specversion")? != SPEC_VERSION {
        return Err(Error::invalid(
            "event",
            "unsupported cloudEvents:specversion",
        ));
    }
    fn bad<E>(name: &'static str) -> impl Fn(E) -> Error {
        move |_| Error::invalid("event", format!("bad header {name}"))
    }
    let kind = get("cloudEvents:type")?.to_owned();
    let time: chrono::DateTime<chrono::Utc> = get("cloudEvents:time")?
        .parse()
        .map_err(bad("cloudEvents:time"))?;
    Ok(ReceivedEvent {
        id: get("cloudEvents:id")?
            .parse()
            .map_err(bad("cloudEvents:id"))?,
        thread_id: ThreadId::parse(get("cloudEvents:subject")?)?,
        sequence: get("cloudEvents:sequence")?
            .parse()
            .map_err(bad("cloudEvents:sequence"))?,
        time: Timestamp::from(time),
        body: decode(&kind, payload)?,
        kind,
    })
}

/// An event's body, decoded by its type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventBody {
    /// A new message.
    Created(Message),
    /// An edited message, after the edit.
    Updated(Message),
    /// A deletion.
    Deleted(Deleted),
    /// A reaction added.
    ReactionAdded(ReactionBody),
    /// A reaction removed.
    ReactionRemoved(ReactionBody),
    /// Every reaction of a message cleared by a moderator.
    ReactionsCleared(ClearedBody),
    /// A root's replies changed: a reply came or went (`replies.updated`).
    RepliesUpdated(crate::replies::RepliesBody),
}

/// Decodes a body given the event's type, for consumers and tests.
pub fn decode(kind: &str, payload: &[u8]) -> Result<EventBody> {
    let bad = |e: serde_json::Error| Error::invalid("event", e.to_string());
    match kind {
        CREATED => serde_json::from_slice(payload)
            .map(EventBody::Created)
            .map_err(bad),
        UPDATED => serde_json::from_slice(payload)
            .map(EventBody::Updated)
            .map_err(bad),
        DELETED => serde_json::from_slice(payload)
            .map(EventBody::Deleted)
            .map_err(bad),
        REACTION_ADDED => serde_json::from_slice(payload)
            .map(EventBody::ReactionAdded)
            .map_err(bad),
        REACTION_REMOVED => serde_json::from_slice(payload)
            .map(EventBody::ReactionRemoved)
            .map_err(bad),
        REACTIONS_CLEARED => serde_json::from_slice(payload)
            .map(EventBody::ReactionsCleared)
            .map_err(bad),
        crate::replies::REPLIES_UPDATED => serde_json::from_slice(payload)
            .map(EventBody::RepliesUpdated)
            .map_err(bad),
        other => Err(Error::invalid("event", format!("unknown type {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Limits, MessageKind, NewMessage, UserId};

    #[test]
    fn events_round_trip_through_headers_and_body() {
        let new =
            NewMessage::new(MessageKind::Text, "hi".into(), vec![], &Limits::default()).unwrap();
        let mut message = Message::from_new(
            MessageId::new_v7(),
            ThreadId::from_uuid(Uuid::now_v7()),
            UserId::from_uuid(Uuid::now_v7()),
            new,
            Timestamp::from_micros(1_764_000_000_000_001),
        );
        message.seq = 41;
        message.rev = 42;
        let reacted = ReactionEvent {
            message_id: message.id,
            thread_id: message.thread_id,
            user_id: message.user_id,
            emoji: Emoji::parse("👍").unwrap(),
            count: 3,
            reacted_at: message.created_at,
        };
        let reaction_body = ReactionBody {
            message_id: message.id,
            thread_id: message.thread_id,
            user_id: message.user_id,
            emoji: Emoji::parse("👍").unwrap(),
            count: 3,
            reacted_at: message.created_at,
            seq: 41,
            rev: 42,
        };
        // Removed by a moderator, with a reason: both ride in the body.
        let removed = Deleted {
            id: message.id,
            thread_id: message.thread_id,
            deleted_at: message.created_at,
            deleted_by: Some(UserId::from_uuid(Uuid::now_v7())),
            reason: Some("spam".into()),
            seq: 0,
            rev: 0,
        };
        for (event, body) in [
            (
                reaction_added(&reacted),
                EventBody::ReactionAdded(reaction_body.clone()),
            ),
            (
                reaction_removed(&reacted),
                EventBody::ReactionRemoved(reaction_body),
            ),
            (
                cleared(&ReactionsCleared {
                    message_id: message.id,
                    thread_id: message.thread_id,
                    cleared_by: removed.deleted_by.unwrap_or(message.user_id),
                    cleared_at: message.created_at,
                }),
                EventBody::ReactionsCleared(ClearedBody {
                    message_id: message.id,
                    thread_id: message.thread_id,
                    cleared_by: removed.deleted_by.unwrap_or(message.user_id),
                    cleared_at: message.created_at,
                    seq: 41,
                    rev: 42,
                }),
            ),
            (created(&message), EventBody::Created(message.clone())),
            (updated(&message, None), EventBody::Updated(message.clone())),
            (
                deleted(&removed),
                EventBody::Deleted(Deleted {
                    seq: 41,
                    rev: 42,
                    ..removed.clone()
                }),
            ),
        ] {
            let stored = StoredEvent {
                position: 7,
                id: event.id,
                kind: event.kind.to_owned(),
                thread_id: event.thread_id,
                time: event.time,
                sequence: 42,
                payload: event.payload(41, 42),
            };
            let headers = headers(&stored, "/messages");
            let got = decode_event(
                |name| {
                    headers
                        .iter()
                        .find(|(n, _)| *n == name)
                        .map(|(_, v)| v.as_str())
                },
                &stored.payload,
            )
            .unwrap();
            assert_eq!(got.id, event.id);
            assert_eq!(got.kind, event.kind);
            assert_eq!(got.thread_id, message.thread_id);
            assert_eq!(got.sequence, 42, "the sequence is the change's rev");
            assert_eq!(got.time, event.time);
            assert_eq!(got.body, body);
        }
        // The created body, closed, is exactly the message JSON the HTTP API returns.
        assert_eq!(created(&message).payload(41, 42), message.to_json());
        assert!(decode_event(|_| None, b"{}").is_err());
    }
}
