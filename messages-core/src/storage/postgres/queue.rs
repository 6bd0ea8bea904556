//! The writes that wait to be committed together (group commit): the queues, and the jobs
//! that wait in them. What each group does is its concern's (`create`, `change`, `react`).
//!
//! Creates are committed together whatever their thread; so are replies whose roots this
//! process knows, which queue in their thread's lane beside the creates (see `reply_group`).
//!
//! A commit waits for its WAL to reach the disk, and a statement costs a round trip, a plan's
//! execution and a transaction however few rows it writes. So creates queue: while a group's
//! statement is in flight, the creates that arrive wait, and the next statement writes all of
//! them (at most the store's `group_max`), whatever their threads, with one bump of each
//! thread's counter (in thread id order), one commit, then each caller answered. Nothing waits
//! on a timer: a group is what queued while the previous statement ran, so a create on an idle
//! store goes alone, as fast as it ever did.
//!
//! Creates are spread over a few lanes, each thread always on the same one, and each lane has
//! one statement in flight at a time. Two lanes' groups then never touch the same thread's
//! counter, so neither waits on the other's locks, and the creates of one thread are numbered
//! in the order they queued.
//!
//! A lane is drained by a task of its own, not by a request, so a client that goes away
//! cannot strand the creates queued behind its own.
//!
//! Reaction changes queue the same way, per message (see `react`): a storm of reactions on
//! one popular message is written a group per transaction, not one commit each. So do edits
//! and deletes, per thread (see `change`).

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher, Hash};
use std::sync::Mutex;

use tokio::sync::oneshot;

use crate::error::{Error, Result};
use crate::locks;
use crate::message::{Message, MessageId, ThreadId, Tombstone};
use crate::reaction::{Reacted, ReactionRequest};
use crate::storage::OutboxEvent;
use crate::write::{CreateRequest, Created, DeleteRequest, EditRequest};

/// One create waiting for its statement.
pub(super) struct CreateJob {
    /// The create.
    pub(super) request: CreateRequest,
    /// Its event, encoded by the caller's task (not the lane's).
    pub(super) event: OutboxEvent,
    pub(super) reply: oneshot::Sender<Result<Created>>,
}

impl CreateJob {
    /// The message it creates.
    pub(super) fn message(&self) -> &Message {
        &self.request.message
    }
}

/// An edit or a delete waiting for its group.
pub(super) enum ChangeJob {
    Edit {
        request: EditRequest,
        reply: oneshot::Sender<Result<Message>>,
    },
    Delete {
        request: DeleteRequest,
        reply: oneshot::Sender<Result<Tombstone>>,
    },
}

impl Queued for ChangeJob {
    fn gone(&self) -> bool {
        match self {
            ChangeJob::Edit { reply, .. } => reply.is_closed(),
            ChangeJob::Delete { reply, .. } => reply.is_closed(),
        }
    }
}

/// The edits and deletes waiting, per thread.
pub(super) type Changes = Queues<ThreadId, ChangeJob>;

/// One reaction change waiting for its group.
pub(super) struct ReactionJob {
    pub(super) request: ReactionRequest,
    pub(super) reply: oneshot::Sender<Result<Reacted>>,
}

impl Queued for ReactionJob {
    fn gone(&self) -> bool {
        self.reply.is_closed()
    }
}

/// The reaction changes waiting, per message.
pub(super) type Reactions = Queues<(ThreadId, MessageId), ReactionJob>;

/// A job waiting in a queue.
pub(super) trait Queued {
    /// Its caller stopped waiting (its timeout ran out): it is not written for.
    fn gone(&self) -> bool;
}

impl Queued for CreateJob {
    fn gone(&self) -> bool {
        self.reply.is_closed()
    }
}

/// Jobs waiting per key, each key drained by one task at a time; a key is present while a
/// task drains it.
pub(super) struct Queues<K, J> {
    waiting: Mutex<HashMap<K, VecDeque<J>>>,
    /// Most jobs one statement takes.
    group_max: usize,
}

impl<K: Hash + Eq + Copy, J: Queued> Queues<K, J> {
    /// Groups of at most `group_max` jobs (at least 1).
    pub(super) fn new(group_max: usize) -> Self {
        Queues {
            waiting: Mutex::default(),
            group_max: group_max.max(1),
        }
    }

