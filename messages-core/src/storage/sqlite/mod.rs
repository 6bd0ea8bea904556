//! The SQLite store: messages and their outbox in one file, the embedded default. One file
//! per concern, as every store (`create`, `change`, `react`, `pages`, `read_state`,
//! `outbox`); `writer` runs the writes.
//!
//! SQLite's calls block, so none runs on the async runtime. Writes go to one writer thread
//! that owns the only connection allowed to write (`writer`): it commits the writes queued
//! while it was busy in one transaction, and one fsync carries them all. A write that fails
//! undoes only itself: a bulk delete (which may be refused halfway) and an acknowledgement of
//! events run in a savepoint of their own; every other write reads what could refuse it
//! before it changes anything. Reads run on the runtime's
//! blocking threads, each on a read-only connection from a small pool; in WAL mode they read
//! a snapshot and never wait for the writer.
//!
//! The sequence: the writer is the only one to take numbers, in the order it runs the
//! writes, and a write's number becomes visible with its commit; a batch commits its writes
//! together, in that order. So numbers become visible in the order they were taken.
//!
//! Durability: WAL with `synchronous = FULL` by default: the WAL is synced at every commit,
//! so an acknowledged write survives a crash of the process and a power cut. With
//! [`Synchronous::Normal`] the WAL is synced only at checkpoints: still safe when the process
//! crashes (the operating system has the writes), but a power cut can lose the writes of the
//! last moments before it (the database stays consistent).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::functions::FunctionFlags;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::Semaphore;

use crate::error::{Error, Result};
use crate::locks;

mod change;
mod command;
mod config;
mod conversation;
mod create;
mod error;
mod leases;
mod outbox;
mod pages;
mod react;
mod read_state;
mod replies;
mod rows;
mod search;
mod writer;

use command::{Call, Command, Statements};
pub use config::{SqliteConfig, Synchronous};
use error::db;
use writer::Writer;

mod embedded {
    refinery::embed_migrations!("migrations/sqlite");
}

/// Messages in a SQLite file.
///
/// Open one store per file and clone it to share it: its clones share the one writer and the
/// outbox's leases. A second store opened on the same file while the first is open would
/// queue its writes behind the first's (SQLite's file lock) and claim the same events.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    writer: Writer,
    readers: Readers,
    /// The outbox's claims, held by this store (see `outbox`).
    leases: tokio::sync::Mutex<leases::Leases>,
}

/// Settings every connection gets, and `search_fold`, the service's folding of a text for
/// search (see `search`), which the index's triggers call.
fn configure(conn: &Connection, config: &SqliteConfig) -> rusqlite::Result<()> {
    conn.busy_timeout(config.operation_timeout)?;
    conn.pragma_update(None, "synchronous", config.synchronous.pragma())?;
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    conn.set_prepared_statement_cache_capacity(32);
    conn.create_scalar_function(
        "search_fold",
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| Ok(crate::search::fold(&ctx.get::<String>(0)?)),
    )
}

impl SqliteStore {
    /// Opens (or creates) the file, switches it to WAL, and starts the writer, on a blocking
    /// thread; [`Schema::migrate`](crate::storage::Schema::migrate) then applies the schema.
    pub async fn open(config: &SqliteConfig) -> Result<Self> {
        let config = config.clone();
        tokio::task::spawn_blocking(move || Self::open_blocking(&config))
            .await
            .map_err(|e| Error::internal("open the SQLite store", e))?
    }

    fn open_blocking(config: &SqliteConfig) -> Result<Self> {
        let conn = Connection::open(&config.path).map_err(db("open database"))?;
        configure(&conn, config).map_err(db("configure database"))?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(db("enable WAL"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::unavailable(
                "enable WAL",
                format!("the file stays in {mode} mode"),
            ));
        }
        if let Some(bytes) = config.max_size {
            let page: i64 = conn
                .pragma_query_value(None, "page_size", |row| row.get(0))
                .map_err(db("page size"))?;
            let pages = (bytes / page.max(512) as u64).max(1);
            conn.pragma_update(None, "max_page_count", pages as i64)
                .map_err(db("size limit"))?;
        }
        let readers = Readers::open(config)?;
        let writer = Writer::start(conn, config)?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                writer,
                readers,
                leases: tokio::sync::Mutex::default(),
            }),
        })
    }

    /// Copies every committed write from the write-ahead log into the database file and
    /// empties the log, so that the file alone holds all data: after a clean stop, a copy of
    /// the file is a complete backup. Answers whether it completed; a read or write running at
    /// the time can keep it from finishing (SQLite then finishes it later by itself).
    pub async fn checkpoint(&self) -> Result<bool> {
        let path = self.inner.readers.path.clone();
        let config = self.inner.readers.config.clone();
        tokio::task::spawn_blocking(move || {
            let conn = Connection::open(&path).map_err(db("open for a checkpoint"))?;
            configure(&conn, &config).map_err(db("configure for a checkpoint"))?;
            let busy: i64 = conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))
                .map_err(db("checkpoint"))?;
            Ok(busy == 0)
        })
        .await
        .map_err(|e| Error::internal("checkpoint", e))?
    }

    /// Stops the writer once the writes queued so far are committed (later writes are refused
    /// as unavailable), then checkpoints the write-ahead log into the database file (see
    /// [`SqliteStore::checkpoint`]): after it the file alone holds every write. The last step of
    /// a clean stop. Answers whether the checkpoint completed.
    pub async fn close(&self) -> Result<bool> {
        if !self.inner.writer.shutdown().await {
            tracing::warn!("SQLite: the writer did not stop in time");
        }
        self.checkpoint().await
    }

    /// Sends a write to the writer, as the command `command` makes of it, and waits for its
    /// answer, committed.
    async fn write<S: Statements>(
        &self,
        request: S,
        command: fn(Call<S>) -> Command,
    ) -> Result<S::Output> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let call = command(Call::new(request, reply));
        self.inner.writer.write(S::WHAT, call, answer).await
    }

    /// Runs `work` on a read-only connection, in one read transaction (one snapshot).
    async fn read<T, F>(&self, what: &'static str, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<T> + Send + 'static,
    {
        self.inner.readers.read(what, work).await
    }
}

