//! The messages this process created or changed last, as it left them, so that a reaction on
//! one of them can skip reading it first.
//!
//! An entry may be stale (another replica changed the message since): the statement that
//! applies a reaction checks the message's `rev` under its row lock and changes nothing when
//! it moved, and the reaction then reads the message as it is. So an entry is a guess that
//! saves a round trip when it is right and costs nothing but the guess when it is wrong.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::locks;
use crate::message::{Message, MessageId, ThreadId};

/// How many bytes of messages are kept: 8 MiB, some 20,000 messages of ordinary length. Past
/// it the map is cleared whole (cheap; the next writes fill it again).
const CAPACITY_BYTES: usize = 8 << 20;

#[derive(Default)]
struct Entries {
    by_id: HashMap<(ThreadId, MessageId), Message>,
    bytes: usize,
}

/// Recently written messages by thread and id. Its std lock follows the crate's policy
/// (`locks`): held for one map operation, never across an `.await`.
#[derive(Default)]
pub(super) struct Recent {
    entries: Mutex<Entries>,
}

/// About how many bytes a kept message takes.
fn weight(message: &Message) -> usize {
    let paths: usize = message.paths.iter().map(String::len).sum();
    let reactions: usize = message
        .reactions
        .iter()
        .map(|r| r.emoji.as_str().len() + 16 * r.users.len() + 48)
        .sum();
    160 + message.content.len() + paths + reactions
}

impl Recent {
    /// Keeps `message` as this process just wrote it.
    pub(super) fn remember(&self, message: &Message) {
        let key = (message.thread_id, message.id);
        let added = weight(message);
        let mut entries = locks::lock(&self.entries);
        if let Some(old) = entries.by_id.remove(&key) {
            entries.bytes = entries.bytes.saturating_sub(weight(&old));
        }
        if entries.bytes + added > CAPACITY_BYTES {
            entries.by_id.clear();
            entries.bytes = 0;
        }
        entries.bytes += added;
        entries.by_id.insert(key, message.clone());
    }

    /// The message as this process last wrote it, if it still keeps it.
    pub(super) fn get(&self, thread: ThreadId, id: MessageId) -> Option<Message> {
        locks::lock(&self.entries).by_id.get(&(thread, id)).cloned()
    }

    /// Forgets a message (it was deleted).
    pub(super) fn forget(&self, thread: ThreadId, id: MessageId) {
        let mut entries = locks::lock(&self.entries);
        if let Some(old) = entries.by_id.remove(&(thread, id)) {
            entries.bytes = entries.bytes.saturating_sub(weight(&old));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::sample_text as message;

    #[test]
    fn it_keeps_the_latest_state_and_stays_within_its_bytes() {
        let recent = Recent::default();
        let mut m = message("first");
        recent.remember(&m);
        m.rev = 7;
        recent.remember(&m);
        assert_eq!(recent.get(m.thread_id, m.id).map(|k| k.rev), Some(7));
        recent.forget(m.thread_id, m.id);
        assert_eq!(recent.get(m.thread_id, m.id), None);
        let big = "x".repeat(4_000);
        for _ in 0..5_000 {
            recent.remember(&message(&big));
            assert!(locks::lock(&recent.entries).bytes <= CAPACITY_BYTES);
        }
    }
}