    /// Queues `job` under `key`; returns true when no task drains the key yet, so the caller
    /// starts one.
    pub(super) fn push(&self, key: K, job: J) -> bool {
        let mut waiting = locks::lock(&self.waiting);
        match waiting.get_mut(&key) {
            Some(queue) => {
                queue.push_back(job);
                false
            }
            None => {
                waiting.insert(key, VecDeque::from([job]));
                true
            }
        }
    }

    /// The next jobs of `key` to run together, in the order they queued, or `None` (and the
    /// key is released) when none wait.
    pub(super) fn next(&self, key: K) -> Option<Vec<J>> {
        let mut waiting = locks::lock(&self.waiting);
        let queue = waiting.get_mut(&key)?;
        queue.retain(|job| !job.gone());
        if queue.is_empty() {
            waiting.remove(&key);
            return None;
        }
        let take = queue.len().min(self.group_max);
        Some(queue.drain(..take).collect())
    }

    /// Forgets `key`'s queue: its waiting jobs are dropped, so their callers hear that the
    /// task ended (a 503, nothing written), and the next job starts a new task.
    fn abandon(&self, key: K) {
        let waiting = locks::lock(&self.waiting).remove(&key);
        drop(waiting);
    }
}

/// The creates waiting, per lane.
pub(super) struct Creates {
    queues: Queues<usize, CreateJob>,
    lanes: usize,
}

impl Creates {
    /// `lanes` statements in flight at most, each writing at most `group_max` creates (both at
    /// least 1).
    pub(super) fn new(lanes: usize, group_max: usize) -> Self {
        Creates {
            queues: Queues::new(group_max),
            lanes: lanes.max(1),
        }
    }

    /// The lane of `thread`: always the same one.
    fn lane_of(&self, thread: ThreadId) -> usize {
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(thread);
        (hash % self.lanes as u64) as usize
    }

    /// Queues `job`; returns its lane when no task drains that lane yet, so the caller starts
    /// one.
    pub(super) fn push(&self, job: CreateJob) -> Option<usize> {
        let lane = self.lane_of(job.message().thread_id);
        self.queues.push(lane, job).then_some(lane)
    }

    /// The queues, for `drain`.
    pub(super) fn queues(&self) -> &Queues<usize, CreateJob> {
        &self.queues
    }
}

/// Drains `key`, one statement per group, until it is empty. `run` writes a group and
/// answers its jobs.
pub(super) async fn drain<K, J, F, Fut>(queues: &Queues<K, J>, key: K, run: F)
where
    K: Hash + Eq + Copy,
    J: Queued,
    F: Fn(Vec<J>) -> Fut,
    Fut: Future<Output = ()>,
{
    // A task that ends early (a panic in `run`, its runtime shutting down) must not leave the
    // key marked as drained by it: every later job of the key would wait for a task that is
    // gone.
    let mut guard = Abandon {
        queues,
        key,
        armed: true,
    };
    while let Some(group) = queues.next(key) {
        run(group).await;
    }
    // `next` answered `None` and released the key; it may already belong to a new task.
    guard.armed = false;
}

/// Abandons a key's queue when the task draining it ends before it is empty.
struct Abandon<'a, K: Hash + Eq + Copy, J: Queued> {
    queues: &'a Queues<K, J>,
    key: K,
    armed: bool,
}

impl<K: Hash + Eq + Copy, J: Queued> Drop for Abandon<'_, K, J> {
    fn drop(&mut self) {
        if self.armed {
            self.queues.abandon(self.key);
        }
    }
}

