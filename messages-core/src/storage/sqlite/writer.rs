//! The one writer: a thread that owns the only connection allowed to write.
//!
//! It takes the commands queued while it was busy (up to `max_batch`), runs them inside one
//! transaction, commits, and only then answers each caller: a write is acknowledged once it is
//! durable, and a batch pays for one sync instead of one per write (group commit). A write
//! that fails undoes only itself (see `command`). A write whose caller stopped waiting (its
//! timeout ran out) is not run. [`Command::Shutdown`] stops the thread once the writes queued
//! before it are committed: stopping is a message, not the last handle's drop.

use std::collections::VecDeque;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::command::{BatchFailure, Command, Rollback, run_cached};
use super::config::SqliteConfig;
use super::error::db;
use crate::error::{Error, Result};

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

/// The handle the store writes through. The thread ends on [`Writer::shutdown`], or when
/// the last handle drops.
pub(super) struct Writer {
    queue: mpsc::Sender<Command>,
    timeout: Duration,
}

impl Writer {
    /// Starts the thread on `conn`, which must be the only connection that writes the file.
    pub(super) fn start(conn: Connection, config: &SqliteConfig) -> Result<Self> {
        // The store's statements and the writer's own, without evicting one another.
        conn.set_prepared_statement_cache_capacity(64);
        tune(&conn).map_err(db("configure the SQLite writer"))?;
        let (queue, commands) = mpsc::channel::<Command>();
        let max_batch = config.max_batch.max(1);
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || serve(conn, &commands, max_batch))
            .map_err(|e| Error::unavailable("start the SQLite writer", e))?;
        Ok(Writer {
            queue,
            timeout: config.operation_timeout,
        })
    }

    /// Queues a write and waits for its outcome, committed, for at most the operation
    /// timeout. `command` answers on the sender whose receiver `answer` is.
    pub(super) async fn write<T>(
        &self,
        what: &'static str,
        command: Command,
        answer: oneshot::Receiver<Result<T>>,
    ) -> Result<T> {
        let stopped = || Error::unavailable(what, "the SQLite writer has stopped");
        self.queue.send(command).map_err(|_| stopped())?;
        match tokio::time::timeout(self.timeout, answer).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(stopped()),
            Err(_) => Err(Error::unavailable(what, "timed out")),
        }
    }

    /// Stops the thread once the writes queued so far are committed, and waits until it has
    /// (for at most the operation timeout); later writes are refused as unavailable. Answers
    /// whether it stopped in time.
    pub(super) async fn shutdown(&self) -> bool {
        let (done, stopped) = oneshot::channel();
        if self.queue.send(Command::Shutdown(done)).is_err() {
            return true;
        }
        matches!(
            tokio::time::timeout(self.timeout, stopped).await,
            Ok(Ok(()))
        )
    }
}

/// The thread: batches until a [`Command::Shutdown`] or the last handle's drop. The
/// connection closes as the thread ends, before `Shutdown` is answered.
fn serve(conn: Connection, commands: &mpsc::Receiver<Command>, max_batch: usize) {
    let mut stop = None;
    while let Ok(first) = commands.recv() {
        let mut batch = VecDeque::from([first]);
        while batch.len() < max_batch {
            match commands.try_recv() {
                Ok(command) => batch.push_back(command),
                Err(_) => break,
            }
        }
        // The writes queued before a shutdown are run; those after it never were sent.
        if let Some(at) = batch.iter().position(|c| matches!(c, Command::Shutdown(_))) {
            for late in batch.split_off(at + 1) {
                late.finish(Err(&BatchFailure::stopped()));
            }
            if let Some(Command::Shutdown(done)) = batch.pop_back() {
                stop = Some(done);
            }
        }
        batch.retain(|command| !command.abandoned());
        while !batch.is_empty() {
            commit_some(&conn, &mut batch);
        }
        if stop.is_some() {
            break;
        }
    }
    drop(conn);
    if let Some(done) = stop {
        tracing::info!("SQLite: the writer stopped");
        let _ = done.send(());
    }
}

