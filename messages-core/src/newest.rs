//! Messages across the threads a reader may see, newest first (by id, which a message takes
//! when it is written and which orders by time, then by thread), as keyset pages: a reader's
//! mentions (the live messages others wrote that name them or address the room), and the
//! messages a search finds.

use base64::Engine;

use crate::error::{Error, Result};
use crate::json;
use crate::message::{Message, MessageId, ThreadId};

/// Where a page of messages across threads ends: the last message's id and thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NewestCursor {
    /// The last message's id.
    pub id: MessageId,
    /// Its thread.
    pub thread: ThreadId,
}

impl NewestCursor {
    /// The cursor after `message`.
    pub fn after(message: &Message) -> Self {
        NewestCursor {
            id: message.id,
            thread: message.thread_id,
        }
    }

    /// The opaque form a client sends back.
    pub fn encode(&self) -> String {
        let mut raw = Vec::with_capacity(32);
        raw.extend_from_slice(self.id.as_uuid().as_bytes());
        raw.extend_from_slice(self.thread.as_uuid().as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    }

    /// Reads a cursor [`NewestCursor::encode`] made; anything else is `Error::InvalidCursor`.
    pub fn decode(text: &str) -> Result<Self> {
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| Error::InvalidCursor)?;
        let raw: [u8; 32] = raw.try_into().map_err(|_| Error::InvalidCursor)?;
        let (id, thread) = raw.split_at(16);
        let uuid = |b: &[u8]| uuid::Uuid::from_slice(b).map_err(|_| Error::InvalidCursor);
        Ok(NewestCursor {
            id: MessageId::from_uuid(uuid(id)?),
            thread: ThreadId::from_uuid(uuid(thread)?),
        })
    }

    /// The order of the messages: newest first by id, then by thread, both descending, so
    /// every message has one place.
    pub fn key(&self) -> (MessageId, ThreadId) {
        (self.id, self.thread)
    }
}

/// A page of messages across threads, newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewestPage {
    /// The messages, each in its current state, newest first.
    pub items: Vec<Message>,
    /// Where the next page starts; present exactly when `has_more`.
    pub next_cursor: Option<NewestCursor>,
    /// Whether more lie beyond this page.
    pub has_more: bool,
}

impl NewestPage {
    /// The page after `after` from messages read in any order (a thread named twice may give
    /// a message twice): newest first, each once, `size` of them, `has_more` exact when at
    /// least `size + 1` were read past `after`.
    pub fn from_candidates(
        messages: impl IntoIterator<Item = Message>,
        after: Option<NewestCursor>,
        size: usize,
    ) -> Self {
        let keyed = messages
            .into_iter()
            .map(|m| (NewestCursor::after(&m).key(), m));
        let mut keyed = crate::page::newest_after(keyed, after.map(|a| a.key()), size + 1);
        let has_more = keyed.len() > size;
        keyed.truncate(size);
        let items: Vec<Message> = keyed.into_iter().map(|(_, m)| m).collect();
        let next_cursor = if has_more {
            items.last().map(NewestCursor::after)
        } else {
            None
        };
        NewestPage {
            items,
            next_cursor,
            has_more,
        }
    }

    /// The page as response JSON: `{"items":[message...],"next_cursor","has_more"}`; each
    /// message carries its `thread_id` and `seq`, for `around`.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.items.len() * 400);
        out.extend_from_slice(json::PAGE_OPEN);
        json::write_list(&mut out, &self.items, Message::write_json);
        let cursor = self.next_cursor.map(|c| c.encode());
        json::write_list_close(
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
    fn a_cursor_round_trips_and_nothing_else_decodes() {
        let c = NewestCursor {
            id: MessageId::new_v7(),
            thread: ThreadId::from_uuid(uuid::Uuid::now_v7()),
        };
        assert_eq!(NewestCursor::decode(&c.encode()).unwrap(), c);
        for bad in ["", "abc", "!!!!", &c.encode()[2..]] {
            assert!(matches!(
                NewestCursor::decode(bad),
                Err(Error::InvalidCursor)
            ));
        }
    }
}
