//! A thread's newest messages as pre-encoded response JSON: what every cache keeps, and how
//! a page of any size up to it is cut from it without encoding anything again.

use std::sync::Arc;

use bytes::Bytes;

use crate::cursor::{Cursor, EncodedCursor};
use crate::json::{PAGE_OPEN, write_page_close};
use crate::message::Message;
use crate::page::{Page, PageJson, PageSize};

/// The newest messages of one thread, newest first, each encoded as response JSON.
///
/// The encoded items are kept joined, comma-separated, in one buffer, with the end offset of
/// each: a page of `n` is then one slice of that buffer between the envelope's two halves, so
/// assembling it costs three copies whatever `n` is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    pub(super) joined: Bytes,
    pub(super) ends: Vec<u32>,
    /// Each item's cursor, encoded once when the window is built.
    pub(super) cursors: Vec<EncodedCursor>,
    pub(super) has_more: bool,
    /// The thread's position the window reflects, as a store read would report it.
    pub(super) rev: i64,
    /// The envelope's close for a page of `n` items, made on the first request for `n` and
    /// shared by every later one (index `n`).
    pub(super) closes: Closes,
}

/// The envelope's closes of a window, one per page length, each made once.
#[derive(Clone, Debug, Default)]
pub(super) struct Closes(Arc<[std::sync::OnceLock<Bytes>]>);

impl Closes {
    pub(super) fn new(len: usize) -> Self {
        Closes((0..=len).map(|_| std::sync::OnceLock::new()).collect())
    }
}

/// Closes are a cache of what the other fields determine: equal windows are equal whatever
/// their caches hold.
impl PartialEq for Closes {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Closes {}

impl Window {
    /// A window from the newest page of a thread; `page.has_more` says whether the thread
    /// holds more than the window, which keeps `has_more` exact for every smaller page.
    pub fn from_page(page: &Page) -> Window {
        Self::from_page_with(page, |message, out| message.write_json(out))
    }

    /// Like [`Window::from_page`], with `encode` appending each message's JSON to the buffer:
    /// the service passes one that reuses encodings it made before.
    pub fn from_page_with(page: &Page, mut encode: impl FnMut(&Message, &mut Vec<u8>)) -> Window {
        let mut joined = Vec::with_capacity(page.items.len() * 320);
        let mut ends = Vec::with_capacity(page.items.len());
        for (i, message) in page.items.iter().enumerate() {
            if i > 0 {
                joined.push(b',');
            }
            encode(message, &mut joined);
            ends.push(joined.len() as u32);
        }
        Window {
            joined: Bytes::from(joined),
            closes: Closes::new(ends.len()),
            ends,
            cursors: page.items.iter().map(|m| Cursor::of(m).encoded()).collect(),
            has_more: page.has_more,
            rev: page.rev,
        }
    }

    /// How many messages the window holds.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the window holds no message (an empty thread).
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Whether a newest page of `size` can be answered from this window alone.
    pub fn serves(&self, size: PageSize) -> bool {
        size.get() <= self.len() || !self.has_more
    }

    /// The first `n` items (at most the window), where the page's items end, and the page's
    /// `next_cursor` and `has_more`.
    fn cut(&self, size: PageSize) -> (usize, Option<&[u8]>, bool) {
        let n = size.get().min(self.len());
        let has_more = self.len() > n || self.has_more;
        let next_cursor = if has_more {
            n.checked_sub(1)
                .and_then(|i| self.cursors.get(i))
                .map(|c| &c[..])
        } else {
            None
        };
        let end = n
            .checked_sub(1)
            .and_then(|i| self.ends.get(i))
            .map_or(0, |&e| e as usize);
        (end, next_cursor, has_more)
    }

    /// Writes the newest page of `size` as response JSON by concatenation: nothing is parsed
    /// or serialised again. Call only when [`Window::serves`] is true.
    pub fn write_page(&self, size: PageSize, out: &mut Vec<u8>) {
        let (end, next_cursor, has_more) = self.cut(size);
        let items = self.joined.get(..end).unwrap_or_default();
        out.reserve(items.len() + 96);
        // One "item" of all n: the buffer already holds the commas between them.
        out.extend_from_slice(PAGE_OPEN);
        out.extend_from_slice(items);
        write_page_close(out, next_cursor, has_more, self.rev);
    }

    /// The newest page of `size` as the three parts of its JSON, the items a slice of the
    /// window's own buffer: a page costs the envelope's close, whatever its size. Call only
    /// when [`Window::serves`] is true.
    pub fn page_json(&self, size: PageSize) -> PageJson {
        let (end, next_cursor, has_more) = self.cut(size);
        let make_close = || {
            let mut close = Vec::with_capacity(64);
            write_page_close(&mut close, next_cursor, has_more, self.rev);
            Bytes::from(close)
        };
        let n = size.get().min(self.len());
        let close = match self.closes.0.get(n) {
            Some(slot) => slot.get_or_init(make_close).clone(),
            None => make_close(),
        };
        PageJson::from_parts([
            Bytes::from_static(PAGE_OPEN),
            self.joined.slice(..end.min(self.joined.len())),
            close,
        ])
    }

