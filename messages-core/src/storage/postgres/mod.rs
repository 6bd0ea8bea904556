//! The PostgreSQL store: `tokio-postgres` over a `deadpool-postgres` pool, migrations applied
//! by `refinery`, one statement per write where SQL allows it. One file per concern, as every
//! store (`create`, `change`, `react`, `pages`, `read_state`, `outbox`), each with its
//! statements; the writes that wait to commit together queue in `queue`.
//!
//! The sequence is a counter row per thread (`threads.head`), bumped in the write's own
//! transaction. Its row lock orders the writes of one thread: a second writer waits until
//! the first has committed, so numbers become visible in the order they were taken and a
//! reader that has seen N has seen every change up to N. The alternative, one global sequence
//! read only below a visibility watermark (`pg_snapshot_xmin`), keeps writers of one thread
//! from waiting on each other but numbers a thread's changes with gaps, and
//! `cloudEvents:sequence` must be gap-free per thread so consumers can notice a lost event. The
//! price is that a thread's writes commit one at a time: each holds the row from its bump to
//! its commit, which is why the bump is the last step before the commit in every statement,
//! and why creates that arrive together, whatever their threads, are inserted by one statement
//! with one bump per thread and one commit (see `create`), and the changes of one busy thread
//! or the reactions of one popular message are applied a group per transaction (see `change`,
//! `react`).
//!
//! A bump is an `INSERT ... ON CONFLICT DO UPDATE` even where the thread's row exists: the
//! conflict is found through the primary key whatever the statistics say, where an `UPDATE` of
//! a table of a few hundred rows gets a cached plan that scans all of them (and their dead
//! versions) on every write. Every read begins with the thread's position, 0 for a thread never
//! written, so the rows and the position come from one snapshot.

use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use secrecy::{ExposeSecret, SecretString};
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

use crate::error::{Error, Result};

mod change;
mod change_one;
mod conversation;
mod counts;
mod create;
mod group_columns;
mod idempotency;
mod inboxes;
mod outbox;
mod pages;
mod queue;
mod react;
mod react_group;
mod react_one;
mod read_state;
mod recent;
mod replies;
mod reply_create;
mod reply_group;
mod rows;
mod search;

#[cfg(feature = "testing")]
pub(crate) use outbox::{ACK, CLAIM, RELEASE};

mod embedded {
    refinery::embed_migrations!("migrations/postgres");
}

/// Any two processes migrating the same database take this advisory lock first, so replicas
/// starting together apply each migration once.
const MIGRATION_LOCK: i64 = 0x6d65_7373_6167_6573; // "messages"

/// Settings of the PostgreSQL store.
#[derive(Clone, Debug)]
pub struct PostgresConfig {
    /// A libpq-style URL or key/value string; it may hold a password, so it never prints.
    pub url: SecretString,
    /// Most connections held at once. Default 16.
    pub pool_size: usize,
    /// Longest wait for a new connection to open. Default 3 s.
    pub connect_timeout: Duration,
    /// Longest wait for a pooled connection, and for one operation, before `Unavailable`.
    /// Default 5 s.
    pub operation_timeout: Duration,
    /// Most creates one statement writes (group commit: the creates that queued while the
    /// previous statement ran go in together, whatever their threads), and most reaction
    /// changes of one message, or edits and deletes of one thread, one transaction applies.
    /// Default 256; 1 writes each alone.
    pub group_max: usize,
    /// How many create statements may be in flight at once, each thread's creates always in
    /// the same one. Default 2.
    pub group_lanes: usize,
}

impl PostgresConfig {
    /// Defaults for everything but the URL.
    pub fn new(url: impl Into<String>) -> Self {
        PostgresConfig {
            url: SecretString::from(url.into()),
            pool_size: 16,
            connect_timeout: Duration::from_secs(3),
            operation_timeout: Duration::from_secs(5),
            group_max: 256,
            group_lanes: 2,
        }
    }

    /// Checks that the URL is a PostgreSQL connection string (a URL or key/value pairs),
    /// without connecting: `Error::Invalid` says what is wrong, never the password.
    pub fn check(&self) -> Result<()> {
        tokio_postgres::Config::from_str(self.url.expose_secret())
            .map(drop)
            .map_err(|e| Error::invalid("database url", e.to_string()))
    }
}

/// Messages in PostgreSQL.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    operation_timeout: Duration,
    /// Creates waiting, to be committed together.
    creates: std::sync::Arc<queue::Creates>,
    /// Reaction changes waiting per message, to be committed together.
    reactions: std::sync::Arc<queue::Reactions>,
    /// Edits and deletes waiting per thread, to be committed together.
    changes: std::sync::Arc<queue::Changes>,
    /// The messages this process wrote last, so a reaction on one skips its first read.
    recent: std::sync::Arc<recent::Recent>,
    /// Unread counts made, reused while their thread's head and position stay (`counts`).
    counts: std::sync::Arc<counts::Counts>,
    /// Inbox pages made, reused while their threads and the user's follows stay (`inboxes`).
    inboxes: std::sync::Arc<inboxes::Inboxes>,
}

