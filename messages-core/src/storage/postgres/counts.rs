//! Unread counts this process worked out, each with the thread's head and the reader's
//! position it was counted at, so a sidebar asked again while its threads are quiet is not
//! counted again.
//!
//! A count depends only on the live messages after the position: who wrote them and whether
//! they are deleted. Every change of a thread's messages (a create, an edit, a delete, a
//! reaction) takes the thread's next number, so while the head and the position are those the
//! count was made at, the count is still exact. The statement that reads the states checks
//! both in its own snapshot and counts again only where either moved (see `READ_STATES`), so a
//! stale entry costs a count, never a wrong answer, and replicas need not share anything.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::locks;
use crate::message::{ThreadId, UserId};

/// How many counts are kept (some 64 bytes each). Past it the map is cleared whole (cheap;
/// the next reads fill it again).
const CAPACITY: usize = 100_000;

/// A count, and where it was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Counted {
    /// The thread's head when it was counted.
    pub(super) head: i64,
    /// The reader's position it was counted after.
    pub(super) seq: i64,
    /// How many messages the count stopped at (the cap + 1).
    pub(super) limit: i64,
    /// Unread messages found, at most `limit`.
    pub(super) counted: i64,
    /// The first of them.
    pub(super) first: Option<i64>,
    /// How many of them address the reader.
    pub(super) mentions: i64,
}

/// Counts by thread and reader. Its std lock follows the crate's policy (`locks`): held for
/// one map operation, never across an `.await`.
#[derive(Default)]
pub(super) struct Counts {
    entries: Mutex<HashMap<(ThreadId, UserId), Counted>>,
}

impl Counts {
    /// The count kept for each thread, `None` where there is none.
    pub(super) fn get(&self, threads: &[ThreadId], user: UserId) -> Vec<Option<Counted>> {
        let entries = locks::lock(&self.entries);
        threads
            .iter()
            .map(|&thread| entries.get(&(thread, user)).copied())
            .collect()
    }

    /// Keeps the counts just made.
    pub(super) fn keep(&self, user: UserId, counts: impl IntoIterator<Item = (ThreadId, Counted)>) {
        let mut entries = locks::lock(&self.entries);
        for (thread, counted) in counts {
            if entries.len() >= CAPACITY {
                entries.clear();
            }
            entries.insert((thread, user), counted);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_kept_per_thread_and_reader() {
        let counts = Counts::default();
        let (t1, t2) = (
            ThreadId::from_uuid(uuid::Uuid::new_v4()),
            ThreadId::from_uuid(uuid::Uuid::new_v4()),
        );
        let (me, other) = (
            UserId::from_uuid(uuid::Uuid::new_v4()),
            UserId::from_uuid(uuid::Uuid::new_v4()),
        );
        let counted = Counted {
            head: 9,
            seq: 4,
            limit: 1_001,
            counted: 3,
            first: Some(5),
            mentions: 1,
        };
        counts.keep(me, [(t1, counted)]);
        assert_eq!(counts.get(&[t1, t2], me), vec![Some(counted), None]);
        assert_eq!(counts.get(&[t1], other), vec![None], "a reader's own");
    }
}
