//! Edits and deletes queued per thread, so many changes to one busy thread commit a group at a
//! time.
//!
//! Every edit and delete bumps its thread's counter, whose row lock is held until the commit
//! is on disk: the changes of one thread commit one after another whatever the service does.
//! So they queue per thread, as reaction changes queue per message: while one is in flight
//! the others wait, and the next group runs in one transaction, each change in a savepoint of
//! its own (a change refused, a message not found or not the caller's, undoes only itself),
//! numbered in the order it queued, then one commit for all. A thread one person changes at a
//! time sees no difference: its group holds one change, run in a transaction of its own as
//! before.

use std::sync::Arc;

use tokio::sync::oneshot;

use super::PostgresStore;
use super::batch::{self, Queued, Queues};
use super::db;
use super::messages::{delete_in, edit_in};
use crate::error::{Error, Result};
use crate::message::{Message, MessageId, MessagePatch, ThreadId, Timestamp, Tombstone, UserId};
use crate::removal::Removal;
use crate::storage::{DeleteEvent, UpdateEvent};

/// An edit or a delete waiting for its group.
pub(super) enum ChangeJob {
    Edit {
        id: MessageId,
        user: UserId,
        patch: MessagePatch,
        now: Timestamp,
        event: UpdateEvent,
        reply: oneshot::Sender<Result<Message>>,
    },
    Delete {
        id: MessageId,
        removal: Removal,
        now: Timestamp,
        event: DeleteEvent,
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

/// What a change came to, kept until its group's commit decides whether it stands.
enum Done {
    Edited(Result<Message>),
    Deleted(MessageId, Result<Tombstone>),
}

impl Done {
    /// The error the change answers, if it failed.
    fn failure(&self) -> Option<&Error> {
        match self {
            Done::Edited(Err(error)) | Done::Deleted(_, Err(error)) => Some(error),
            _ => None,
        }
    }

    /// The error the change failed with; a change that did not fail is a bug of the caller.
    fn into_failure(self) -> Error {
        match self {
            Done::Edited(Err(error)) | Done::Deleted(_, Err(error)) => error,
            _ => Error::internal("change", "a change that was written taken for a failure"),
        }
    }
}

/// The edits and deletes waiting, per thread.
pub(super) type Edits = Queues<ThreadId, ChangeJob>;

impl ChangeJob {
    /// Runs the change on `client` (a connection, or a savepoint of the group's transaction).
    async fn run<C: deadpool_postgres::GenericClient + Sync>(
        &self,
        client: &C,
        thread: ThreadId,
    ) -> Done {
        match self {
            ChangeJob::Edit {
                id,
                user,
                patch,
                now,
                event,
                ..
            } => Done::Edited(edit_in(client, thread, *id, *user, patch, *now, *event).await),
            ChangeJob::Delete {
                id,
                removal,
                now,
                event,
                ..
            } => Done::Deleted(
                *id,
                delete_in(client, thread, *id, removal, *now, *event).await,
            ),
        }
    }

    /// Answers the caller with `done`, or with `error` when the group failed as a whole.
    fn answer(self, done: std::result::Result<Done, &Arc<Error>>) {
        match (self, done) {
            (ChangeJob::Edit { reply, .. }, Ok(Done::Edited(outcome))) => {
                let _ = reply.send(outcome);
            }
            (ChangeJob::Delete { reply, .. }, Ok(Done::Deleted(_, outcome))) => {
                let _ = reply.send(outcome);
            }
            (ChangeJob::Edit { reply, .. }, done) => {
                let _ = reply.send(Err(failed(done)));
            }
            (ChangeJob::Delete { reply, .. }, done) => {
                let _ = reply.send(Err(failed(done)));
            }
        }
    }
}

/// Waits for a queued change's answer; a task that ended without one is a 503.
async fn answer_of<T>(outcome: oneshot::Receiver<Result<T>>, what: &'static str) -> Result<T> {
    outcome
        .await
        .map_err(|_| Error::unavailable(what, "the group's task ended"))?
}

/// The error a change answers when its group failed, or (a bug) its outcome does not match it.
fn failed(done: std::result::Result<Done, &Arc<Error>>) -> Error {
    match done {
        Err(error) => Error::shared(error),
        Ok(_) => Error::internal("change", "an outcome answered the wrong kind of change"),
    }
}

impl PostgresStore {
    /// Queues an edit on its thread and waits for its answer.
    pub(super) async fn queue_edit(
        &self,
        thread: ThreadId,
        id: MessageId,
        user: UserId,
        patch: MessagePatch,
        now: Timestamp,
        event: UpdateEvent,
    ) -> Result<Message> {
        let (reply, outcome) = oneshot::channel();
        self.queue_change(
            thread,
            ChangeJob::Edit {
                id,
                user,
                patch,
                now,
                event,
                reply,
            },
        );
        answer_of(outcome, "update").await
    }

    /// Queues a delete on its thread and waits for its answer.
    pub(super) async fn queue_delete(
        &self,
        thread: ThreadId,
        id: MessageId,
        removal: Removal,
        now: Timestamp,
        event: DeleteEvent,
    ) -> Result<Tombstone> {
        let (reply, outcome) = oneshot::channel();
        self.queue_change(
            thread,
            ChangeJob::Delete {
                id,
                removal,
                now,
                event,
                reply,
            },
        );
        answer_of(outcome, "delete").await
    }

    fn queue_change(&self, thread: ThreadId, job: ChangeJob) {
        if self.edits.push(thread, job) {
            let store = self.clone();
            tokio::spawn(async move {
                let edits = Arc::clone(&store.edits);
                batch::drain(&edits, thread, |jobs| store.change_group(thread, jobs)).await;
            });
        }
    }

    /// Runs a group of one thread's edits and deletes and answers each: alone when it is
    /// one, else in one transaction.
    async fn change_group(&self, thread: ThreadId, jobs: Vec<ChangeJob>) {
        let outcomes = if let [job] = jobs.as_slice() {
            tokio::time::timeout(self.operation_timeout, self.change_alone(thread, job))
                .await
                .unwrap_or_else(|_| Err(Error::unavailable("change", "timed out")))
                .map(|done| vec![done])
        } else {
            tokio::time::timeout(self.operation_timeout, self.change_together(thread, &jobs))
                .await
                .unwrap_or_else(|_| Err(Error::unavailable("change", "timed out")))
        };
        match outcomes {
            Ok(outcomes) => {
                for done in &outcomes {
                    match done {
                        Done::Edited(Ok(message)) => self.recent.remember(message),
                        Done::Edited(Err(_)) => {}
                        Done::Deleted(id, _) => self.recent.forget(thread, *id),
                    }
                }
                for (job, done) in jobs.into_iter().zip(outcomes) {
                    job.answer(Ok(done));
                }
            }
            Err(error) => {
                if jobs.len() > 1 {
                    tracing::warn!(%error, changes = jobs.len(), "a group of edits and deletes failed");
                }
                let error = Arc::new(error);
                for job in jobs {
                    if let ChangeJob::Delete { id, .. } = &job {
                        self.recent.forget(thread, *id);
                    }
                    job.answer(Err(&error));
                }
            }
        }
    }

    /// One change in a transaction of its own (a delete is one statement: no transaction).
    async fn change_alone(&self, thread: ThreadId, job: &ChangeJob) -> Result<Done> {
        let mut client = self.client().await?;
        if let ChangeJob::Delete { .. } = job {
            return Ok(job.run(&client, thread).await);
        }
        let tx = client.transaction().await.map_err(db("begin"))?;
        let done = job.run(&tx, thread).await;
        match &done {
            // Not written: the transaction is rolled back as it drops.
            Done::Edited(Err(_)) => {}
            _ => tx.commit().await.map_err(db("commit"))?,
        }
        Ok(done)
    }

    /// Every change of the group in one transaction, each in a savepoint of its own, in the
    /// order they queued; one commit. `Err` when the transaction failed as a whole (the
    /// database went away, the commit failed). Before the commit was sent, that means nothing
    /// was written; a commit whose answer was lost may have been written, and the caller is
    /// told so (an `Unavailable` outcome is unknown, not refused).
    async fn change_together(&self, thread: ThreadId, jobs: &[ChangeJob]) -> Result<Vec<Done>> {
        let mut client = self.client().await?;
        let mut tx = client.transaction().await.map_err(db("begin"))?;
        let mut outcomes = Vec::with_capacity(jobs.len());
        for job in jobs {
            let savepoint = tx.savepoint("change").await.map_err(db("savepoint"))?;
            let done = job.run(&savepoint, thread).await;
            match done.failure() {
                None => savepoint.commit().await.map_err(db("release savepoint"))?,
                // The database itself failed: the transaction cannot be trusted to go on.
                Some(Error::Unavailable { .. }) => return Err(done.into_failure()),
                Some(_) => savepoint
                    .rollback()
                    .await
                    .map_err(db("roll back savepoint"))?,
            }
            outcomes.push(done);
        }
        tx.commit().await.map_err(db("commit"))?;
        Ok(outcomes)
    }
}
