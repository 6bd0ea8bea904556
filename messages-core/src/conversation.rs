//! Reply conversations as each user follows them: whether they follow a root, their read
//! position in its replies, how many replies are unread after it, and the inbox of the
//! conversations they follow, the most recent reply first.
//!
//! Following is private state like a read position: no number, no event. A user follows a
//! root when they write it (from its first reply on), when they reply to it (their position
//! moves to their reply: their own reply is read), or when they ask to; unfollowing is kept, so
//! a later reply by someone else does not follow them again. Unread replies are the live
//! replies after the position that someone else wrote, counted up to the thread counts' cap.

use base64::Engine;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::message::{Message, MessageId, ThreadId, Timestamp, UserId};
use crate::read::UnreadMax;

/// A user follows (or stops following) a root's conversation.
#[derive(Clone, Copy, Debug)]
pub struct FollowRequest {
    /// The root's thread.
    pub thread: ThreadId,
    /// The root.
    pub root: MessageId,
    /// Who.
    pub user: UserId,
    /// Follow, or stop.
    pub follow: bool,
    /// How far the answer counts unread replies.
    pub max: UnreadMax,
}

/// A user's read position in a root's replies moves forward to `seq` (clamped to the thread's
/// head).
#[derive(Clone, Copy, Debug)]
pub struct RepliesReadRequest {
    /// The root's thread.
    pub thread: ThreadId,
    /// The root.
    pub root: MessageId,
    /// Who.
    pub user: UserId,
    /// Read up to this `seq`.
    pub seq: i64,
    /// How far the answer counts unread replies.
    pub max: UnreadMax,
}

/// What a store counted after a position: the unread (up to one past the cap), the first of
/// them, and how many of them mention the reader (up to one past the cap too).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Unread {
    /// The unread counted.
    pub count: u64,
    /// The first of them.
    pub first: Option<i64>,
    /// Those of them that mention the reader.
    pub mentions: u64,
}

impl Unread {
    /// Counts as a store read them (negative counts, which no store gives, read as 0).
    pub fn new(count: u64, first: Option<i64>, mentions: u64) -> Self {
        Unread {
            count,
            first,
            mentions,
        }
    }
}

/// Where a user stands in a root's conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Conversation {
    /// The root's thread.
    pub thread_id: ThreadId,
    /// The root.
    pub root_id: MessageId,
    /// Whether the user follows it.
    pub following: bool,
    /// Their read position in its replies (every reply numbered up to it is read).
    pub seq: i64,
    /// Live replies after the position that others wrote, up to the cap.
    pub unread: u64,
    /// Whether there are more than the cap.
    pub capped: bool,
    /// The first of them, for a client to open the conversation there.
    pub first_unread_seq: Option<i64>,
    /// How many of them address the user (name them, or the room), up to the same cap:
    /// exact while below it, as they are some of `unread`.
    pub mentions: u64,
}

impl Conversation {
    /// The state of a conversation from `counted` unread replies (counted up to one past the
    /// cap) and the first one's `seq`.
    pub fn from_unread(
        thread_id: ThreadId,
        root_id: MessageId,
        following: bool,
        seq: i64,
        counted: Unread,
        max: UnreadMax,
    ) -> Self {
        let (unread, capped) = max.cap(counted.count);
        Conversation {
            thread_id,
            root_id,
            following,
            seq,
            unread,
            capped,
            first_unread_seq: counted.first,
            mentions: max.cap(counted.mentions).0,
        }
    }

    /// The state as response JSON.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("ids and numbers always serialise")
    }
}

/// The position a replies read moves to: forward only, never past the thread's head.
pub fn advance(current: i64, asked: i64, head: i64) -> i64 {
    current.max(asked.min(head))
}

/// One followed conversation of an inbox: the root in its current state and where the user
/// stands in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboxEntry {
    /// The root, its summary included.
    pub root: Message,
    /// The user's state in it.
    pub conversation: Conversation,
}

/// Where an inbox page ends: the last entry's latest reply time, thread and root.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct InboxCursor {
    /// The last entry's `last_reply_at`.
    pub last_reply_at: Timestamp,
    /// Its thread.
    pub thread: ThreadId,
    /// Its root.
    pub root: MessageId,
}

impl InboxCursor {
    /// The cursor after `root`, a root with a summary.
    pub fn after(root: &Message) -> Option<Self> {
        root.replies.as_ref().map(|s| InboxCursor {
            last_reply_at: s.last_reply_at,
            thread: root.thread_id,
            root: root.id,
        })
    }

