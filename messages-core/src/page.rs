//! Pages of a thread: the page size, the direction of a request, the page itself with an
//! exact `has_more` and the thread position it reflects, and the window around one message.

use bytes::Bytes;

use crate::cursor::Cursor;
use crate::error::{Error, Result};
use crate::json::{PAGE_OPEN, write_bool, write_list, write_page_close, write_position};
use crate::message::Message;

/// How many messages a page holds: 1 to 200, 50 by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PageSize(u16);

impl PageSize {
    /// The largest page a client may ask for.
    pub const MAX: u16 = 200;
    /// The page size when the client names none.
    pub const DEFAULT: PageSize = PageSize(50);
    /// The largest page, as a size.
    pub const MAX_SIZE: PageSize = PageSize(Self::MAX);

    /// Checks `1..=200`.
    pub fn new(n: u32) -> Result<Self> {
        match u16::try_from(n) {
            Ok(n) if (1..=Self::MAX).contains(&n) => Ok(PageSize(n)),
            _ => Err(Error::invalid("limit", "must be an integer from 1 to 200")),
        }
    }

    /// Parses the `limit` query parameter: decimal digits only.
    pub fn parse(s: &str) -> Result<Self> {
        if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::invalid("limit", "must be an integer from 1 to 200"));
        }
        s.parse::<u32>()
            .map_err(|_| Error::invalid("limit", "must be an integer from 1 to 200"))
            .and_then(Self::new)
    }

    /// The size as a count.
    pub fn get(self) -> usize {
        usize::from(self.0)
    }
}

impl Default for PageSize {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Which part of a thread a request wants, by `seq`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageQuery {
    /// The newest messages, newest first (the cached page).
    Newest,
    /// Messages with a `seq` below this one, newest first.
    Before(i64),
    /// Messages with a `seq` above this one, oldest first, for catching up.
    After(i64),
}

/// One page of a thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    /// The messages, in the order the query asked for.
    pub items: Vec<Message>,
    /// Where the next page starts; present exactly when `has_more`.
    pub next_cursor: Option<Cursor>,
    /// Whether more messages lie beyond this page in the same direction.
    pub has_more: bool,
    /// The thread's position the page reflects: every change numbered up to it is in the
    /// page, so a client can follow the changes from exactly there.
    pub rev: i64,
}

impl Page {
    /// Builds a page from rows read with `LIMIT size + 1`, already in page order.
    ///
    /// Reading one row more than the page holds is what makes `has_more` exact: it is true
    /// only when that extra row exists, so a client never follows a cursor to an empty page.
    /// `rev` is the thread's position read in the same snapshot as the rows.
    pub fn from_overfetch(mut rows: Vec<Message>, size: PageSize, rev: i64) -> Page {
        let has_more = rows.len() > size.get();
        rows.truncate(size.get());
        let next_cursor = if has_more {
            rows.last().map(Cursor::of)
        } else {
            None
        };
        Page {
            items: rows,
            next_cursor,
            has_more,
            rev,
        }
    }

    /// The page as response JSON:
    /// `{"items":[...],"next_cursor":...,"has_more":...,"rev":...}`.
    pub fn to_json(&self) -> Vec<u8> {
        let encoded: Vec<Vec<u8>> = self.items.iter().map(Message::to_json).collect();
        let mut out = Vec::with_capacity(encoded.iter().map(Vec::len).sum::<usize>() + 96);
        write_page_json(
            &mut out,
            encoded.iter().map(Vec::as_slice),
            self.next_cursor,
            self.has_more,
            self.rev,
        );
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
    pub(crate) fn from_overfetch(
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
        out.extend_from_slice(PAGE_OPEN);
        write_list(&mut out, &self.items, Message::write_json);
        out.extend_from_slice(b"],\"has_more_before\":");
        write_bool(&mut out, self.has_more_before);
        out.extend_from_slice(b",\"has_more_after\":");
        write_bool(&mut out, self.has_more_after);
        out.extend_from_slice(b",\"rev\":");
        write_position(&mut out, self.rev);
        out.push(b'}');
        out
    }
}

/// A page as response JSON, in parts to be sent one after the other. A page from the cache is
/// three: the envelope's opening, a slice of the cached window (shared with the cache, not
/// copied) and the envelope's close; a page from the store is one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageJson {
    parts: [Bytes; 3],
}

impl PageJson {
    /// A page in one part.
    pub(crate) fn whole(json: impl Into<Bytes>) -> Self {
        PageJson {
            parts: [json.into(), Bytes::new(), Bytes::new()],
        }
    }

    /// A page in three parts, in order.
    pub fn from_parts(parts: [Bytes; 3]) -> Self {
        PageJson { parts }
    }

    /// The parts, in order (some may be empty); concatenated they are the JSON.
    pub fn into_parts(self) -> [Bytes; 3] {
        self.parts
    }

    /// The length of the JSON in bytes.
    pub fn len(&self) -> usize {
        self.parts.iter().map(Bytes::len).sum()
    }

