//! Edits and removals on PostgreSQL. Edits and deletes are queued per thread, so many changes to one busy thread commit a group at a
//! time.
//!
//! Every edit and delete bumps its thread's counter, whose row lock is held until the commit
//! is on disk: the changes of one thread commit one after another whatever the service does.
//! So they queue per thread, as reaction changes queue per message: while one is in flight
//! the others wait, and the next group runs in one transaction, each change in a savepoint of
//! its own (a change refused, a message not found or not the caller's, undoes only itself),
//! numbered in the order it queued, then one commit for all. A thread one person changes at a
//! time sees no difference: its group holds one change, run in a transaction of its own as
//! before. Each change is `change_one`'s; a bulk removal is one transaction of its own.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::oneshot;

use super::change_one::{LOCK_LIVE_MANY, delete_in, edit_in, prepare_delete, run_delete};
use super::queue::{self, ChangeJob};
use super::replies::{lock_root, recount_root};
use super::{PostgresStore, db, decode};
use crate::error::{Error, Result};
use crate::message::{Message, MessageId, ThreadId, Tombstone, UserId};
use crate::rules;
use crate::storage::ChangeStore;
use crate::write::{BulkDeleteRequest, DeleteRequest, EditRequest};

#[async_trait]
impl ChangeStore for PostgresStore {
    /// Queued per thread with the thread's deletes: alone, one short transaction; many at
    /// once on one thread, a group per transaction.
    async fn edit(&self, request: EditRequest) -> Result<Message> {
        let thread = request.thread;
        let (reply, outcome) = oneshot::channel();
        self.timed("update", async {
            self.queue_change(thread, ChangeJob::Edit { request, reply });
            answer_of(outcome, "update").await
        })
        .await
    }

    /// Queued per thread with the thread's edits.
    async fn delete(&self, request: DeleteRequest) -> Result<Tombstone> {
        let thread = request.thread;
        let (reply, outcome) = oneshot::channel();
        self.timed("delete", async {
            self.queue_change(thread, ChangeJob::Delete { request, reply });
            answer_of(outcome, "delete").await
        })
        .await
    }

    /// One transaction, run again when the database ends it to break a deadlock.
    async fn delete_many(&self, request: BulkDeleteRequest) -> Result<Vec<Tombstone>> {
        let request = &request;
        let attempt = || async move {
            let BulkDeleteRequest {
                thread,
                ids,
                removal,
                at,
                participants,
            } = request;
            let ids = ids.as_slice();
            let mut client = self.client().await?;
            let lock = client
                .prepare_cached(LOCK_LIVE_MANY)
                .await
                .map_err(db("prepare"))?;
            let stmt = prepare_delete(&client).await?;
            let tx = client.transaction().await.map_err(db("begin"))?;
            let wanted: Vec<uuid::Uuid> = ids.iter().map(|id| *id.as_uuid()).collect();
            // The live ones, locked in id order (two removals of overlapping sets take their
            // locks in one order), before any change: all of them or none.
            let rows = tx
                .query(&lock, &[thread.as_uuid(), &wanted])
                .await
                .map_err(db("delete many"))?;
            let mut authors = std::collections::HashMap::with_capacity(rows.len());
            let mut roots = Vec::new();
            for row in &rows {
                let id: uuid::Uuid = row.try_get(0).map_err(decode)?;
                let author: uuid::Uuid = row.try_get(1).map_err(decode)?;
                let root: Option<uuid::Uuid> = row.try_get(2).map_err(decode)?;
                authors.insert(id, UserId::from_uuid(author));
                roots.extend(root.map(MessageId::from_uuid));
            }
            let found: Vec<(MessageId, Option<UserId>)> = ids
                .iter()
                .map(|id| (*id, authors.get(id.as_uuid()).copied()))
                .collect();
            rules::may_remove_all(&found, removal)?;
            // The roots of the replies removed, live ones locked (in id order, after the
            // removed messages, before the counter), each recounted once after every removal.
            roots.sort_unstable();
            roots.dedup();
            roots.retain(|root| !ids.contains(root));
            let mut locked = Vec::with_capacity(roots.len());
            for root in roots {
                locked.extend(lock_root(&tx, *thread, root).await?);
            }
            let mut tombstones = Vec::with_capacity(ids.len());
            for (id, author) in found {
                let removed = rules::remove(*thread, id, author, removal, *at)?;
                let author = author.ok_or(Error::NotFound)?;
                let tombstone = run_delete(&tx, &stmt, &removed, author)
                    .await?
                    .ok_or_else(|| Error::internal("delete many", "a locked message went away"))?;
                tombstones.push(tombstone);
            }
            for root in locked {
                recount_root(&tx, root, *participants, *at).await?;
            }
            tx.commit().await.map_err(db("commit"))?;
            for id in ids {
                self.recent.forget(*thread, *id);
            }
            Ok(tombstones)
        };
        self.timed(
            "delete many",
            super::rerun_lost_races("delete many", attempt),
        )
        .await
    }
}

