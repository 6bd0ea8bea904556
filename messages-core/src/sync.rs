//! The per-thread sequence and what is read by it: the changes feed, and the window of
//! messages around one.
//!
//! Every write of a thread (create, edit, delete) takes the next number of the thread's
//! sequence in the same transaction as the write, and the numbers become visible in that
//! order: a reader that has seen number N has seen every change numbered up to N. A message's
//! `seq` is the number its creation took and orders pages; its `rev` is the number of its
//! latest change and orders the changes feed. How each store keeps that promise is said where
//! it does (`storage::memory`, `storage::postgres`).

use crate::error::{Error, Result};
use crate::message::{Message, MessageId, Tombstone};
use crate::page::write_position;

/// Event type of a message's creation.
pub const CREATED: &str = "message.created";
/// Event type of an edit.
pub const UPDATED: &str = "message.updated";
/// Event type of a deletion.
pub const DELETED: &str = "message.deleted";

/// One message's latest change, as the changes feed gives it: the message in its current
/// state, or its tombstone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A live message: created (when `rev == seq`) or edited since.
    Message(Message),
    /// A deleted message.
    Deleted(Tombstone),
}

impl Change {
    /// The number of this change.
    pub fn rev(&self) -> i64 {
        match self {
            Change::Message(m) => m.rev,
            Change::Deleted(t) => t.rev,
        }
    }

    /// The number the message's creation took.
    pub fn seq(&self) -> i64 {
        match self {
            Change::Message(m) => m.seq,
            Change::Deleted(t) => t.seq,
        }
    }

    /// The message's id.
    pub fn id(&self) -> MessageId {
        match self {
            Change::Message(m) => m.id,
            Change::Deleted(t) => t.id,
        }
    }

    /// The event type that announces the change: `message.created` while the creation is the
    /// message's latest change, `message.updated` after an edit, `message.deleted` for a
    /// tombstone. A client that never saw a message may get its `updated` first: it adds it.
    pub fn kind(&self) -> &'static str {
        match self {
            Change::Message(m) if m.rev == m.seq => CREATED,
            Change::Message(_) => UPDATED,
            Change::Deleted(_) => DELETED,
        }
    }

    /// Appends the change's JSON: the message, or the tombstone.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Change::Message(m) => m.write_json(out),
            Change::Deleted(t) => t.write_json(out),
        }
    }
}

/// How many changes a read of the feed returns: 1 to 1,000, 200 by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChangesLimit(u16);

impl ChangesLimit {
    /// The largest batch a client may ask for.
    pub const MAX: u16 = 1_000;
    /// The batch size when the client names none.
    pub const DEFAULT: ChangesLimit = ChangesLimit(200);

    /// Parses the `limit` query parameter: decimal digits only, 1 to 1,000.
    pub fn parse(s: &str) -> Result<Self> {
        let invalid = || Error::invalid("limit", "must be an integer from 1 to 1000");
        if s.is_empty() || s.len() > 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        match s.parse::<u16>() {
            Ok(n) if (1..=Self::MAX).contains(&n) => Ok(ChangesLimit(n)),
            _ => Err(invalid()),
        }
    }

    /// The limit as a count.
    pub fn get(self) -> usize {
        usize::from(self.0)
    }

    /// `n`, brought into 1..=1000.
    pub fn clamped(n: usize) -> Self {
        ChangesLimit(n.clamp(1, usize::from(Self::MAX)) as u16)
    }
}

impl Default for ChangesLimit {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Parses a position the client holds (`since`, `before_seq`, `after_seq`): a non-negative
/// decimal integer.
pub fn parse_position(field: &'static str, s: &str) -> Result<i64> {
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::invalid(field, "must be a non-negative integer"));
    }
    s.parse()
        .map_err(|_| Error::invalid(field, "must be a non-negative integer"))
}

/// A read of the changes feed: every message whose `rev` is past the client's position, in
/// `rev` order, and where to read from next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Changes {
    /// The changes, ordered by `rev`.
    pub changes: Vec<Change>,
    /// What to pass as `since` next time: the last change's `rev` when there is more, else
    /// the thread's position (the position asked for, when nothing changed).
    pub next: i64,
    /// Whether more changes follow `next` already.
    pub has_more: bool,
}

