//! The one writer: a thread that owns the only connection allowed to write.
//!
//! It takes the writes queued while it was busy (up to `max_batch`), runs them inside one
//! transaction, commits, and only then answers each caller: a write is acknowledged once it
//! is durable, and a batch pays for one sync instead of one per write (group commit). A write
//! that fails undoes only itself: one that may be refused after it changed something runs in
//! a savepoint of its own, the others are refused before they change anything (see [`Undo`]).
//! A write whose caller stopped waiting (its timeout ran out) is not run.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::config::SqliteConfig;
use super::error::{Failure, classify, code_of, db};
use crate::error::{Error, Result};

/// Why a batch failed as a whole (its transaction could not begin or commit, or SQLite rolled
/// it back), kept so each of its writes can be told.
struct BatchFailure {
    what: &'static str,
    failure: Failure,
    text: String,
}

impl BatchFailure {
    fn of(what: &'static str, error: &rusqlite::Error) -> Self {
        BatchFailure {
            what,
            failure: classify(code_of(error)),
            text: error.to_string(),
        }
    }

    fn to_error(&self) -> Error {
        match self.failure {
            Failure::Unavailable => Error::unavailable(self.what, self.text.clone()),
            Failure::Bug => Error::internal(self.what, self.text.clone()),
        }
    }
}

/// How a write that fails is undone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Undo {
    /// The write runs in a savepoint of its own, rolled back should it fail: a write that may
    /// be refused after it changed something (a bulk delete that meets a message it may not
    /// delete).
    Savepoint,
    /// The write runs without a savepoint: it is refused, if at all, by what it reads before
    /// it changes anything, so an error that finds no change made needs no undo. Should it
    /// fail after changing something all the same (the file, not the request: a full disk,
    /// an I/O error), the transaction is rolled back and the writes that ran in it fail with
    /// it. A savepoint costs a copy of every page the write touches (SQLite's sub-journal):
    /// 4 % of both cores in a profile of creates.
    Transaction,
}

/// A queued write.
trait Task: Send {
    /// Whether the caller stopped waiting.
    fn abandoned(&self) -> bool;
    /// Runs the write inside the open transaction. Answers whether the transaction must be
    /// rolled back (the write failed after changing something, with no savepoint).
    fn run(&mut self, conn: &Connection) -> Rollback;
    /// Answers the caller once the batch committed, or failed to.
    fn finish(self: Box<Self>, batch: std::result::Result<(), &BatchFailure>);
}

/// Whether a write left the transaction to be rolled back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rollback {
    No,
    Needed,
}

struct Call<T, F> {
    what: &'static str,
    undo: Undo,
    work: Option<F>,
    outcome: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
}

impl<T, F> Task for Call<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> Result<T> + Send,
{
    fn abandoned(&self) -> bool {
        self.reply.is_closed()
    }

    fn run(&mut self, conn: &Connection) -> Rollback {
        let Some(work) = self.work.take() else {
            return Rollback::No;
        };
        let guarded = |work: F| {
            catch_unwind(AssertUnwindSafe(|| work(conn)))
                .unwrap_or_else(|_| Err(Error::internal(self.what, "the write panicked")))
        };
        if self.undo == Undo::Transaction {
            let before = conn.total_changes();
            let outcome = guarded(work);
            let changed = conn.total_changes() != before;
            let rollback = if outcome.is_err() && changed && !conn.is_autocommit() {
                tracing::warn!(
                    what = self.what,
                    "SQLite: a write failed after changing the file; its batch is rolled back"
                );
                Rollback::Needed
            } else {
                Rollback::No
            };
            self.outcome = Some(outcome);
            return rollback;
        }
        if let Err(e) = run_cached(conn, "SAVEPOINT write") {
            self.outcome = Some(Err(db(self.what)(e)));
            return Rollback::No;
        }
        let outcome = guarded(work);
        if conn.is_autocommit() {
            // SQLite rolled back the whole transaction (a full disk, an I/O error): the
            // savepoint went with it, and the batch sees to the rest.
            self.outcome = Some(outcome);
            return Rollback::No;
        }
        let ended = if outcome.is_ok() {
            run_cached(conn, "RELEASE write")
        } else {
            run_cached(conn, "ROLLBACK TO write").and_then(|()| run_cached(conn, "RELEASE write"))
        };
        let rollback = if outcome.is_err() && ended.is_err() {
            // The failed write could not be undone alone.
            Rollback::Needed
        } else {
            Rollback::No
        };
        self.outcome = Some(match ended {
            Ok(()) => outcome,
            Err(e) => Err(db(self.what)(e)),
        });
        rollback
    }

