//! The newest-page cache: each thread's newest messages kept as pre-encoded JSON, guarded by a
//! per-thread generation so a page read before a write is never stored after it.
//!
//! Protocol: a reader looks the thread up and gets the window (if any) and the current
//! generation. On a miss it reads the store and offers the window back with the generation it
//! saw; the cache keeps it only if no write bumped the generation in between. Writers call
//! `invalidate` after their commit, which drops the window and bumps the generation.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::cursor::Cursor;
use crate::error::Result;
use crate::message::ThreadId;
use crate::page::{Page, PageSize, write_page_json};

pub mod memory;
#[cfg(feature = "redis")]
pub mod redis;

/// A thread's generation: changes on every write to the thread.
pub type Generation = u64;

/// What a lookup found.
#[derive(Clone, Debug)]
pub struct Lookup {
    /// The cached window, if there is one.
    pub window: Option<Arc<Window>>,
    /// The thread's generation at the time of the lookup; pass it to [`PageCache::fill`].
    pub generation: Generation,
}

/// The newest messages of one thread, newest first, each encoded as response JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    items: Vec<Bytes>,
    cursors: Vec<Cursor>,
    has_more: bool,
}

impl Window {
    /// A window from the newest page of a thread; `page.has_more` says whether the thread
    /// holds more than the window, which keeps `has_more` exact for every smaller page.
    pub fn from_page(page: &Page) -> Window {
        Window {
            items: page
                .items
                .iter()
                .map(|m| Bytes::from(m.to_json()))
                .collect(),
            cursors: page.items.iter().map(Cursor::of).collect(),
            has_more: page.has_more,
        }
    }

    /// How many messages the window holds.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the window holds no message (an empty thread).
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Whether a newest page of `size` can be answered from this window alone.
    pub fn serves(&self, size: PageSize) -> bool {
        size.get() <= self.items.len() || !self.has_more
    }

    /// Writes the newest page of `size` as response JSON by concatenating the encoded items:
    /// nothing is parsed or serialised again. Call only when [`Window::serves`] is true.
    pub fn write_page(&self, size: PageSize, out: &mut Vec<u8>) {
        let n = size.get().min(self.items.len());
        let has_more = self.items.len() > n || self.has_more;
        let next_cursor = if has_more {
            n.checked_sub(1).and_then(|i| self.cursors.get(i).copied())
        } else {
            None
        };
        let bytes: usize = self.items[..n].iter().map(Bytes::len).sum();
        out.reserve(bytes + n + 96);
        write_page_json(
            out,
            self.items[..n].iter().map(|b| b.as_ref()),
            next_cursor,
            has_more,
        );
    }

    /// Serialises the window for an external cache: a flag byte, then each item as its
    /// cursor and a length-prefixed body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let body: usize = self.items.iter().map(|b| b.len() + 4 + 34).sum();
        let mut out = Vec::with_capacity(1 + body);
        out.push(u8::from(self.has_more));
        for (item, cursor) in self.items.iter().zip(&self.cursors) {
            let mut c = [0u8; 34];
            cursor.encode_to(&mut c);
            out.extend_from_slice(&c);
            out.extend_from_slice(&(item.len() as u32).to_be_bytes());
            out.extend_from_slice(item);
        }
        out
    }

    /// Reads what [`Window::to_bytes`] wrote; `None` for anything else.
    pub fn from_bytes(bytes: &Bytes) -> Option<Window> {
        let (&flag, mut rest) = bytes.split_first()?;
        let has_more = match flag {
            0 => false,
            1 => true,
            _ => return None,
        };
        let mut items = Vec::new();
        let mut cursors = Vec::new();
        let mut offset = 1;
        while !rest.is_empty() {
            let cursor = Cursor::decode(std::str::from_utf8(rest.get(..34)?).ok()?).ok()?;
            let len = u32::from_be_bytes(rest.get(34..38)?.try_into().ok()?) as usize;
            let start = offset + 38;
            rest.get(38..38 + len)?;
            items.push(bytes.slice(start..start + len));
            cursors.push(cursor);
            offset = start + len;
            rest = &rest[38 + len..];
        }
        Some(Window {
            items,
            cursors,
            has_more,
        })
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
}