/// What a PostgreSQL error means for the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Failure {
    /// The database could not answer now; a retry may succeed (503).
    Unavailable,
    /// The database refused a value (SQLSTATE class 22): the request is at fault (422).
    Refused,
    /// Anything else: a constraint this crate should have kept, a statement that does not
    /// fit the schema. A bug, never a reason to retry (500).
    Bug,
}

/// Sorts an error by its SQLSTATE. No SQLSTATE means the error is not the server's answer:
/// the connection closed or failed, which a retry on another connection may survive.
fn classify(code: Option<&SqlState>) -> Failure {
    let Some(code) = code else {
        return Failure::Unavailable;
    };
    match &code.code()[..2] {
        // connection exception, transaction rollback (serialization failure, deadlock),
        // insufficient resources (disk full, out of memory, too many connections), operator
        // intervention (admin_shutdown, crash_shutdown, cannot_connect_now, query_canceled by
        // a statement timeout), system error (I/O).
        "08" | "40" | "53" | "57" | "58" => Failure::Unavailable,
        // object not in prerequisite state: lock_not_available, object_in_use.
        "55" => Failure::Unavailable,
        "22" => Failure::Refused,
        _ => Failure::Bug,
    }
}

/// Maps an error of the operation `what` by [`classify`]; a refused value is logged with its
/// SQLSTATE here, where it is still known.
fn db(what: &'static str) -> impl Fn(tokio_postgres::Error) -> Error {
    move |e| match classify(e.code()) {
        Failure::Unavailable => Error::unavailable(what, e),
        Failure::Refused => {
            let sqlstate = e.code().map_or("", SqlState::code);
            tracing::warn!(operation = what, sqlstate, error = %e, "PostgreSQL refused a value");
            Error::invalid(
                "request",
                format!("a value is outside what the store accepts (SQLSTATE {sqlstate})"),
            )
        }
        Failure::Bug => Error::internal(what, e),
    }
}

/// Most times one write runs when the database keeps ending it to break deadlocks.
const RACE_ATTEMPTS: u32 = 3;

/// Whether `error` is the database ending this transaction to break a deadlock (or a
/// serialization failure): nothing of it stands, and run again it goes through.
///
/// Writes of one thread lock its messages' rows, then its counter; a circle among them is
/// not expected, but one PostgreSQL breaks ends a write that runs again rather than fail.
fn lost_a_race(error: &Error) -> bool {
    let Error::Unavailable { source, .. } = error else {
        return false;
    };
    source
        .downcast_ref::<tokio_postgres::Error>()
        .and_then(tokio_postgres::Error::code)
        .is_some_and(|code| {
            *code == SqlState::T_R_DEADLOCK_DETECTED || *code == SqlState::T_R_SERIALIZATION_FAILURE
        })
}

/// Runs `attempt` again while the database ends it to break a deadlock, at most
/// [`RACE_ATTEMPTS`] times in all; any other outcome is answered as it is.
async fn rerun_lost_races<T, F, Fut>(what: &'static str, mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut runs = 1;
    loop {
        match attempt().await {
            Err(error) if runs < RACE_ATTEMPTS && lost_a_race(&error) => {
                tracing::info!(operation = what, %error, runs, "the database ended a write to break a deadlock; running it again");
                runs += 1;
            }
            outcome => return outcome,
        }
    }
}

/// A row that does not decode means the schema is not the one this crate expects: a bug.
fn decode(e: impl Into<crate::error::BoxError>) -> Error {
    Error::internal("decode row", e)
}

impl PostgresStore {
    /// Builds the pool. No connection is opened until the first use: call
    /// [`Schema::migrate`](crate::storage::Schema::migrate) or
    /// [`MessageStore::ping`](crate::storage::MessageStore::ping) to check the database
    /// answers. Async like every store's `open`, though it waits for nothing.
    pub async fn open(config: &PostgresConfig) -> Result<Self> {
        let mut pg = tokio_postgres::Config::from_str(config.url.expose_secret())
            .map_err(|e| Error::invalid("database url", e.to_string()))?;
        pg.connect_timeout(config.connect_timeout);
        if pg.get_application_name().is_none() {
            pg.application_name("messages");
        }
        // A statement outlives its caller in the database unless the database stops it: the
        // store gives up on an operation after `operation_timeout`, and so does PostgreSQL, so
        // an abandoned statement (a lock wait, a bad plan) cannot keep running on.
        let timeout = format!(
            "-c statement_timeout={}",
            config.operation_timeout.as_millis().max(1)
        );
        let options = match pg.get_options() {
            Some(options) if !options.trim().is_empty() => format!("{options} {timeout}"),
            _ => timeout,
        };
        pg.options(&options);
        let manager = Manager::from_config(
            pg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size.max(1))
            .wait_timeout(Some(config.operation_timeout))
            .create_timeout(Some(config.connect_timeout))
            .recycle_timeout(Some(config.connect_timeout))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| Error::unavailable("postgres pool", e))?;
        Ok(PostgresStore {
            pool,
            operation_timeout: config.operation_timeout,
            creates: std::sync::Arc::new(queue::Creates::new(config.group_lanes, config.group_max)),
            reactions: std::sync::Arc::new(queue::Queues::new(config.group_max)),
            changes: std::sync::Arc::new(queue::Queues::new(config.group_max)),
            recent: std::sync::Arc::default(),
            counts: std::sync::Arc::default(),
            inboxes: std::sync::Arc::default(),
        })
    }

    /// The pool, for metrics.
    pub fn pool_status(&self) -> deadpool_postgres::Status {
        self.pool.status()
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool
            .get()
            .await
            .map_err(|e| Error::unavailable("postgres connection", e))
    }

    /// Bounds an operation so a database that stops answering turns into `Unavailable`
    /// rather than a hung request.
    async fn timed<T>(&self, what: &'static str, f: impl Future<Output = Result<T>>) -> Result<T> {
        tokio::time::timeout(self.operation_timeout, f)
            .await
            .map_err(|_| Error::unavailable(what, "timed out"))?
    }
}