    /// Whether the JSON is empty (never, for a page).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The JSON in one buffer (a copy unless it is one part).
    pub fn to_bytes(&self) -> Bytes {
        match &self.parts {
            [one, two, three] if two.is_empty() && three.is_empty() => one.clone(),
            parts => {
                let mut out = Vec::with_capacity(self.len());
                for part in parts {
                    out.extend_from_slice(part);
                }
                Bytes::from(out)
            }
        }
    }
}

/// Writes the page envelope around items that are already JSON. The typed page and the
/// cached window both end in `json::write_page_close`, so the two paths cannot drift apart.
pub(crate) fn write_page_json<'a>(
    out: &mut Vec<u8>,
    items: impl IntoIterator<Item = &'a [u8]>,
    next_cursor: Option<Cursor>,
    has_more: bool,
    rev: i64,
) {
    out.extend_from_slice(PAGE_OPEN);
    write_list(out, items, |item, out| out.extend_from_slice(item));
    let cursor = next_cursor.as_ref().map(Cursor::encoded);
    write_page_close(out, cursor.as_ref().map(|c| &c[..]), has_more, rev);
}

/// The newest `keep` of `keyed` that come after `after` in a listing ordered newest first by a
/// key that gives each item one place (a list across threads, merged from reads of each):
/// sorted by key descending, each key once (a thread named twice may give an item twice).
/// Read `size + 1` to know exactly whether more lie beyond a page of `size`.
pub(crate) fn newest_after<K: Ord + Copy, T>(
    keyed: impl IntoIterator<Item = (K, T)>,
    after: Option<K>,
    keep: usize,
) -> Vec<(K, T)> {
    let mut keyed: Vec<(K, T)> = keyed
        .into_iter()
        .filter(|(key, _)| after.is_none_or(|a| *key < a))
        .collect();
    keyed.sort_by_key(|(key, _)| std::cmp::Reverse(*key));
    keyed.dedup_by(|a, b| a.0 == b.0);
    keyed.truncate(keep);
    keyed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Limits, MessageId, MessageKind, NewMessage, ThreadId, Timestamp, UserId};

    #[test]
    fn page_size_bounds() {
        assert_eq!(PageSize::default().get(), 50);
        assert_eq!(PageSize::new(1).unwrap().get(), 1);
        assert_eq!(PageSize::new(200).unwrap().get(), 200);
        assert!(PageSize::new(0).is_err());
        assert!(PageSize::new(201).is_err());
        assert!(PageSize::new(70_000).is_err());
        for bad in [
            "",
            "0",
            "201",
            "-1",
            "+5",
            "5 ",
            "1e2",
            "abc",
            "0x10",
            "99999999999999999999",
        ] {
            assert!(
                matches!(
                    PageSize::parse(bad),
                    Err(Error::Invalid { field: "limit", .. })
                ),
                "{bad:?}"
            );
        }
        assert_eq!(PageSize::parse("007").unwrap().get(), 7);
    }

    fn messages(n: usize) -> Vec<Message> {
        let limits = Limits::default();
        (0..n)
            .map(|i| {
                let new =
                    NewMessage::new(MessageKind::Text, format!("m{i}"), vec![], &limits).unwrap();
                let mut m = Message::from_new(
                    MessageId::new_v7(),
                    ThreadId::from_uuid(uuid::Uuid::nil()),
                    UserId::from_uuid(uuid::Uuid::nil()),
                    new,
                    Timestamp::from_micros(i as i64),
                );
                m.seq = 100 - i as i64;
                m.rev = m.seq;
                m
            })
            .collect()
    }

    #[test]
    fn overfetch_sets_has_more_and_cursor_exactly() {
        let size = PageSize::new(3).unwrap();
        let full = Page::from_overfetch(messages(4), size, 100);
        assert!(full.has_more);
        assert_eq!(full.items.len(), 3);
        assert_eq!(full.next_cursor, Some(Cursor::of(&full.items[2])));

        let exact = Page::from_overfetch(messages(3), size, 100);
        assert!(!exact.has_more);
        assert_eq!(exact.next_cursor, None);
        assert_eq!(exact.items.len(), 3);

        let empty = Page::from_overfetch(vec![], size, 0);
        assert!(!empty.has_more && empty.items.is_empty() && empty.next_cursor.is_none());
    }

    #[test]
    fn page_json_is_the_documented_envelope() {
        let page = Page::from_overfetch(messages(3), PageSize::new(2).unwrap(), 104);
        let v: serde_json::Value = serde_json::from_slice(&page.to_json()).unwrap();
        assert_eq!(v["items"].as_array().unwrap().len(), 2);
        assert_eq!(v["has_more"], true);
        assert_eq!(v["next_cursor"], page.next_cursor.unwrap().encode());
        assert_eq!(v["rev"], 104);
        let last = Page::from_overfetch(messages(1), PageSize::new(2).unwrap(), 100);
        let v: serde_json::Value = serde_json::from_slice(&last.to_json()).unwrap();
        assert_eq!(v["next_cursor"], serde_json::Value::Null);
        assert_eq!(v["has_more"], false);
        assert_eq!(v["rev"], 100);
    }
}
