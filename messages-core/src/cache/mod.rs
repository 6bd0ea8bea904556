//! The newest-page cache: each thread's newest messages kept as pre-encoded JSON, guarded by a
//! per-thread generation so a page read before a write is never stored after it.
//!
//! Protocol: a reader looks the thread up and gets the window (if any) and the current
//! generation. On a miss it reads the store and offers the window back with the generation it
//! saw; the cache keeps it only if no write bumped the generation in between. Writers call
//! `invalidate` after their commit, which drops the window and bumps the generation.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::cursor::{Cursor, EncodedCursor};
use crate::error::Result;
use crate::message::{Message, ThreadId};
use crate::page::{PAGE_OPEN, Page, PageJson, PageSize, write_page_close};

pub mod breaker;
pub mod memory;
#[cfg(feature = "redis")]
pub mod redis;

/// A thread's generation: changes on every write to the thread.
pub type Generation = u64;

/// How long a cached window lives, for every cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifetime {
    /// How long a window stays after it was filled (or last read, with `touch_on_hit`).
    /// Default 120 s.
    pub ttl: Duration,
    /// Whether a hit extends the window's life. Default true.
    pub touch_on_hit: bool,
}

impl Default for Lifetime {
    fn default() -> Self {
        Lifetime {
            ttl: Duration::from_secs(120),
            touch_on_hit: true,
        }
    }
}

/// What a lookup found.
#[derive(Clone, Debug)]
pub struct Lookup {
    /// The cached window, if there is one.
    pub window: Option<Arc<Window>>,
    /// The thread's generation at the time of the lookup; pass it to [`PageCache::fill`].
    pub generation: Generation,
}

/// The newest messages of one thread, newest first, each encoded as response JSON.
///
/// The encoded items are kept joined, comma-separated, in one buffer, with the end offset of
/// each: a page of `n` is then one slice of that buffer between the envelope's two halves, so
/// assembling it costs three copies whatever `n` is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    joined: Bytes,
    ends: Vec<u32>,
    /// Each item's cursor, encoded once when the window is built.
    cursors: Vec<EncodedCursor>,
    has_more: bool,
    /// The thread's position the window reflects, as a store read would report it.
    rev: i64,
    /// The envelope's close for a page of `n` items, made on the first request for `n` and
    /// shared by every later one (index `n`).
    closes: Closes,
}

/// The envelope's closes of a window, one per page length, each made once.
#[derive(Clone, Debug, Default)]
struct Closes(Arc<[std::sync::OnceLock<Bytes>]>);

impl Closes {
    fn new(len: usize) -> Self {
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

    /// Serialises the window for an external cache: a format byte (which carries `has_more`),
    /// the position, the item count, each item's end offset and cursor, then the joined items.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + self.len() * ENTRY + self.joined.len());
        out.push(FORMAT | u8::from(self.has_more));
        out.extend_from_slice(&self.rev.to_be_bytes());
        out.extend_from_slice(&(self.len() as u32).to_be_bytes());
        for (end, cursor) in self.ends.iter().zip(&self.cursors) {
            out.extend_from_slice(&end.to_be_bytes());
            out.extend_from_slice(cursor);
        }
        out.extend_from_slice(&self.joined);
        out
    }