    /// The thread's position the window reflects.
    pub fn rev(&self) -> i64 {
        self.rev
    }

    /// About how many bytes of memory the window holds: its encoded items, their offsets and
    /// cursors, and the closes it may make. What a cache bounded by bytes counts.
    pub fn weight(&self) -> usize {
        const CLOSE: usize = std::mem::size_of::<std::sync::OnceLock<Bytes>>() + 64;
        std::mem::size_of::<Window>()
            + self.joined.len()
            + self.ends.len() * std::mem::size_of::<u32>()
            + self.cursors.len() * std::mem::size_of::<EncodedCursor>()
            + (self.ends.len() + 1) * CLOSE
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::message::{Limits, MessageId, MessageKind, NewMessage, ThreadId, Timestamp, UserId};

    /// A newest page of `n` messages (`seq` 1,000 down), at position 1,234.
    pub(in crate::cache) fn page(n: usize, has_more: bool) -> Page {
        let items = (0..n)
            .map(|i| {
                let new = NewMessage::new(
                    MessageKind::Text,
                    format!("m{i}"),
                    vec![],
                    &Limits::default(),
                )
                .unwrap();
                let mut m = Message::from_new(
                    MessageId::new_v7(),
                    ThreadId::from_uuid(uuid::Uuid::nil()),
                    UserId::from_uuid(uuid::Uuid::nil()),
                    new,
                    Timestamp::from_micros(100 - i as i64),
                );
                m.seq = 1_000 - i as i64;
                m.rev = m.seq;
                m
            })
            .collect::<Vec<_>>();
        Page {
            next_cursor: None,
            items,
            has_more,
            rev: 1_234,
        }
    }

    #[test]
    fn window_pages_equal_typed_pages() {
        for (n, more) in [(0, false), (1, false), (5, false), (5, true), (200, true)] {
            let full = page(n, more);
            let window = Window::from_page(&full);
            for size in [1u32, 2, 5, 50, 200] {
                let size = PageSize::new(size).unwrap();
                if !window.serves(size) {
                    assert!(more && size.get() > n);
                    continue;
                }
                let mut out = Vec::new();
                window.write_page(size, &mut out);
                assert_eq!(window.page_json(size).to_bytes(), out, "both forms agree");
                let k = size.get().min(n);
                let has_more = n > k || more;
                let expected = Page {
                    items: full.items[..k].to_vec(),
                    next_cursor: if has_more {
                        full.items[..k].last().map(Cursor::of)
                    } else {
                        None
                    },
                    has_more,
                    rev: 1_234,
                };
                assert_eq!(
                    out,
                    expected.to_json(),
                    "n={n} more={more} size={}",
                    size.get()
                );
            }
        }
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;
        use crate::page::write_page_json;

        proptest! {
            /// A newest page of any size answered from a window (as bytes, and as the three
            /// parts a response is sent in) is byte for byte the page assembled afresh from
            /// the same thread's newest messages, with `has_more` and `next_cursor` exact.
            #[test]
            fn a_page_from_the_window_is_the_page_from_the_messages(
                thread_len in 0usize..90,
                window_len in 1usize..=60,
                size in 1usize..=60,
            ) {
                // The thread's newest messages, newest first, as a store reads them.
                let all = page(thread_len, false);
                let newest = |k: usize| Page {
                    items: all.items.iter().take(k).cloned().collect(),
                    next_cursor: None,
                    has_more: thread_len > k,
                    rev: all.rev,
                };
                let window = Window::from_page(&newest(window_len));
                let size_of = PageSize::new(size as u32).expect("a page size");
                prop_assert_eq!(window.serves(size_of), size <= window_len || thread_len <= window_len);
                prop_assume!(window.serves(size_of));

                let expected_page = newest(size);
                let next_cursor = if expected_page.has_more {
                    expected_page.items.last().map(Cursor::of)
                } else {
                    None
                };
                let encoded: Vec<Vec<u8>> = expected_page
                    .items
                    .iter()
                    .map(|m| {
                        let mut out = Vec::new();
                        m.write_json(&mut out);
                        out
                    })
                    .collect();
                let mut expected = Vec::new();
                write_page_json(
                    &mut expected,
                    encoded.iter().map(Vec::as_slice),
                    next_cursor,
                    expected_page.has_more,
                    expected_page.rev,
                );

                let mut written = Vec::new();
                window.write_page(size_of, &mut written);
                prop_assert_eq!(&written, &expected);
                let parts: Vec<u8> = window
                    .page_json(size_of)
                    .into_parts()
                    .iter()
                    .flat_map(|part| part.iter().copied())
                    .collect();
                prop_assert_eq!(&parts, &expected);
                // And it is JSON a client parses.
                let parsed: serde_json::Value = serde_json::from_slice(&written).expect("JSON");
                prop_assert_eq!(parsed["items"].as_array().map(Vec::len), Some(size.min(thread_len)));
            }
        }
    }
}