/// The read-only connections, each lent to one read at a time.
struct Readers {
    path: PathBuf,
    config: SqliteConfig,
    idle: Arc<Mutex<Vec<Connection>>>,
    permits: Arc<Semaphore>,
}

fn open_reader(path: &Path, config: &SqliteConfig) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(db("open reader"))?;
    configure(&conn, config).map_err(db("configure reader"))?;
    Ok(conn)
}

impl Readers {
    fn open(config: &SqliteConfig) -> Result<Self> {
        let n = config.readers.max(1);
        let conns = (0..n)
            .map(|_| open_reader(&config.path, config))
            .collect::<Result<Vec<_>>>()?;
        Ok(Readers {
            path: config.path.clone(),
            config: config.clone(),
            idle: Arc::new(Mutex::new(conns)),
            permits: Arc::new(Semaphore::new(n)),
        })
    }

    async fn read<T, F>(&self, what: &'static str, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<T> + Send + 'static,
    {
        let timeout = self.config.operation_timeout;
        let idle = Arc::clone(&self.idle);
        let path = self.path.clone();
        let config = self.config.clone();
        let permits = Arc::clone(&self.permits);
        let run = async move {
            let permit = permits
                .acquire_owned()
                .await
                .map_err(|e| Error::unavailable(what, e))?;
            let task = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                let taken = locks::lock(&idle).pop();
                // A connection lost to a panic is replaced.
                let mut conn = match taken {
                    Some(conn) => conn,
                    None => open_reader(&path, &config)?,
                };
                let outcome = (|| {
                    let tx = conn.transaction().map_err(db(what))?;
                    let value = work(&tx)?;
                    tx.commit().map_err(db(what))?;
                    Ok(value)
                })();
                locks::lock(&idle).push(conn);
                outcome
            });
            task.await
                .map_err(|e| Error::internal(what, format!("a read panicked: {e}")))?
        };
        tokio::time::timeout(timeout, run)
            .await
            .map_err(|_| Error::unavailable(what, "timed out"))?
    }
}

#[async_trait::async_trait]
impl crate::storage::MessageStore for SqliteStore {
    async fn ping(&self) -> Result<()> {
        self.read("ping", |tx| {
            tx.query_row("SELECT 1", [], |row| row.get::<_, i64>(0))
                .map(drop)
                .map_err(db("ping"))
        })
        .await
    }
}

#[async_trait::async_trait]
impl crate::storage::Schema for SqliteStore {
    fn migration_count() -> usize {
        embedded::migrations::runner().get_migrations().len()
    }

    /// On a connection of its own beside the writer's (WAL lets it wait for the writer's
    /// commit rather than fail), so the migration's transactions are its own.
    async fn migrate_to(&self, version: usize) -> Result<usize> {
        let path = self.inner.readers.path.clone();
        let config = self.inner.readers.config.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = Connection::open(&path).map_err(db("open for migrations"))?;
            configure(&conn, &config).map_err(db("configure for migrations"))?;
            let report = embedded::migrations::runner()
                .set_abort_divergent(true)
                .set_target(refinery::Target::Version(
                    i32::try_from(version).unwrap_or(i32::MAX),
                ))
                .run(&mut conn)
                .map_err(|e| Error::unavailable("migrations", e))?;
            for migration in report.applied_migrations() {
                tracing::info!(migration = %migration, "applied migration");
            }
            Ok(report.applied_migrations().len())
        })
        .await
        .map_err(|e| Error::internal("migrations", e))?
    }

    async fn schema_version(&self) -> Result<usize> {
        self.read("schema version", |conn| {
            let exists: bool = conn
                .query_row(
                    "SELECT count(*) > 0 FROM sqlite_master \
                     WHERE type = 'table' AND name = 'refinery_schema_history'",
                    [],
                    |row| row.get(0),
                )
                .map_err(db("schema version"))?;
            if !exists {
                return Ok(0);
            }
            let applied: i64 = conn
                .query_row("SELECT count(*) FROM refinery_schema_history", [], |row| {
                    row.get(0)
                })
                .map_err(db("schema version"))?;
            Ok(applied as usize)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::error::{Failure, classify};
    use rusqlite::ErrorCode;

    #[test]
    fn only_errors_a_retry_may_fix_are_unavailable() {
        for code in [
            ErrorCode::DiskFull,
            ErrorCode::ReadOnly,
            ErrorCode::DatabaseBusy,
            ErrorCode::DatabaseLocked,
            ErrorCode::SystemIoFailure,
            ErrorCode::CannotOpen,
            ErrorCode::OutOfMemory,
        ] {
            assert_eq!(classify(Some(code)), Failure::Unavailable, "{code:?}");
        }
        for code in [
            ErrorCode::ConstraintViolation,
            ErrorCode::TypeMismatch,
            ErrorCode::ApiMisuse,
            ErrorCode::DatabaseCorrupt,
            ErrorCode::Unknown,
        ] {
            assert_eq!(classify(Some(code)), Failure::Bug, "{code:?}");
        }
        assert_eq!(classify(None), Failure::Bug, "not SQLite's answer");
    }
}
