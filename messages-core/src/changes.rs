//! The changes feed: every message whose `rev` is past a client's position, in `rev` order,
//! each in its current state (a deleted one as its tombstone), and the event type that
//! announces each change.

use crate::error::{Error, Result};
use crate::json::{write_bool, write_list, write_position};
use crate::message::{Message, MessageId, Tombstone};

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
    pub(crate) fn from_overfetch(
        mut rows: Vec<Change>,
        since: i64,
        head: i64,
        limit: usize,
    ) -> Self {
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
        write_list(&mut out, &self.changes, Change::write_json);
        out.extend_from_slice(b"],\"next\":");
        write_position(&mut out, self.next);
        out.extend_from_slice(b",\"has_more\":");
        write_bool(&mut out, self.has_more);
        out.push(b'}');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_strictly() {
        assert_eq!(ChangesLimit::parse("1").unwrap().get(), 1);
        assert_eq!(ChangesLimit::parse("1000").unwrap().get(), 1_000);
        for bad in ["", "0", "1001", "-1", "+1", "1e3", "abc", "10000"] {
            assert!(ChangesLimit::parse(bad).is_err(), "{bad:?}");
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
