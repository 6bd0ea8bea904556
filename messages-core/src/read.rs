//! Read state: where each user stopped reading a thread, and how much is unread after it.
//!
//! A user's position in a thread is a `seq`: they have read every message numbered up to it.
//! Unread is the number of live messages after the position that someone else wrote, counted
//! up to a cap, so a count never costs a scan of a long history. Positions are private to
//! their user: a move takes no number of the thread's sequence and sends no event.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::message::ThreadId;

/// How a reader moves their position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadMark {
    /// Read up to this `seq`: the position moves forward only (a lower one leaves it as it
    /// is, so two sessions marking in the wrong order never move it back), and never past
    /// the thread's head.
    ReadTo(i64),
    /// Unread from this `seq` on ("mark as unread"): the position becomes the one just
    /// before it, backwards too.
    UnreadFrom(i64),
}

impl ReadMark {
    /// `ReadTo(seq)`, with `seq` 0 or more.
    pub fn read_to(seq: i64) -> Result<Self> {
        if seq < 0 {
            return Err(Error::invalid("seq", "must be 0 or more"));
        }
        Ok(ReadMark::ReadTo(seq))
    }

    /// `UnreadFrom(seq)`, with `seq` 1 or more.
    pub fn unread_from(seq: i64) -> Result<Self> {
        if seq < 1 {
            return Err(Error::invalid("unread_from", "must be 1 or more"));
        }
        Ok(ReadMark::UnreadFrom(seq))
    }

    /// The position this mark leaves, given the one before (`current`) and the thread's head.
    pub fn apply(self, current: i64, head: i64) -> i64 {
        match self {
            ReadMark::ReadTo(seq) => current.max(seq.min(head)),
            ReadMark::UnreadFrom(seq) => (seq - 1).clamp(0, head.max(0)),
        }
    }

    /// The `seq` this mark names and whether it may move the position back, as the stores'
    /// statements take them: `(seq, false)` reads to `seq`, `(seq, true)` sets the position
    /// to `seq` (already one before the first unread).
    pub fn as_target(self) -> (i64, bool) {
        match self {
            ReadMark::ReadTo(seq) => (seq, false),
            ReadMark::UnreadFrom(seq) => (seq - 1, true),
        }
    }
}

/// How far unread messages are counted: past it a count answers the cap with `capped` set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnreadMax(usize);

impl UnreadMax {
    /// The default cap.
    pub const DEFAULT: UnreadMax = UnreadMax(1_000);
    /// The largest cap a deployment may set.
    pub const LIMIT: usize = 100_000;

    /// A cap from 1 to [`UnreadMax::LIMIT`].
    pub fn new(max: usize) -> Result<Self> {
        if !(1..=Self::LIMIT).contains(&max) {
            return Err(Error::invalid(
                "unread max",
                format!("must be from 1 to {}", Self::LIMIT),
            ));
        }
        Ok(UnreadMax(max))
    }

    /// The cap.
    pub fn get(self) -> usize {
        self.0
    }

    /// What `counted` unread messages answer: the count up to the cap, and whether it was
    /// passed (a store counts at most `max + 1`, so one more than the cap tells).
    pub(crate) fn cap(self, counted: u64) -> (u64, bool) {
        let cap = self.0 as u64;
        (counted.min(cap), counted > cap)
    }
}

