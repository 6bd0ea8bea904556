//! The one writer: a thread that owns the only connection allowed to write.
//!
//! It takes the writes queued while it was busy (up to `max_batch`), runs each in a savepoint
//! of its own inside one transaction, commits, and only then answers each caller: a write is
//! acknowledged once it is durable, and a batch pays for one sync instead of one per write
//! (group commit). A write whose caller stopped waiting (its timeout ran out) is not run.

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

/// A queued write.
trait Task: Send {
    /// Whether the caller stopped waiting.
    fn abandoned(&self) -> bool;
    /// Runs the write inside the open transaction.
    fn run(&mut self, conn: &Connection);
    /// Answers the caller once the batch committed, or failed to.
    fn finish(self: Box<Self>, batch: std::result::Result<(), &BatchFailure>);
}

struct Call<T, F> {
    what: &'static str,
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

    fn run(&mut self, conn: &Connection) {
        let Some(work) = self.work.take() else { return };
        if let Err(e) = run_cached(conn, "SAVEPOINT write") {
            self.outcome = Some(Err(db(self.what)(e)));
            return;
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| work(conn)))
            .unwrap_or_else(|_| Err(Error::internal(self.what, "the write panicked")));
        if conn.is_autocommit() {
            // SQLite rolled back the whole transaction (a full disk, an I/O error): the
            // savepoint went with it, and the batch sees to the rest.
            self.outcome = Some(outcome);
            return;
        }
        let ended = if outcome.is_ok() {
            run_cached(conn, "RELEASE write")
        } else {
            run_cached(conn, "ROLLBACK TO write").and_then(|()| run_cached(conn, "RELEASE write"))
        };
        self.outcome = Some(match ended {
            Ok(()) => outcome,
            Err(e) => Err(db(self.what)(e)),
        });
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
    pub(super) async fn call<T, F>(&self, what: &'static str, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (reply, outcome) = oneshot::channel();
        let task = Box::new(Call {
            what,
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
/// that write and those before it in the transaction fail, and the rest stay in `batch` for
/// a transaction of their own.
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
        task.run(conn);
        done.push(task);
        if conn.is_autocommit() {
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