#[async_trait::async_trait]
impl crate::storage::MessageStore for PostgresStore {
    async fn ping(&self) -> Result<()> {
        self.timed("ping", async {
            let client = self.client().await?;
            client.simple_query("SELECT 1").await.map_err(db("ping"))?;
            Ok(())
        })
        .await
    }

    /// Replicas share the database.
    fn is_shared(&self) -> bool {
        true
    }
}

#[async_trait::async_trait]
impl crate::storage::Schema for PostgresStore {
    fn migration_count() -> usize {
        embedded::migrations::runner().get_migrations().len()
    }

    /// Applies the embedded migrations that are not applied yet, under an advisory lock so
    /// concurrent starts do not race. Returns how many were applied.
    async fn migrate_to(&self, version: usize) -> Result<usize> {
        let client = self
            .pool
            .get()
            .await
            .map_err(|e| Error::unavailable("postgres connection", e))?;
        // Migrations may run long, and may wait for another process's: their session has no
        // statement timeout. It leaves the pool, so it closes when done, setting and all.
        let mut client = deadpool_postgres::Object::take(client);
        client
            .batch_execute("SET statement_timeout = 0")
            .await
            .map_err(db("migration settings"))?;
        client
            .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(db("migration lock"))?;
        let client: &mut tokio_postgres::Client = &mut client;
        let applied = embedded::migrations::runner()
            .set_abort_divergent(true)
            .set_target(refinery::Target::Version(
                i32::try_from(version).unwrap_or(i32::MAX),
            ))
            .run_async(client)
            .await;
        // Unlock whatever happened; the session also drops it if the connection dies.
        let unlocked = client
            .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
            .await;
        let report = applied.map_err(|e| Error::unavailable("migrations", e))?;
        unlocked.map_err(db("migration unlock"))?;
        for migration in report.applied_migrations() {
            tracing::info!(migration = %migration, "applied migration");
        }
        Ok(report.applied_migrations().len())
    }

    async fn schema_version(&self) -> Result<usize> {
        let client = self.client().await?;
        let exists: bool = client
            .query_one(
                "SELECT to_regclass('refinery_schema_history') IS NOT NULL",
                &[],
            )
            .await
            .map_err(db("schema version"))?
            .try_get(0)
            .map_err(decode)?;
        if !exists {
            return Ok(0);
        }
        let applied: i64 = client
            .query_one("SELECT count(*) FROM refinery_schema_history", &[])
            .await
            .map_err(db("schema version"))?
            .try_get(0)
            .map_err(decode)?;
        Ok(applied as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::{Failure, SqlState, classify};

    #[test]
    fn only_errors_a_retry_may_fix_are_unavailable() {
        for code in [
            SqlState::CONNECTION_FAILURE,
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::TOO_MANY_CONNECTIONS,
            SqlState::DISK_FULL,
            SqlState::QUERY_CANCELED,
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::T_R_DEADLOCK_DETECTED,
            SqlState::LOCK_NOT_AVAILABLE,
            SqlState::IO_ERROR,
        ] {
            assert_eq!(classify(Some(&code)), Failure::Unavailable, "{code:?}");
        }
        assert_eq!(classify(None), Failure::Unavailable, "a closed connection");
        for code in [
            SqlState::DATETIME_FIELD_OVERFLOW,
            SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
            SqlState::CHARACTER_NOT_IN_REPERTOIRE,
            SqlState::STRING_DATA_RIGHT_TRUNCATION,
        ] {
            assert_eq!(classify(Some(&code)), Failure::Refused, "{code:?}");
        }
        for code in [
            SqlState::UNIQUE_VIOLATION,
            SqlState::CHECK_VIOLATION,
            SqlState::NOT_NULL_VIOLATION,
            SqlState::UNDEFINED_TABLE,
            SqlState::SYNTAX_ERROR,
            SqlState::INTERNAL_ERROR,
        ] {
            assert_eq!(classify(Some(&code)), Failure::Bug, "{code:?}");
        }
    }
}