    /// The opaque form a client sends back.
    pub fn encode(&self) -> String {
        let mut raw = Vec::with_capacity(40);
        raw.extend_from_slice(&self.last_reply_at.as_micros().to_be_bytes());
        raw.extend_from_slice(self.thread.as_uuid().as_bytes());
        raw.extend_from_slice(self.root.as_uuid().as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    }

    /// Reads a cursor [`InboxCursor::encode`] made; anything else is `Error::InvalidCursor`.
    pub fn decode(text: &str) -> Result<Self> {
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| Error::InvalidCursor)?;
        let raw: [u8; 40] = raw.try_into().map_err(|_| Error::InvalidCursor)?;
        let (micros, ids) = raw.split_at(8);
        let micros = i64::from_be_bytes(micros.try_into().map_err(|_| Error::InvalidCursor)?);
        let (thread, root) = ids.split_at(16);
        let id = |b: &[u8]| uuid::Uuid::from_slice(b).map_err(|_| Error::InvalidCursor);
        Ok(InboxCursor {
            last_reply_at: Timestamp::checked_from_micros(micros).ok_or(Error::InvalidCursor)?,
            thread: ThreadId::from_uuid(id(thread)?),
            root: MessageId::from_uuid(id(root)?),
        })
    }

    /// The order of an inbox: the most recent reply first, then by thread and root, both
    /// descending, so every entry has one place.
    pub fn key(&self) -> (Timestamp, ThreadId, MessageId) {
        (self.last_reply_at, self.thread, self.root)
    }
}

/// A page of a user's inbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inbox {
    /// The followed conversations with live replies, the most recent reply first.
    pub items: Vec<InboxEntry>,
    /// Where the next page starts; present exactly when `has_more`.
    pub next_cursor: Option<InboxCursor>,
    /// Whether more lie beyond this page.
    pub has_more: bool,
}

impl Inbox {
    /// The roots of the page after `after`, from followed roots read in any order: in inbox
    /// order (roots without a summary left out), each once though its thread was named twice,
    /// at most `size + 1` (for [`Inbox::from_overfetch`]).
    pub fn page_roots(
        roots: impl IntoIterator<Item = Message>,
        after: Option<InboxCursor>,
        size: usize,
    ) -> Vec<Message> {
        let keyed = roots
            .into_iter()
            .filter_map(|root| Some((InboxCursor::after(&root)?.key(), root)));
        let keyed = crate::page::newest_after(keyed, after.map(|a| a.key()), size + 1);
        keyed.into_iter().map(|(_, root)| root).collect()
    }

    /// A page from entries read with `size + 1`, already in inbox order.
    pub fn from_overfetch(mut items: Vec<InboxEntry>, size: usize) -> Self {
        let has_more = items.len() > size;
        items.truncate(size);
        let next_cursor = if has_more {
            items.last().and_then(|e| InboxCursor::after(&e.root))
        } else {
            None
        };
        Inbox {
            items,
            next_cursor,
            has_more,
        }
    }

    /// The page as response JSON: `{"items":[{"root":{message},"thread_id",...}],
    /// "next_cursor","has_more"}`.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.items.len() * 512 + 64);
        out.extend_from_slice(b"{\"items\":[");
        for (i, entry) in self.items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"root\":");
            entry.root.write_json(&mut out);
            let state = entry.conversation.to_json();
            // The state's fields follow the root's in the same object.
            out.push(b',');
            out.extend_from_slice(&state[1..]);
        }
        let cursor = self.next_cursor.map(|c| c.encode());
        crate::json::write_list_close(
            &mut out,
            cursor.as_deref().map(str::as_bytes),
            self.has_more,
        );
        out.push(b'}');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_survives_its_text_and_nothing_else_passes() {
        let c = InboxCursor {
            last_reply_at: Timestamp::from_micros(1_764_000_000_000_123),
            thread: ThreadId::from_uuid(uuid::Uuid::now_v7()),
            root: MessageId::new_v7(),
        };
        assert_eq!(InboxCursor::decode(&c.encode()).unwrap(), c);
        for bad in ["", "abc", "!!!!", &c.encode()[1..]] {
            assert!(matches!(
                InboxCursor::decode(bad),
                Err(Error::InvalidCursor)
            ));
        }
    }

    #[test]
    fn a_position_moves_forward_and_stops_at_the_head() {
        assert_eq!(advance(3, 5, 10), 5);
        assert_eq!(advance(3, 2, 10), 3);
        assert_eq!(advance(3, 50, 10), 10);
    }

    #[test]
    fn counts_stop_at_the_cap() {
        let max = UnreadMax::new(2).unwrap();
        let t = ThreadId::from_uuid(uuid::Uuid::now_v7());
        let c = Conversation::from_unread(
            t,
            MessageId::new_v7(),
            true,
            0,
            Unread::new(3, Some(4), 1),
            max,
        );
        assert_eq!((c.unread, c.capped), (2, true));
    }
}