/// Runs the writes of `batch` in one transaction and answers them, taking them off the
/// front. When SQLite rolls the transaction back under a write (a full disk, an I/O error),
/// or a write fails after changing the file and cannot be undone alone, that write and those
/// before it in the transaction fail, and the rest stay in `batch` for a transaction of their
/// own.
fn commit_some(conn: &Connection, batch: &mut VecDeque<Command>) {
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
            let failure = BatchFailure::rolled_back();
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
pub(super) mod tests {
    use std::sync::Arc;
    use std::sync::mpsc as std_mpsc;

    use super::*;
    use crate::storage::sqlite::command::{Call, TestWrite};

    fn rows(conn: &Connection) -> Result<Vec<String>> {
        let mut stmt = conn
            .prepare("SELECT x FROM t ORDER BY x")
            .map_err(db("read"))?;
        stmt.query_map([], |row| row.get(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<String>>>())
            .map_err(db("read"))
    }

    fn insert(conn: &Connection, x: &str) -> Result<Vec<String>> {
        conn.execute("INSERT INTO t (x) VALUES (?1)", [x])
            .map(|_| Vec::new())
            .map_err(db("insert"))
    }

    /// Sends `work` as a test write and waits for its answer.
    async fn call(
        writer: &Writer,
        work: impl FnOnce(&Connection) -> Result<Vec<String>> + Send + 'static,
    ) -> Result<Vec<String>> {
        let (reply, answer) = oneshot::channel();
        let command = Command::Test(Call::new(TestWrite(Box::new(work)), reply));
        writer.write("test", command, answer).await
    }

    fn writer() -> Arc<Writer> {
        let conn = Connection::open_in_memory().expect("open");
        conn.execute_batch("CREATE TABLE t (x TEXT PRIMARY KEY)")
            .expect("table");
        Arc::new(Writer::start(conn, &SqliteConfig::new(":memory:")).expect("writer"))
    }

    /// A writer on a database of one table, and a first write that holds the writer until
    /// `go` is sent, so that the writes queued meanwhile run as one batch.
    async fn held_writer() -> (
        Arc<Writer>,
        std_mpsc::Sender<()>,
        tokio::task::JoinHandle<()>,
    ) {
        let writer = writer();
        let (go, wait) = std_mpsc::channel::<()>();
        let (started, running) = oneshot::channel::<()>();
        let first = {
            let writer = Arc::clone(&writer);
            tokio::spawn(async move {
                call(&writer, move |conn| {
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
            call(&writer, |conn| insert(conn, "b")),
            call(&writer, |conn| {
                insert(conn, "c")?;
                Err(Error::internal("failing", "after a change"))
            }),
            call(&writer, |conn| insert(conn, "d")),
            call(&writer, |_| Err(Error::NotFound)),
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
        let rows = call(&writer, rows).await.expect("rows");
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
            call(&writer, |conn| insert(conn, "b")),
            call(&writer, |_| Err(Error::NotFound)),
            call(&writer, |conn| insert(conn, "d")),
            release,
        );
        first.await.expect("first");
        before.expect("before");
        assert!(matches!(refused, Err(Error::NotFound)));
        after.expect("after");
        let rows = call(&writer, rows).await.expect("rows");
        assert_eq!(rows, ["a", "b", "d"]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_shutdown_commits_what_was_queued_before_it_and_refuses_what_comes_after() {
        let (writer, go, first) = held_writer().await;
        let release = async {
            tokio::task::yield_now().await;
            go.send(()).expect("release the first write");
        };
        // Queued behind the held write: a write, the shutdown, then a write sent later.
        let (before, stopped, ()) = tokio::join!(
            call(&writer, |conn| insert(conn, "b")),
            writer.shutdown(),
            release,
        );
        first.await.expect("first");
        before.expect("a write queued before the shutdown commits");
        assert!(
            stopped,
            "the writer answers the shutdown once it has stopped"
        );
        let after = call(&writer, |conn| insert(conn, "c")).await;
        assert!(
            matches!(after, Err(Error::Unavailable { .. })),
            "a write after the shutdown is refused: {after:?}"
        );
        assert!(
            writer.shutdown().await,
            "a second shutdown finds it stopped"
        );
    }
}