/// Answers every job of a group that failed as a whole with `error`'s kind.
pub(super) fn fail_all(jobs: Vec<CreateJob>, error: Error) {
    let error = std::sync::Arc::new(error);
    for job in jobs {
        let _ = job.reply.send(Err(Error::shared(&error)));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::message::{Limits, MessageKind, NewMessage, Timestamp, UserId};

    fn job(thread: ThreadId) -> (CreateJob, oneshot::Receiver<Result<Created>>) {
        let new = NewMessage::new(MessageKind::Text, "hi".into(), vec![], &Limits::default())
            .expect("a short text is valid");
        let message = Message::from_new(
            MessageId::new_v7(),
            thread,
            UserId::from_uuid(uuid::Uuid::nil()),
            new,
            Timestamp::from_micros(1),
        );
        let event = crate::events::codec::created(&message);
        let (reply, outcome) = oneshot::channel();
        let job = CreateJob {
            request: CreateRequest {
                message,
                idempotency: None,
                participants: crate::replies::Participants::DEFAULT,
            },
            event,
            reply,
        };
        (job, outcome)
    }

    #[test]
    fn a_group_takes_every_thread_in_queue_order_up_to_its_bound() {
        let creates = Creates::new(1, 3);
        let queues = creates.queues();
        let threads: Vec<ThreadId> = (0..2)
            .map(|_| ThreadId::from_uuid(uuid::Uuid::now_v7()))
            .collect();
        let mut ids = Vec::new();
        let mut outcomes = Vec::new();
        for i in 0..5 {
            let (queued, outcome) = job(threads[i % 2]);
            ids.push(queued.message().id);
            outcomes.push(outcome);
            assert_eq!(creates.push(queued).is_some(), i == 0, "one task per lane");
        }
        let first = queues.next(0).expect("a group");
        let second = queues.next(0).expect("the rest");
        let taken: Vec<_> = first
            .iter()
            .chain(&second)
            .map(|j| j.message().id)
            .collect();
        assert_eq!(first.len(), 3, "a group stops at its bound");
        assert_eq!(taken, ids, "both threads, in the order they queued");
        assert!(queues.next(0).is_none(), "the lane is released");
        drop(outcomes);
    }

    #[test]
    fn a_thread_always_queues_in_the_same_lane() {
        let creates = Creates::new(4, 8);
        let thread = ThreadId::from_uuid(uuid::Uuid::now_v7());
        let lane = creates.lane_of(thread);
        assert!((0..100).all(|_| creates.lane_of(thread) == lane));
        let spread: std::collections::HashSet<usize> = (0..64)
            .map(|_| creates.lane_of(ThreadId::from_uuid(uuid::Uuid::new_v4())))
            .collect();
        assert_eq!(spread.len(), 4, "threads spread over every lane");
    }

    #[tokio::test]
    async fn a_task_that_dies_releases_its_lane() {
        let creates = Arc::new(Creates::new(1, 8));
        let thread = ThreadId::from_uuid(uuid::Uuid::now_v7());
        let (first, first_outcome) = job(thread);
        assert_eq!(
            creates.push(first),
            Some(0),
            "the first create starts a task"
        );

        // The task takes the first create, then dies while a second waits behind it.
        let (die, dying_signal) = oneshot::channel::<()>();
        let dying_signal = Mutex::new(Some(dying_signal));
        let dying = tokio::spawn({
            let creates = Arc::clone(&creates);
            async move {
                drain(creates.queues(), 0, |_group| {
                    let signal = locks::lock(&dying_signal).take();
                    async move {
                        if let Some(signal) = signal {
                            let _ = signal.await;
                        }
                        panic!("the insert failed in a way nobody expected");
                    }
                })
                .await;
            }
        });
        tokio::task::yield_now().await;
        let (second, second_outcome) = job(thread);
        assert!(
            creates.push(second).is_none(),
            "the second waits for the running task"
        );
        let _ = die.send(());
        assert!(dying.await.is_err(), "the task panicked");
        assert!(
            first_outcome.await.is_err(),
            "its group hears the task ended"
        );
        let second = tokio::time::timeout(std::time::Duration::from_secs(5), second_outcome).await;
        assert!(
            matches!(second, Ok(Err(_))),
            "the create waiting behind it hears it too, rather than waiting forever"
        );

        let (third, third_outcome) = job(thread);
        assert_eq!(
            creates.push(third),
            Some(0),
            "the next create starts a new task"
        );
        drain(creates.queues(), 0, |group| async move {
            for job in group {
                let message = job.message().clone();
                let _ = job.reply.send(Ok(Created::New(message)));
            }
        })
        .await;
        assert!(matches!(third_outcome.await, Ok(Ok(Created::New(_)))));
        assert!(creates.queues().next(0).is_none(), "the lane is released");
    }
}
