//! The one writer: a thread that owns the only connection allowed to write, and the commands
//! it takes.
//!
//! A write is a [`Command`]: one variant per write of the store, each carrying its request and
//! the caller's reply, and [`Command::Shutdown`], which stops the thread once the writes queued
//! before it are committed. The thread takes the commands queued while it was busy (up to
//! `max_batch`), runs them inside one transaction, commits, and only then answers each caller:
//! a write is acknowledged once it is durable, and a batch pays for one sync instead of one per
//! write (group commit). A write that fails undoes only itself: one that may be refused after
//! it changed something runs in a savepoint of its own, the others are refused before they
//! change anything (see [`Undo`]). A write whose caller stopped waiting (its timeout ran out)
//! is not run.
//!
//! What each write does is its request's [`Statements`], written beside the store's other code
//! of that concern (`create`, `change`, `react`, `read_state`, `outbox`): this file knows the
//! transaction, not the statements.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::config::SqliteConfig;
use super::error::{Failure, classify, code_of, db};
use crate::error::{Error, Result};
use crate::reaction::{ClearRequest, ReactionRequest};
use crate::write::{BulkDeleteRequest, CreateRequest, DeleteRequest, EditRequest, MarkReadRequest};

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

    /// Refused: the writer was told to stop before this write.
    fn stopped() -> Self {
        BatchFailure {
            what: "write",
            failure: Failure::Unavailable,
            text: "the SQLite writer has stopped".to_owned(),
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

/// Whether a write left the transaction to be rolled back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rollback {
    No,
    Needed,
}

/// What a write of the store does on the writer's connection, inside the batch's
/// transaction: implemented by each request, beside the store's code of its concern.
pub(super) trait Statements: Send + 'static {
    /// What the write answers.
    type Output: Send + 'static;
    /// The write, as errors and logs name it.
    const WHAT: &'static str;
    /// How the write is undone should it fail.
    const UNDO: Undo;
    /// Runs the write's statements.
    fn write(self, conn: &Connection) -> Result<Self::Output>;
}

/// A queued write: its request, until it runs, then its outcome, until the batch commits, and
/// the caller's reply.
pub(super) struct Call<S: Statements> {
    request: Option<S>,
    outcome: Option<Result<S::Output>>,
    reply: oneshot::Sender<Result<S::Output>>,
}

impl<S: Statements> Call<S> {
    /// `request`, answered on `reply`.
    pub(super) fn new(request: S, reply: oneshot::Sender<Result<S::Output>>) -> Self {
        Call {
            request: Some(request),
            outcome: None,
            reply,
        }
    }

    /// Whether the caller stopped waiting.
    fn abandoned(&self) -> bool {
        self.reply.is_closed()
    }

    /// Runs the write inside the open transaction. Answers whether the transaction must be
    /// rolled back (the write failed after changing something, and could not be undone
    /// alone).
    fn run(&mut self, conn: &Connection) -> Rollback {
        let Some(request) = self.request.take() else {
            return Rollback::No;
        };
        let guarded = |request: S| {
            catch_unwind(AssertUnwindSafe(|| request.write(conn)))
                .unwrap_or_else(|_| Err(Error::internal(S::WHAT, "the write panicked")))
        };
        if S::UNDO == Undo::Transaction {
            let before = conn.total_changes();
            let outcome = guarded(request);
            let changed = conn.total_changes() != before;
            let rollback = if outcome.is_err() && changed && !conn.is_autocommit() {
                tracing::warn!(
                    what = S::WHAT,
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
            self.outcome = Some(Err(db(S::WHAT)(e)));
            return Rollback::No;
        }
        let outcome = guarded(request);
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
            Err(e) => Err(db(S::WHAT)(e)),
        });
        rollback
    }

    /// Answers the caller once the batch committed, or failed to.
    fn finish(self, batch: std::result::Result<(), &BatchFailure>) {
        let outcome = match (self.outcome, batch) {
            (Some(Err(e)), _) => Err(e),
            (_, Err(failure)) => Err(failure.to_error()),
            (Some(Ok(value)), Ok(())) => Ok(value),
            (None, Ok(())) => Err(Error::internal(S::WHAT, "the write did not run")),
        };
        let _ = self.reply.send(outcome);
    }
}

/// Everything the writer takes: a write of the store, or the order to stop.
pub(super) enum Command {
    /// [`CreateStore::create`](crate::storage::CreateStore::create).
    Create(Call<CreateRequest>),
    /// [`ChangeStore::edit`](crate::storage::ChangeStore::edit).
    Edit(Call<EditRequest>),
    /// [`ChangeStore::delete`](crate::storage::ChangeStore::delete).
    Delete(Call<DeleteRequest>),
    /// [`ChangeStore::delete_many`](crate::storage::ChangeStore::delete_many).
    DeleteMany(Call<BulkDeleteRequest>),
    /// [`ReactionStore::react`](crate::storage::ReactionStore::react).
    React(Call<ReactionRequest>),
    /// [`ReactionStore::clear_reactions`](crate::storage::ReactionStore::clear_reactions).
    Clear(Call<ClearRequest>),
    /// [`ReadStateStore::mark_read`](crate::storage::ReadStateStore::mark_read).
    MarkRead(Call<MarkReadRequest>),
    /// [`Outbox::ack`](crate::storage::Outbox::ack): delivered events deleted.
    Ack(Call<Ack>),
    /// A write of the writer's own tests.
    #[cfg(test)]
    Test(Call<tests::TestWrite>),
    /// Stop: the writes queued before it are committed and answered, then the thread ends
    /// and `done` is told. Writes sent after it are refused as unavailable.
    Shutdown(oneshot::Sender<()>),
}

/// Delivered events to delete, by their positions (see `outbox`).
pub(super) struct Ack(pub(super) Vec<i64>);

/// Calls `$f` on the [`Call`] inside a write command, whatever its request.
macro_rules! each_call {
    ($command:expr, $call:ident => $f:expr, shutdown => $s:expr) => {
        match $command {
            Command::Create($call) => $f,
            Command::Edit($call) => $f,
            Command::Delete($call) => $f,
            Command::DeleteMany($call) => $f,
            Command::React($call) => $f,
            Command::Clear($call) => $f,
            Command::MarkRead($call) => $f,
            Command::Ack($call) => $f,
            #[cfg(test)]
            Command::Test($call) => $f,
            Command::Shutdown(_) => $s,
        }
    };
}

impl Command {
    fn abandoned(&self) -> bool {
        each_call!(self, call => call.abandoned(), shutdown => false)
    }

    fn run(&mut self, conn: &Connection) -> Rollback {
        each_call!(self, call => call.run(conn), shutdown => Rollback::No)
    }

    fn finish(self, batch: std::result::Result<(), &BatchFailure>) {
        each_call!(self, call => call.finish(batch), shutdown => {})
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
pub(super) mod tests {
    use std::sync::Arc;
    use std::sync::mpsc as std_mpsc;

    use super::*;

    /// Statements of a test, answering the table's rows or nothing.
    type Work = Box<dyn FnOnce(&Connection) -> Result<Vec<String>> + Send>;

    /// A write of these tests: any statements on a database of one table `t (x)`.
    pub(in super::super) struct TestWrite(Work);

    impl Statements for TestWrite {
        type Output = Vec<String>;
        const WHAT: &'static str = "test";
        const UNDO: Undo = Undo::Transaction;

        fn write(self, conn: &Connection) -> Result<Vec<String>> {
            (self.0)(conn)
        }
    }

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