    /// Reads what [`Window::to_bytes`] wrote; `None` for anything else, including a window
    /// an older version of this service wrote (a miss: the reader refills it).
    pub fn from_bytes(bytes: &Bytes) -> Option<Window> {
        let has_more = match *bytes.first()? {
            b if b == FORMAT => false,
            b if b == FORMAT | 1 => true,
            _ => return None,
        };
        let rev = i64::from_be_bytes(bytes.get(1..9)?.try_into().ok()?);
        let count = u32::from_be_bytes(bytes.get(9..HEADER)?.try_into().ok()?) as usize;
        let table_end = HEADER.checked_add(count.checked_mul(ENTRY)?)?;
        let table = bytes.get(HEADER..table_end)?;
        let joined = bytes.slice(table_end..);
        let mut ends = Vec::with_capacity(count);
        let mut cursors = Vec::with_capacity(count);
        let mut previous = 0u32;
        for entry in table.chunks_exact(ENTRY) {
            let end = u32::from_be_bytes(entry[..4].try_into().ok()?);
            if end < previous || end as usize > joined.len() {
                return None;
            }
            previous = end;
            ends.push(end);
            // Only a cursor that decodes is kept: the bytes go into responses as they are.
            let cursor = Cursor::decode(std::str::from_utf8(&entry[4..]).ok()?).ok()?;
            cursors.push(cursor.encoded());
        }
        if ends.last().map_or(0, |&e| e as usize) != joined.len() {
            return None;
        }
        Some(Window {
            joined,
            closes: Closes::new(ends.len()),
            ends,
            cursors,
            has_more,
            rev,
        })
    }
}

/// The format byte of [`Window::to_bytes`], with `has_more` in its low bit. Windows written
/// before the sequence began with 0 or 1.
const FORMAT: u8 = 0x20;
/// Format byte, position, count.
const HEADER: usize = 1 + 8 + 4;
/// End offset and cursor of one item.
const ENTRY: usize = 4 + std::mem::size_of::<EncodedCursor>();

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Limits, MessageId, MessageKind, NewMessage, Timestamp, UserId};

    fn page(n: usize, has_more: bool) -> Page {
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

    #[test]
    fn window_bytes_round_trip_and_reject_garbage() {
        let window = Window::from_page(&page(7, true));
        let bytes = Bytes::from(window.to_bytes());
        assert_eq!(Window::from_bytes(&bytes), Some(window.clone()));
        assert_eq!(
            Window::from_bytes(&Bytes::from(Window::from_page(&page(0, false)).to_bytes()))
                .map(|w| w.len()),
            Some(0)
        );
        for cut in [0, 1, 4, 5, 40, bytes.len() - 1] {
            assert_eq!(
                Window::from_bytes(&bytes.slice(..cut)),
                None,
                "cut at {cut}"
            );
        }
        let back = Window::from_bytes(&bytes).unwrap();
        assert_eq!(back.rev(), 1_234, "the position survives the round trip");
        let mut bad = bytes.to_vec();
        bad[0] = 7;
        assert_eq!(Window::from_bytes(&Bytes::from(bad)), None);
        // A window in the format from before the sequence (first byte 0 or 1) is a miss.
        let mut old = bytes.to_vec();
        old[0] = 1;
        assert_eq!(Window::from_bytes(&Bytes::from(old)), None);
    }
}

/// Counters of what the cache did, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups that found a window.
    pub hits: u64,
    /// Lookups that found none.
    pub misses: u64,
    /// Windows stored.
    pub fills: u64,
    /// Windows refused because a write happened while they were read.
    pub rejected_fills: u64,
    /// Calls that failed (the request fell back to the store).
    pub errors: u64,
}

/// A cache of each thread's newest window.
#[async_trait]
pub trait PageCache: Send + Sync + 'static {
    /// The thread's window, if cached, and its current generation.
    async fn lookup(&self, thread: ThreadId) -> Result<Lookup>;

    /// Stores `window` if the thread's generation is still `seen`; returns whether it did.
    async fn fill(&self, thread: ThreadId, seen: Generation, window: Arc<Window>) -> Result<bool>;

    /// Drops the thread's window and bumps its generation. Called after every committed write.
    async fn invalidate(&self, thread: ThreadId) -> Result<()>;

    /// Whether the cache can answer now.
    async fn ping(&self) -> Result<()>;

    /// Whether the cache lives in this process and cannot fail, so no circuit breaker is
    /// needed in front of it. False unless a cache says otherwise.
    fn is_local(&self) -> bool {
        false
    }

    /// For a cache in this process: [`PageCache::lookup`] without a future to box and await,
    /// which on the hit path costs more than the lookup. `None` (the default) means call
    /// `lookup`.
    fn lookup_now(&self, thread: ThreadId) -> Option<Result<Lookup>> {
        let _ = thread;
        None
    }
}