    fn finish(self: Box<Self>, batch: std::result::Result<(), &BatchFailure>) {
        let outcome = match (self.outcome, batch) {
            (Some(Err(e)), _) => Err(e),
            (_, Err(failure)) => Err(failure.to_error()),
            (Some(Ok(value)), Ok(())) => Ok(value),
            (None, Ok(())) => Err(Error::internal(self.what, "the write did not run")),
        };
        let _ = self.reply.send(outcome);
    }
}

/// Runs one of the writer's own statements from the connection's cache: the savepoint opened
/// and released around every write is parsed once, not once per write.
fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

/// Pages the writer keeps in memory (negative: KiB). SQLite's default of 2 MiB does not hold
/// the pages a busy file's writes come back to (the newest leaf of every thread and of each
/// index, and the interior pages above them), and every miss is a read from the file.
const WRITER_CACHE_KIB: i64 = 32 * 1024;

/// Pages of log after which a commit copies the log into the file (SQLite's default is 1,000).
/// A page written many times between two checkpoints is copied once: the newest leaf of a
/// busy thread is, so fewer checkpoints copy fewer pages for the same writes.
const CHECKPOINT_PAGES: i64 = 4_000;

fn tune(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
    conn.pragma_update(None, "wal_autocheckpoint", CHECKPOINT_PAGES)
}

/// The handle the store writes through; the thread ends when the last handle drops.
pub(super) struct Writer {
    queue: mpsc::Sender<Box<dyn Task>>,
    timeout: Duration,
}

impl Writer {
    /// Starts the thread on `conn`, which must be the only connection that writes the file.
    pub(super) fn start(conn: Connection, config: &SqliteConfig) -> Result<Self> {
        // The store's statements and the writer's own, without evicting one another.
        conn.set_prepared_statement_cache_capacity(64);
        tune(&conn).map_err(db("configure the SQLite writer"))?;
        let (queue, tasks) = mpsc::channel::<Box<dyn Task>>();
        let max_batch = config.max_batch.max(1);
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || serve(&conn, &tasks, max_batch))
            .map_err(|e| Error::unavailable("start the SQLite writer", e))?;
        Ok(Writer {
            queue,
            timeout: config.operation_timeout,
        })
    }

    /// Queues `work` and waits for its outcome, committed, for at most the operation timeout.
    /// A failed write is undone as `undo` says.
    pub(super) async fn call<T, F>(&self, what: &'static str, undo: Undo, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (reply, outcome) = oneshot::channel();
        let task = Box::new(Call {
            what,
            undo,
            work: Some(work),
            outcome: None,
            reply,
        });
        let stopped = || Error::unavailable(what, "the SQLite writer has stopped");
        self.queue.send(task).map_err(|_| stopped())?;
        match tokio::time::timeout(self.timeout, outcome).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(stopped()),
            Err(_) => Err(Error::unavailable(what, "timed out")),
        }
    }
}

fn serve(conn: &Connection, tasks: &mpsc::Receiver<Box<dyn Task>>, max_batch: usize) {
    while let Ok(first) = tasks.recv() {
        let mut batch = VecDeque::from([first]);
        while batch.len() < max_batch {
            match tasks.try_recv() {
                Ok(task) => batch.push_back(task),
                Err(_) => break,
            }
        }
        batch.retain(|task| !task.abandoned());
        while !batch.is_empty() {
            commit_some(conn, &mut batch);
        }
    }
}

