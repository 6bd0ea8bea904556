//! What the writer takes: a [`Command`] per write of the store, each carrying its request and
//! the caller's reply, and [`Command::Shutdown`]; how a write runs inside the batch's
//! transaction and is undone alone when it fails ([`Undo`]). What each write does is its
//! request's [`Statements`], written beside the store's other code of that concern.

use std::panic::{AssertUnwindSafe, catch_unwind};

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::error::{Failure, classify, code_of, db};
use crate::conversation::{FollowRequest, RepliesReadRequest};
use crate::error::{Error, Result};
use crate::reaction::{ClearRequest, ReactionRequest};
use crate::write::{BulkDeleteRequest, CreateRequest, DeleteRequest, EditRequest, MarkReadRequest};

/// Why a batch failed as a whole (its transaction could not begin or commit, or SQLite rolled
/// it back), kept so each of its writes can be told.
pub(super) struct BatchFailure {
    what: &'static str,
    failure: Failure,
    text: String,
}

impl BatchFailure {
    pub(super) fn of(what: &'static str, error: &rusqlite::Error) -> Self {
        BatchFailure {
            what,
            failure: classify(code_of(error)),
            text: error.to_string(),
        }
    }

    /// Undone: SQLite rolled the batch's transaction back after one of its writes failed.
    pub(super) fn rolled_back() -> Self {
        BatchFailure {
            what: "write",
            failure: Failure::Unavailable,
            text: "SQLite rolled back the transaction after another write of the batch failed"
                .to_owned(),
        }
    }

    /// Refused: the writer was told to stop before this write.
    pub(super) fn stopped() -> Self {
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
pub(super) enum Rollback {
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
    /// [`ConversationStore::follow`](crate::storage::ConversationStore::follow).
    Follow(Call<FollowRequest>),
    /// [`ConversationStore::mark_replies_read`](crate::storage::ConversationStore::mark_replies_read).
    RepliesRead(Call<RepliesReadRequest>),
    /// [`Outbox::ack`](crate::storage::Outbox::ack): delivered events deleted.
    Ack(Call<Ack>),
    /// A write of the writer's own tests.
    #[cfg(test)]
    Test(Call<TestWrite>),
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
            Command::Follow($call) => $f,
            Command::RepliesRead($call) => $f,
            Command::Ack($call) => $f,
            #[cfg(test)]
            Command::Test($call) => $f,
            Command::Shutdown(_) => $s,
        }
    };
}

impl Command {
    pub(super) fn abandoned(&self) -> bool {
        each_call!(self, call => call.abandoned(), shutdown => false)
    }

    pub(super) fn run(&mut self, conn: &Connection) -> Rollback {
        each_call!(self, call => call.run(conn), shutdown => Rollback::No)
    }

    pub(super) fn finish(self, batch: std::result::Result<(), &BatchFailure>) {
        each_call!(self, call => call.finish(batch), shutdown => {})
    }
}

/// Runs one of the writer's own statements from the connection's cache: the savepoint opened
/// and released around every write is parsed once, not once per write.
pub(super) fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

#[cfg(test)]
/// Statements of a test, answering the table's rows or nothing.
pub(super) type Work = Box<dyn FnOnce(&Connection) -> Result<Vec<String>> + Send>;

#[cfg(test)]
/// A write of these tests: any statements on a database of one table `t (x)`.
pub(super) struct TestWrite(pub(super) Work);

#[cfg(test)]
impl Statements for TestWrite {
    type Output = Vec<String>;
    const WHAT: &'static str = "test";
    const UNDO: Undo = Undo::Transaction;

    fn write(self, conn: &Connection) -> Result<Vec<String>> {
        (self.0)(conn)
    }
}
