//! Creates of one thread committed together.
//!
//! A thread's writes commit one at a time: each holds the thread's counter row from its bump
//! to its commit (see `messages`), and a commit waits for its WAL to reach the disk. In a busy
//! room (every writer on one thread) that makes the thread's commit rate the room's write
//! rate. So creates queue per thread: while one statement for the thread is in flight, the
//! creates that arrive wait, and the next statement inserts all of them, numbered in the
//! order they queued, with one bump of the counter and one commit. A thread with one writer at
//! a time sees no difference: its queue holds one create.
//!
//! The queue is drained by a task of its own, not by a request, so a client that goes away
//! cannot strand the creates queued behind its own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::error::{Error, Result};
use crate::locks;
use crate::message::{Message, RequestFingerprint, ThreadId};
use crate::storage::{Created, OutboxEvent};

/// One create waiting for its statement.
pub(super) struct Job {
    pub(super) message: Message,
    pub(super) idempotency: Option<(String, RequestFingerprint)>,
    pub(super) event: OutboxEvent,
    pub(super) reply: oneshot::Sender<Result<Created>>,
}

/// The creates waiting, per thread; a thread is present while a task drains it.
#[derive(Default)]
pub(super) struct Queues {
    threads: Mutex<HashMap<ThreadId, Vec<Job>>>,
}

/// Largest number of creates one statement inserts.
pub(super) const MAX_BATCH: usize = 256;

impl Queues {
    /// Queues `job`; returns true when no task drains the thread yet, so the caller starts one.
    pub(super) fn push(&self, job: Job) -> bool {
        let mut threads = locks::lock(&self.threads);
        match threads.get_mut(&job.message.thread_id) {
            Some(waiting) => {
                waiting.push(job);
                false
            }
            None => {
                threads.insert(job.message.thread_id, vec![job]);
                true
            }
        }
    }

    /// The next creates of `thread` to insert together, or `None` (and the thread is
    /// released) when none wait.
    pub(super) fn next(&self, thread: ThreadId) -> Option<Vec<Job>> {
        let mut threads = locks::lock(&self.threads);
        let waiting = threads.get_mut(&thread)?;
        // A caller that stopped waiting (its timeout ran out) is not written for.
        waiting.retain(|job| !job.reply.is_closed());
        if waiting.is_empty() {
            threads.remove(&thread);
            return None;
        }
        let take = waiting.len().min(MAX_BATCH);
        Some(waiting.drain(..take).collect())
    }

    /// Forgets `thread`'s queue: its waiting creates are dropped, so their callers hear that
    /// the task ended (a 503, nothing written), and the next create starts a new task.
    fn abandon(&self, thread: ThreadId) {
        let waiting = locks::lock(&self.threads).remove(&thread);
        drop(waiting);
    }
}

/// Drains `thread`'s queue, one statement per batch, until it is empty. `insert` writes a
/// batch and answers its jobs.
pub(super) async fn drain<F, Fut>(queues: Arc<Queues>, thread: ThreadId, insert: F)
where
    F: Fn(Vec<Job>) -> Fut,
    Fut: Future<Output = ()>,
{
    // A task that ends early (a panic in `insert`, its runtime shutting down) must not leave
    // the thread marked as drained by it: every later create of the thread would wait for a
    // task that is gone.
    let mut guard = Abandon {
        queues: &queues,
        thread,
        armed: true,
    };
    while let Some(batch) = queues.next(thread) {
        insert(batch).await;
    }
    // `next` answered `None` and released the thread; it may already belong to a new task.
    guard.armed = false;
}

/// Abandons a thread's queue when the task draining it ends before it is empty.
struct Abandon<'a> {
    queues: &'a Queues,
    thread: ThreadId,
    armed: bool,
}

impl Drop for Abandon<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.queues.abandon(self.thread);
        }
    }
}

/// Answers every job of a batch that failed as a whole with `error`'s kind.
pub(super) fn fail_all(jobs: Vec<Job>, error: Error) {
    let error = std::sync::Arc::new(error);
    for job in jobs {
        let _ = job.reply.send(Err(Error::shared(&error)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Limits, MessageId, MessageKind, NewMessage, Timestamp, UserId};

    fn job(thread: ThreadId) -> (Job, oneshot::Receiver<Result<Created>>) {
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
        let job = Job {
            message,
            idempotency: None,
            event,
            reply,
        };
        (job, outcome)
    }

    #[tokio::test]
    async fn a_task_that_dies_releases_its_thread() {
        let queues = Arc::new(Queues::default());
        let thread = ThreadId::from_uuid(uuid::Uuid::now_v7());
        let (first, first_outcome) = job(thread);
        assert!(queues.push(first), "the first create starts a task");

        // The task takes the first create, then dies while a second waits behind it.
        let (die, dying_signal) = oneshot::channel::<()>();
        let dying_signal = Mutex::new(Some(dying_signal));
        let dying = tokio::spawn({
            let queues = Arc::clone(&queues);
            async move {
                drain(queues, thread, |_batch| {
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
            !queues.push(second),
            "the second waits for the running task"
        );
        let _ = die.send(());
        assert!(dying.await.is_err(), "the task panicked");
        assert!(
            first_outcome.await.is_err(),
            "its batch hears the task ended"
        );
        let second = tokio::time::timeout(std::time::Duration::from_secs(5), second_outcome).await;
        assert!(
            matches!(second, Ok(Err(_))),
            "the create waiting behind it hears it too, rather than waiting forever"
        );

        let (third, third_outcome) = job(thread);
        assert!(queues.push(third), "the next create starts a new task");
        drain(Arc::clone(&queues), thread, |batch| async move {
            for job in batch {
                let message = job.message.clone();
                let _ = job.reply.send(Ok(Created::New(message)));
            }
        })
        .await;
        assert!(matches!(third_outcome.await, Ok(Ok(Created::New(_)))));
        assert!(queues.next(thread).is_none(), "the thread is released");
    }
}
