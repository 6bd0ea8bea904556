//! Messages whose response JSON is kept, so refilling a window after a write encodes only
//! what changed, bounded by bytes.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;

use crate::cache::Window;
use crate::locks;
use crate::message::{Message, MessageId, Timestamp};
use crate::page::Page;

/// How many bytes of encoded messages are kept: 16 MiB, some 50,000 messages of 350 bytes,
/// and at most about 700 of the largest a client can post.
const CAPACITY_BYTES: usize = 16 << 20;

#[derive(Default)]
struct Memo {
    by_version: HashMap<(MessageId, i64, Timestamp, u64), Bytes>,
    bytes: usize,
}

/// Encoded messages by id, `rev`, `updated_at` and a hash of the editable fields: every change
/// (an edit, a reaction) moves `rev`, and an edit changes the key even if two edits share a
/// microsecond, so a stale encoding is never reused.
/// Cleared whole when full (cheap, and the next fills repopulate it).
///
/// Its std lock follows the crate's policy (`locks`).
#[derive(Default)]
pub(super) struct Encodings {
    memo: Mutex<Memo>,
}

/// A hash of what an edit can change.
fn editable_hash(message: &Message) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    message.content.hash(&mut hasher);
    message.paths.hash(&mut hasher);
    hasher.finish()
}

impl Encodings {
    /// A window of `page`, reusing the encodings of messages it encoded before.
    pub(super) fn window_of(&self, page: &Page) -> Window {
        let mut memo = locks::lock(&self.memo);
        Window::from_page_with(page, |message, out| {
            let key = (
                message.id,
                message.rev,
                message.updated_at,
                editable_hash(message),
            );
            if let Some(bytes) = memo.by_version.get(&key) {
                out.extend_from_slice(bytes);
                return;
            }
            let start = out.len();
            message.write_json(out);
            let encoded = &out[start..];
            if memo.bytes + encoded.len() > CAPACITY_BYTES {
                memo.by_version.clear();
                memo.bytes = 0;
            }
            memo.bytes += encoded.len();
            memo.by_version.insert(key, Bytes::copy_from_slice(encoded));
        })
    }

    /// How many bytes of encodings are kept.
    #[cfg(test)]
    pub(super) fn bytes(&self) -> usize {
        locks::lock(&self.memo).bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::sample_text as message;
    use crate::page::PageSize;

    fn page(items: Vec<Message>) -> Page {
        Page {
            items,
            next_cursor: None,
            has_more: false,
            rev: 1,
        }
    }

    fn render(w: Window) -> String {
        let mut out = Vec::new();
        w.write_page(PageSize::DEFAULT, &mut out);
        String::from_utf8(out).expect("JSON is UTF-8")
    }

    #[test]
    fn a_reused_encoding_never_hides_an_edit_in_the_same_microsecond() {
        let encodings = Encodings::default();
        let mut message = message("before");
        assert!(render(encodings.window_of(&page(vec![message.clone()]))).contains("before"));
        // Same id and the same updated_at, other content: must not come from the memo.
        message.content = "after".into();
        let again = render(encodings.window_of(&page(vec![message.clone()])));
        assert!(
            again.contains("after") && !again.contains("before"),
            "{again}"
        );
        assert_eq!(again.into_bytes(), page(vec![message.clone()]).to_json());
        // A reaction moves rev and not updated_at: its encoding is new too.
        message.rev += 1;
        message.reactions.push(crate::message::Reaction {
            emoji: crate::message::Emoji::parse("👍").expect("an emoji"),
            count: 1,
            users: vec![message.user_id],
        });
        let reacted = render(encodings.window_of(&page(vec![message.clone()])));
        assert!(reacted.contains("👍"), "{reacted}");
    }

    #[test]
    fn the_memo_stays_within_its_bytes() {
        let encodings = Encodings::default();
        let big = "x".repeat(4_000);
        for _ in 0..20 {
            let items = (0..200).map(|_| message(&big)).collect();
            encodings.window_of(&page(items));
            assert!(encodings.bytes() <= CAPACITY_BYTES, "{}", encodings.bytes());
        }
        assert!(encodings.bytes() > 0);
    }
}