impl Changes {
    /// Builds a read from rows ordered by `rev` and read with `limit + 1`, `head` being the
    /// thread's position in the same snapshot.
    pub fn from_overfetch(mut rows: Vec<Change>, since: i64, head: i64, limit: usize) -> Self {
        let has_more = rows.len() > limit;
        rows.truncate(limit);
        let next = match rows.last() {
            Some(last) if has_more => last.rev(),
            _ => head.max(since),
        };
        Changes {
            changes: rows,
            next,
            has_more,
        }
    }

    /// `{"changes":[...],"next":N,"has_more":B}`.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.changes.len() * 320);
        out.extend_from_slice(b"{\"changes\":[");
        for (i, change) in self.changes.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            change.write_json(&mut out);
        }
        out.extend_from_slice(b"],\"next\":");
        write_position(&mut out, self.next);
        out.extend_from_slice(if self.has_more {
            b",\"has_more\":true}"
        } else {
            b",\"has_more\":false}"
        });
        out
    }
}

/// The messages around one: up to `half` live messages on each side of it, oldest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Around {
    /// The messages before the anchor, the anchor itself unless it was deleted, and those
    /// after it, oldest first.
    pub items: Vec<Message>,
    /// Whether live messages older than the first item exist.
    pub has_more_before: bool,
    /// Whether live messages newer than the last item exist.
    pub has_more_after: bool,
    /// The thread's position the answer reflects.
    pub rev: i64,
}

impl Around {
    /// Builds the answer from the rows read with `half + 1` on each side: `before` newest
    /// first, `after` oldest first, and the anchor if it is live.
    pub fn from_overfetch(
        mut before: Vec<Message>,
        anchor: Option<Message>,
        mut after: Vec<Message>,
        half: usize,
        rev: i64,
    ) -> Self {
        let has_more_before = before.len() > half;
        before.truncate(half);
        let has_more_after = after.len() > half;
        after.truncate(half);
        before.reverse();
        let mut items = before;
        items.extend(anchor);
        items.extend(after);
        Around {
            items,
            has_more_before,
            has_more_after,
            rev,
        }
    }

    /// `{"items":[...],"has_more_before":B,"has_more_after":B,"rev":N}`.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(96 + self.items.len() * 320);
        out.extend_from_slice(b"{\"items\":[");
        for (i, message) in self.items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            message.write_json(&mut out);
        }
        out.extend_from_slice(b"],\"has_more_before\":");
        out.extend_from_slice(if self.has_more_before {
            b"true"
        } else {
            b"false"
        });
        out.extend_from_slice(b",\"has_more_after\":");
        out.extend_from_slice(if self.has_more_after {
            b"true"
        } else {
            b"false"
        });
        out.extend_from_slice(b",\"rev\":");
        write_position(&mut out, self.rev);
        out.push(b'}');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_positions_parse_strictly() {
        assert_eq!(ChangesLimit::parse("1").unwrap().get(), 1);
        assert_eq!(ChangesLimit::parse("1000").unwrap().get(), 1_000);
        for bad in ["", "0", "1001", "-1", "+1", "1e3", "abc", "10000"] {
            assert!(ChangesLimit::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_position("since", "0").unwrap(), 0);
        assert_eq!(
            parse_position("since", "9223372036854775807").unwrap(),
            i64::MAX
        );
        for bad in ["", "-1", "+1", "1.5", "9223372036854775808", "x", " 1"] {
            assert!(parse_position("since", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn next_is_always_a_position_to_read_from() {
        let none = Changes::from_overfetch(vec![], 7, 7, 10);
        assert_eq!((none.next, none.has_more), (7, false));
        // A client ahead of the thread (it kept a position from elsewhere) keeps its own.
        let ahead = Changes::from_overfetch(vec![], 9, 7, 10);
        assert_eq!(ahead.next, 9);
        let json: serde_json::Value = serde_json::from_slice(&none.to_json()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"changes": [], "next": 7, "has_more": false})
        );
    }
}
