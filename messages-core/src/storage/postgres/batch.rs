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
}

/// Drains `thread`'s queue, one statement per batch, until it is empty. `insert` writes a
/// batch and answers its jobs.
pub(super) async fn drain<F, Fut>(queues: Arc<Queues>, thread: ThreadId, insert: F)
where
    F: Fn(Vec<Job>) -> Fut,
    Fut: Future<Output = ()>,
{
    while let Some(batch) = queues.next(thread) {
        insert(batch).await;
    }
}

/// Answers every job of a batch that failed as a whole with `error`'s kind.
pub(super) fn fail_all(jobs: Vec<Job>, error: &Error) {
    for job in jobs {
        let copy = match error {
            Error::Unavailable { what, source } => Error::unavailable(what, source.to_string()),
            Error::Internal { what, source } => Error::internal(what, source.to_string()),
            Error::Invalid { field, reason } => Error::invalid(field, reason.clone()),
            Error::NotFound => Error::NotFound,
            Error::Forbidden => Error::Forbidden,
            Error::InvalidCursor => Error::InvalidCursor,
            Error::IdempotencyConflict => Error::IdempotencyConflict,
        };
        let _ = job.reply.send(Err(copy));
    }
}