/// The live messages of thread $1 a group changes ($2) and the roots of the ones it removes
/// ($3), locked in id order. Taken before the first change takes the thread's counter, so a
/// group never holds the counter while it waits for a message: the order a reply and a
/// reaction take their locks in (messages, then the counter), with no circle among them.
const LOCK_GROUP: &str = r#"
SELECT id FROM messages
WHERE thread_id = $1 AND deleted_at IS NULL
  AND (id = ANY($2)
       OR id IN (SELECT root_id FROM messages WHERE thread_id = $1 AND id = ANY($3)))
ORDER BY id
FOR UPDATE
"#;

/// Locks what `jobs` change (see `LOCK_GROUP`) in the transaction `tx`.
async fn lock_group<C: deadpool_postgres::GenericClient + Sync>(
    tx: &C,
    thread: ThreadId,
    jobs: &[ChangeJob],
) -> Result<()> {
    let mut changed = Vec::with_capacity(jobs.len());
    let mut removed = Vec::new();
    for job in jobs {
        match job {
            ChangeJob::Edit { request, .. } => changed.push(*request.id.as_uuid()),
            ChangeJob::Delete { request, .. } => {
                changed.push(*request.id.as_uuid());
                removed.push(*request.id.as_uuid());
            }
        }
    }
    let stmt = tx.prepare_cached(LOCK_GROUP).await.map_err(db("prepare"))?;
    tx.query(&stmt, &[thread.as_uuid(), &changed, &removed])
        .await
        .map_err(db("lock changes"))?;
    Ok(())
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

/// Runs a queued change on `client` (a connection, or a savepoint of the group's transaction).
async fn run<C: deadpool_postgres::GenericClient + Sync>(job: &ChangeJob, client: &C) -> Done {
    match job {
        ChangeJob::Edit { request, .. } => Done::Edited(edit_in(client, request).await),
        ChangeJob::Delete { request, .. } => {
            Done::Deleted(request.id, delete_in(client, request).await)
        }
    }
}

/// Answers a queued change's caller with `done`, or with `error` when the group failed as a
/// whole.
fn answer(job: ChangeJob, done: std::result::Result<Done, &Arc<Error>>) {
    match (job, done) {
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
    /// Queues a change on its thread; the first of a thread starts the task that drains it.
    fn queue_change(&self, thread: ThreadId, job: ChangeJob) {
        if self.changes.push(thread, job) {
            let store = self.clone();
            tokio::spawn(async move {
                let changes = Arc::clone(&store.changes);
                queue::drain(&changes, thread, |jobs| store.change_group(thread, jobs)).await;
            });
        }
    }

    /// Runs a group of one thread's edits and deletes and answers each: alone when it is
    /// one, else in one transaction.
    async fn change_group(&self, thread: ThreadId, jobs: Vec<ChangeJob>) {
        let outcomes = if let [job] = jobs.as_slice() {
            let alone = super::rerun_lost_races("change", || self.change_alone(thread, job));
            tokio::time::timeout(self.operation_timeout, alone)
                .await
                .unwrap_or_else(|_| Err(Error::unavailable("change", "timed out")))
                .map(|done| vec![done])
        } else {
            let together =
                super::rerun_lost_races("change", || self.change_together(thread, &jobs));
            tokio::time::timeout(self.operation_timeout, together)
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
                    answer(job, Ok(done));
                }
            }
            Err(error) => {
                if jobs.len() > 1 {
                    tracing::warn!(%error, changes = jobs.len(), "a group of edits and deletes failed");
                }
                let error = Arc::new(error);
                for job in jobs {
                    if let ChangeJob::Delete { request, .. } = &job {
                        self.recent.forget(thread, request.id);
                    }
                    answer(job, Err(&error));
                }
            }
        }
    }

    /// One change in a transaction of its own. A removal locks its message and the root of a
    /// reply in id order first (it changes both); an edit locks its one message itself.
    async fn change_alone(&self, thread: ThreadId, job: &ChangeJob) -> Result<Done> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db("begin"))?;
        if let ChangeJob::Delete { .. } = job {
            lock_group(&tx, thread, std::slice::from_ref(job)).await?;
        }
        let done = run(job, &tx).await;
        match done.failure() {
            // Ended by the database to break a deadlock: run again (see `change_group`).
            Some(error) if super::lost_a_race(error) => return Err(done.into_failure()),
            // Not written: the transaction is rolled back as it drops.
            Some(_) => {}
            None => tx.commit().await.map_err(db("commit"))?,
        }
        Ok(done)
    }

    /// Every change of the group in one transaction, each in a savepoint of its own, in the
    /// order they queued; one commit. A deadlock ends the transaction as a whole (an
    /// `Unavailable` outcome), and the group runs again. `Err` when the transaction failed as a whole (the
    /// database went away, the commit failed). Before the commit was sent, that means nothing
    /// was written; a commit whose answer was lost may have been written, and the caller is
    /// told so (an `Unavailable` outcome is unknown, not refused).
    async fn change_together(&self, thread: ThreadId, jobs: &[ChangeJob]) -> Result<Vec<Done>> {
        let mut client = self.client().await?;
        let mut tx = client.transaction().await.map_err(db("begin"))?;
        lock_group(&tx, thread, jobs).await?;
        let mut outcomes = Vec::with_capacity(jobs.len());
        for job in jobs {
            let savepoint = tx.savepoint("change").await.map_err(db("savepoint"))?;
            let done = run(job, &savepoint).await;
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