impl Default for UnreadMax {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The threads one query names (a sidebar's unread counts): 1 to [`ThreadList::MAX`], in the
/// order the answer keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadList(Vec<ThreadId>);

impl ThreadList {
    /// The most threads one query may name.
    pub const MAX: usize = 200;

    /// The threads, checked: `Error::Invalid` (field `threads`) for none or more than
    /// [`ThreadList::MAX`].
    pub fn new(threads: Vec<ThreadId>) -> Result<Self> {
        if threads.is_empty() || threads.len() > Self::MAX {
            return Err(Error::invalid(
                "threads",
                format!("name 1 to {} threads", Self::MAX),
            ));
        }
        Ok(ThreadList(threads))
    }

    /// The threads, in the order given.
    pub fn as_slice(&self) -> &[ThreadId] {
        &self.0
    }
}

/// A user's position in a thread and what is unread after it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReadState {
    /// The thread.
    pub thread_id: ThreadId,
    /// The position: every message numbered up to it is read (0: none).
    pub seq: i64,
    /// Live messages after the position written by someone else, up to the cap.
    pub unread: u64,
    /// Whether there are more than `unread` (the count stopped at the cap).
    pub capped: bool,
    /// The first of them, when there is one.
    pub first_unread_seq: Option<i64>,
    /// How many of them address the reader (name them, or the room), up to the same cap:
    /// exact while below it, as they are some of `unread`; past it, those among the unread
    /// counted (one pass counts both).
    pub mentions: u64,
}

impl ReadState {
    /// The state from a position and the `seq`s of the unread messages after it, in order,
    /// as a store reads them: at most `max + 1`, so that one more than the cap tells it was
    /// reached.
    pub(crate) fn from_unread(
        thread_id: ThreadId,
        seq: i64,
        counted: u64,
        first_unread_seq: Option<i64>,
        mentions: u64,
        max: UnreadMax,
    ) -> Self {
        let (unread, capped) = max.cap(counted);
        ReadState {
            thread_id,
            seq,
            unread,
            capped,
            first_unread_seq,
            mentions: max.cap(mentions).0,
        }
    }

    /// The response JSON of one thread's state.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("ids and numbers always serialise")
    }
}

/// The response JSON of several threads' states, in the order asked.
pub fn states_to_json(states: &[ReadState]) -> Vec<u8> {
    #[derive(Serialize)]
    struct Threads<'a> {
        threads: &'a [ReadState],
    }
    serde_json::to_vec(&Threads { threads: states }).expect("ids and numbers always serialise")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_moves_forward_only_and_stops_at_the_head() {
        assert_eq!(ReadMark::ReadTo(5).apply(3, 10), 5);
        assert_eq!(ReadMark::ReadTo(2).apply(3, 10), 3, "never back");
        assert_eq!(ReadMark::ReadTo(50).apply(3, 10), 10, "clamped to the head");
        assert_eq!(ReadMark::ReadTo(50).apply(12, 10), 12, "a position is kept");
    }

    #[test]
    fn unread_from_moves_back_to_just_before() {
        assert_eq!(ReadMark::UnreadFrom(4).apply(9, 10), 3);
        assert_eq!(ReadMark::UnreadFrom(1).apply(9, 10), 0);
        assert_eq!(
            ReadMark::UnreadFrom(40).apply(2, 10),
            10,
            "clamped to the head"
        );
    }

    #[test]
    fn marks_reject_impossible_positions() {
        assert!(ReadMark::read_to(-1).is_err());
        assert!(ReadMark::read_to(0).is_ok());
        assert!(ReadMark::unread_from(0).is_err());
        assert!(ReadMark::unread_from(1).is_ok());
        assert!(UnreadMax::new(0).is_err());
        assert!(UnreadMax::new(UnreadMax::LIMIT + 1).is_err());
    }

    #[test]
    fn a_thread_list_names_one_to_the_most() {
        let thread = ThreadId::from_uuid(uuid::Uuid::nil());
        assert!(ThreadList::new(Vec::new()).is_err());
        assert!(ThreadList::new(vec![thread; ThreadList::MAX + 1]).is_err());
        let most = ThreadList::new(vec![thread; ThreadList::MAX]).expect("valid");
        assert_eq!(most.as_slice().len(), ThreadList::MAX);
    }

    #[test]
    fn a_count_past_the_cap_says_so() {
        let thread = ThreadId::from_uuid(uuid::Uuid::nil());
        let max = UnreadMax::new(3).expect("valid");
        let at = ReadState::from_unread(thread, 0, 3, Some(1), 2, max);
        assert_eq!((at.unread, at.capped, at.mentions), (3, false, 2));
        let past = ReadState::from_unread(thread, 0, 4, Some(1), 4, max);
        assert_eq!((past.unread, past.capped, past.mentions), (3, true, 3));
        let json = String::from_utf8(past.to_json()).expect("utf-8");
        assert!(json.contains(r#""unread":3"#) && json.contains(r#""capped":true"#));
    }
}