/// Runs the writes of `batch` in one transaction and answers them, taking them off the
/// front. When SQLite rolls the transaction back under a write (a full disk, an I/O error),
/// or a write fails after changing the file and cannot be undone alone, that write and those
/// before it in the transaction fail, and the rest stay in `batch` for a transaction of their
/// own.
fn commit_some(conn: &Connection, batch: &mut VecDeque<Box<dyn Task>>) {
    if let Err(error) = run_cached(conn, "BEGIN IMMEDIATE") {
        let failure = BatchFailure::of("begin", &error);
        tracing::warn!(%error, writes = batch.len(), "SQLite: a batch of writes could not begin");
        for task in batch.drain(..) {
            task.finish(Err(&failure));
        }
        return;
    }
    let mut done = Vec::with_capacity(batch.len());
    while let Some(mut task) = batch.pop_front() {
        let rollback = task.run(conn);
        done.push(task);
        if rollback == Rollback::Needed {
            // A write failed after changing the file and could not be undone alone: nothing
            // of this transaction may commit.
            if let Err(error) = run_cached(conn, "ROLLBACK") {
                tracing::error!(%error, "SQLite: a batch could not be rolled back");
            }
        }
        if rollback == Rollback::Needed || conn.is_autocommit() {
            let failure = BatchFailure {
                what: "write",
                failure: Failure::Unavailable,
                text: "SQLite rolled back the transaction after another write of the batch failed"
                    .to_owned(),
            };
            tracing::warn!(
                undone = done.len(),
                "SQLite: a write failed and SQLite rolled back its batch"
            );
            for task in done {
                task.finish(Err(&failure));
            }
            return;
        }
    }
    let committed = run_cached(conn, "COMMIT").map_err(|error| {
        // A failed COMMIT may leave the transaction open: end it, undoing the batch.
        let _ = conn.execute_batch("ROLLBACK");
        tracing::warn!(%error, writes = done.len(), "SQLite: a batch of writes could not commit");
        BatchFailure::of("commit", &error)
    });
    for task in done {
        task.finish(committed.as_ref().map(|_| ()));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::mpsc as std_mpsc;

    use super::*;

    fn rows(conn: &Connection) -> Result<Vec<String>> {
        let mut stmt = conn
            .prepare("SELECT x FROM t ORDER BY x")
            .map_err(db("read"))?;
        stmt.query_map([], |row| row.get(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<String>>>())
            .map_err(db("read"))
    }

    fn insert(conn: &Connection, x: &str) -> Result<()> {
        conn.execute("INSERT INTO t (x) VALUES (?1)", [x])
            .map(drop)
            .map_err(db("insert"))
    }

    /// A writer on a database of one table, and a first write that holds the writer until
    /// `go` is sent, so that the writes queued meanwhile run as one batch.
    async fn held_writer() -> (
        Arc<Writer>,
        std_mpsc::Sender<()>,
        tokio::task::JoinHandle<()>,
    ) {
        let conn = Connection::open_in_memory().expect("open");
        conn.execute_batch("CREATE TABLE t (x TEXT PRIMARY KEY)")
            .expect("table");
        let writer = Arc::new(Writer::start(conn, &SqliteConfig::new(":memory:")).expect("writer"));
        let (go, wait) = std_mpsc::channel::<()>();
        let (started, running) = oneshot::channel::<()>();
        let first = {
            let writer = Arc::clone(&writer);
            tokio::spawn(async move {
                writer
                    .call("hold", Undo::Savepoint, move |conn| {
                        let _ = started.send(());
                        let _ = wait.recv();
                        insert(conn, "a")
                    })
                    .await
                    .expect("the first write commits");
            })
        };
        running.await.expect("the first write runs");
        (writer, go, first)
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_write_without_a_savepoint_that_fails_after_changing_rolls_back_its_batch() {
        let (writer, go, first) = held_writer().await;
        let release = async {
            tokio::task::yield_now().await;
            go.send(()).expect("release the first write");
        };
        // Queued in this order while the first write holds the writer: one batch.
        let (before, failing, after, refused, ()) = tokio::join!(
            writer.call("before", Undo::Transaction, |conn| insert(conn, "b")),
            writer.call("failing", Undo::Transaction, |conn| {
                insert(conn, "c")?;
                Err::<(), _>(Error::internal("failing", "after a change"))
            }),
            writer.call("after", Undo::Transaction, |conn| insert(conn, "d")),
            writer.call("refused", Undo::Transaction, |_| {
                Err::<(), _>(Error::NotFound)
            }),
            release,
        );
        first.await.expect("first");
        assert!(
            matches!(before, Err(Error::Unavailable { .. })),
            "a write of the rolled-back transaction is told to retry: {before:?}"
        );
        assert!(
            matches!(failing, Err(Error::Internal { .. })),
            "{failing:?}"
        );
        after.expect("a write after the failed one commits in a transaction of its own");
        assert!(matches!(refused, Err(Error::NotFound)));
        let rows = writer
            .call("read", Undo::Savepoint, rows)
            .await
            .expect("rows");
        assert_eq!(
            rows,
            ["a", "d"],
            "nothing of the rolled-back transaction stays"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_write_refused_before_it_changes_anything_leaves_its_batch_alone() {
        let (writer, go, first) = held_writer().await;
        let release = async {
            tokio::task::yield_now().await;
            go.send(()).expect("release the first write");
        };
        let (before, refused, after, ()) = tokio::join!(
            writer.call("before", Undo::Transaction, |conn| insert(conn, "b")),
            writer.call("refused", Undo::Transaction, |_| {
                Err::<(), _>(Error::NotFound)
            }),
            writer.call("after", Undo::Transaction, |conn| insert(conn, "d")),
            release,
        );
        first.await.expect("first");
        before.expect("before");
        assert!(matches!(refused, Err(Error::NotFound)));
        after.expect("after");
        let rows = writer
            .call("read", Undo::Savepoint, rows)
            .await
            .expect("rows");
        assert_eq!(rows, ["a", "b", "d"]);
    }
}
