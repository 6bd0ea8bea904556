//! Inbox pages this process worked out, each with the fingerprint of what it was read from,
//! so an inbox asked again while its threads and the user's follows are quiet is answered
//! without being worked out again.
//!
//! An inbox page depends on the roots and replies of the threads it names and on the user's
//! follow rows there. Every change of a thread's messages takes the thread's next number, and
//! every write of a follow row that moves no head takes a number of `reply_follow_changes`
//! larger than the row's last (migration V11), rows never deleted. (A reply moves its
//! replier's row in the statement that takes its numbers, so it takes none: the row's update
//! then changes no indexed column and stays on its page, no index written.) So the sum of the threads' heads, the count of
//! the user's rows and the sum of their numbers all move with every committed change: while
//! the three are those a page was read after, the page is still exact. The fingerprint is
//! read before the page, so a change between the two costs the next ask a read, never a wrong
//! answer, and replicas need not share anything.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::conversation::{Inbox, InboxCursor};
use crate::locks;
use crate::message::{ThreadId, UserId};

/// How many pages are kept (a page of 50 roots is some tens of KiB). Past it the map is
/// cleared whole (the next asks fill it again).
const CAPACITY: usize = 1_000;

/// What a page asked: the user, the threads in the order named, where it starts, its size and
/// the unread cap.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Asked {
    pub(super) user: UserId,
    pub(super) threads: Vec<ThreadId>,
    pub(super) after: Option<InboxCursor>,
    pub(super) size: usize,
    pub(super) max: usize,
}

/// The sum of the threads' heads, the user's follow rows in them, the sum of their numbers.
pub(super) type Fingerprint = (i64, i64, i64);

/// Pages by what they asked. Its std lock follows the crate's policy (`locks`): held for one
/// map operation, never across an `.await`.
#[derive(Default)]
pub(super) struct Inboxes {
    entries: Mutex<HashMap<Asked, (Fingerprint, Inbox)>>,
}

impl Inboxes {
    /// The page kept for `asked`, if it was read after `now`.
    pub(super) fn get(&self, asked: &Asked, now: Fingerprint) -> Option<Inbox> {
        let entries = locks::lock(&self.entries);
        match entries.get(asked) {
            Some((at, inbox)) if *at == now => Some(inbox.clone()),
            _ => None,
        }
    }

    /// Keeps a page read after `at`.
    pub(super) fn keep(&self, asked: Asked, at: Fingerprint, inbox: &Inbox) {
        let mut entries = locks::lock(&self.entries);
        if entries.len() >= CAPACITY && !entries.contains_key(&asked) {
            entries.clear();
        }
        entries.insert(asked, (at, inbox.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(user: UserId) -> Asked {
        Asked {
            user,
            threads: vec![ThreadId::from_uuid(uuid::Uuid::new_v4())],
            after: None,
            size: 50,
            max: 1000,
        }
    }

    #[test]
    fn a_page_is_answered_only_at_its_fingerprint() {
        let inboxes = Inboxes::default();
        let mine = asked(UserId::from_uuid(uuid::Uuid::new_v4()));
        let page = Inbox::from_overfetch(Vec::new(), 50);
        inboxes.keep(mine.clone(), (7, 2, 40), &page);
        assert_eq!(inboxes.get(&mine, (7, 2, 40)), Some(page));
        assert_eq!(inboxes.get(&mine, (8, 2, 40)), None, "a thread moved");
        assert_eq!(inboxes.get(&mine, (7, 2, 41)), None, "a follow moved");
        let other = asked(UserId::from_uuid(uuid::Uuid::new_v4()));
        assert_eq!(inboxes.get(&other, (7, 2, 40)), None, "another user's");
    }
}
