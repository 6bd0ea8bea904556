//! The PostgreSQL store: `tokio-postgres` over a `deadpool-postgres` pool, migrations applied
//! by `refinery`, one statement per write where SQL allows it.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::error::SqlState;
use tokio_postgres::{NoTls, Row};

use super::{Created, Idempotency, MessageStore, OutboxEvent, StoredEvent, UpdateEvent};
use crate::error::{Error, Result};
use crate::message::{
    Message, MessageId, MessageKind, MessagePatch, RequestFingerprint, ThreadId, Timestamp, UserId,
};
use crate::page::{Page, PageQuery, PageSize};

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Any two processes migrating the same database take this advisory lock first, so replicas
/// starting together apply each migration once.
const MIGRATION_LOCK: i64 = 0x6d65_7373_6167_6573; // "messages"

/// Settings of the PostgreSQL store.
#[derive(Clone, Debug)]
pub struct PostgresConfig {
    /// A libpq-style URL or key/value string.
    pub url: String,
    /// Most connections held at once.
    pub pool_size: usize,
    /// Longest wait for a new connection to open.
    pub connect_timeout: Duration,
    /// Longest wait for a pooled connection, and for one operation, before `Unavailable`.
    pub operation_timeout: Duration,
}

impl PostgresConfig {
    /// Defaults for everything but the URL.
    pub fn new(url: impl Into<String>) -> Self {
        PostgresConfig {
            url: url.into(),
            pool_size: 16,
            connect_timeout: Duration::from_secs(3),
            operation_timeout: Duration::from_secs(5),
        }
    }
}

/// Messages in PostgreSQL.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    operation_timeout: Duration,
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

/// A row that does not decode means the schema is not the one this crate expects: a bug.
fn decode(e: impl Into<crate::error::BoxError>) -> Error {
    Error::internal("decode row", e)
}

const COLUMNS: &str = "thread_id, id, user_id, kind, content, paths, created_at, updated_at";

fn message_from_row(row: &Row) -> Result<Message> {
    let kind: &str = row.try_get(3).map_err(decode)?;
    let created: DateTime<Utc> = row.try_get(6).map_err(decode)?;
    let updated: DateTime<Utc> = row.try_get(7).map_err(decode)?;
    Ok(Message {
        thread_id: ThreadId::from_uuid(row.try_get(0).map_err(decode)?),
        id: MessageId::from_uuid(row.try_get(1).map_err(decode)?),
        user_id: UserId::from_uuid(row.try_get(2).map_err(decode)?),
        kind: MessageKind::parse(kind).map_err(|_| decode(format!("unknown kind {kind:?}")))?,
        content: row.try_get(4).map_err(decode)?,
        paths: row.try_get(5).map_err(decode)?,
        created_at: Timestamp::from(created),
        updated_at: Timestamp::from(updated),
    })
}

/// The page query for each direction; with `explain`, wrapped in `EXPLAIN (ANALYZE, BUFFERS)`.
fn page_sql(query: PageQuery, explain: bool) -> String {
    let (condition, order) = match query {
        PageQuery::Newest => ("", "DESC"),
        PageQuery::Before(_) => (" AND (created_at, id) < ($2, $3)", "DESC"),
        PageQuery::After(_) => (" AND (created_at, id) > ($2, $3)", "ASC"),
    };
    let limit = if query == PageQuery::Newest {
        "$2"
    } else {
        "$4"
    };
    let prefix = if explain {
        "EXPLAIN (ANALYZE, BUFFERS) "
    } else {
        ""
    };
    format!(
        "{prefix}SELECT {COLUMNS} FROM messages \
         WHERE thread_id = $1 AND deleted_at IS NULL{condition} \
         ORDER BY created_at {order}, id {order} LIMIT {limit}"
    )
}

/// The cursor position of a page query, as SQL parameters.
fn query_position(query: PageQuery) -> (DateTime<Utc>, uuid::Uuid) {
    match query {
        PageQuery::Newest => (DateTime::<Utc>::MIN_UTC, uuid::Uuid::nil()),
        PageQuery::Before(c) | PageQuery::After(c) => {
            (c.created_at().to_datetime(), *c.id().as_uuid())
        }
    }
}

impl PostgresStore {
    /// The plan PostgreSQL runs for a page query, from `EXPLAIN (ANALYZE, BUFFERS)` of the very
    /// statement [`MessageStore::page`] prepares.
    pub async fn explain_page(
        &self,
        thread: ThreadId,
        query: PageQuery,
        size: PageSize,
    ) -> Result<Vec<String>> {
        let client = self.client().await?;
        let sql = page_sql(query, true);
        let (at, id) = query_position(query);
        let take = (size.get() + 1) as i64;
        let rows = match query {
            PageQuery::Newest => client.query(&sql, &[thread.as_uuid(), &take]).await,
            _ => {
                client
                    .query(&sql, &[thread.as_uuid(), &at, &id, &take])
                    .await
            }
        }
        .map_err(db("explain"))?;
        rows.iter()
            .map(|r| r.try_get::<_, String>(0).map_err(decode))
            .collect()
    }

    /// Builds the pool. No connection is opened until the first use; call
    /// [`PostgresStore::migrate`] or [`MessageStore::ping`] to check the database answers.
    pub fn new(config: &PostgresConfig) -> Result<Self> {
        let mut pg = tokio_postgres::Config::from_str(&config.url)
            .map_err(|e| Error::invalid("database url", e.to_string()))?;
        pg.connect_timeout(config.connect_timeout);
        if pg.get_application_name().is_none() {
            pg.application_name("messages");
        }
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
        })
    }

    /// Applies the embedded migrations that are not applied yet, under an advisory lock so
    /// concurrent starts do not race. Returns how many were applied.
    pub async fn migrate(&self) -> Result<usize> {
        let mut client = self
            .pool
            .get()
            .await
            .map_err(|e| Error::unavailable("postgres connection", e))?;
        client
            .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(db("migration lock"))?;
        let client: &mut tokio_postgres::Client = &mut client;
        let applied = embedded::migrations::runner()
            .set_abort_divergent(true)
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

    /// Tells `NotFound` from `Forbidden` after a guarded write matched no row.
    async fn diagnose(
        &self,
        client: &deadpool_postgres::Object,
        thread: ThreadId,
        id: MessageId,
    ) -> Error {
        const SQL: &str = "SELECT user_id FROM messages \
                           WHERE thread_id = $1 AND id = $2 AND deleted_at IS NULL";
        let found = async {
            let stmt = client.prepare_cached(SQL).await?;
            client
                .query_opt(&stmt, &[thread.as_uuid(), id.as_uuid()])
                .await
        };
        match found.await {
            Ok(Some(_)) => Error::Forbidden,
            Ok(None) => Error::NotFound,
            Err(e) => db("diagnose")(e),
        }
    }
}

#[async_trait]
impl MessageStore for PostgresStore {
    async fn create(
        &self,
        message: &Message,
        idempotency: Option<Idempotency<'_>>,
        event: OutboxEvent,
    ) -> Result<Created> {
        // One statement: both inserts commit together, and a conflicting key inserts neither.
        const INSERT: &str = "WITH ins AS ( \
                INSERT INTO messages (thread_id, id, user_id, kind, content, paths, created_at, \
                                      updated_at, idempotency_key, request_hash) \
                VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9) \
                ON CONFLICT (thread_id, user_id, idempotency_key) \
                    WHERE idempotency_key IS NOT NULL DO NOTHING \
                RETURNING id \
            ), ob AS ( \
                INSERT INTO outbox (id, kind, thread_id, time, payload) \
                SELECT $10, $11, $1, $12, $13 FROM ins \
            ) SELECT count(*) FROM ins";
        const ORIGINAL: &str = "SELECT thread_id, id, user_id, kind, content, paths, \
                created_at, updated_at, request_hash FROM messages \
                WHERE thread_id = $1 AND user_id = $2 AND idempotency_key = $3";
        self.timed("create", async {
            let client = self.client().await?;
            let stmt = client.prepare_cached(INSERT).await.map_err(db("prepare"))?;
            let key = idempotency.map(|i| i.key.as_str());
            let hash = idempotency.map(|i| i.fingerprint.as_bytes().to_vec());
            let created_at = message.created_at.to_datetime();
            let event_time = event.time.to_datetime();
            let row = client
                .query_one(
                    &stmt,
                    &[
                        message.thread_id.as_uuid(),
                        message.id.as_uuid(),
                        message.user_id.as_uuid(),
                        &message.kind.as_str(),
                        &message.content,
                        &message.paths,
                        &created_at,
                        &key,
                        &hash,
                        &event.id,
                        &event.kind,
                        &event_time,
                        &event.payload,
                    ],
                )
                .await
                .map_err(db("insert message"))?;
            let inserted: i64 = row.try_get(0).map_err(decode)?;
            if inserted == 1 {
                return Ok(Created::New(message.clone()));
            }
            let Some(idem) = idempotency else {
                return Err(Error::internal("insert message", "no row inserted"));
            };
            let stmt = client
                .prepare_cached(ORIGINAL)
                .await
                .map_err(db("prepare"))?;
            let row = client
                .query_one(
                    &stmt,
                    &[
                        message.thread_id.as_uuid(),
                        message.user_id.as_uuid(),
                        &idem.key.as_str(),
                    ],
                )
                .await
                .map_err(db("idempotent replay"))?;
            let stored: Vec<u8> = row.try_get(8).map_err(decode)?;
            let stored: [u8; 32] = stored
                .try_into()
                .map_err(|_| decode("bad request_hash length"))?;
            if RequestFingerprint::from_bytes(stored) != idem.fingerprint {
                return Err(Error::IdempotencyConflict);
            }
            Ok(Created::Replayed(message_from_row(&row)?))
        })
        .await
    }

    async fn get(&self, thread: ThreadId, id: MessageId) -> Result<Message> {
        self.timed("get", async {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM messages \
                     WHERE thread_id = $1 AND id = $2 AND deleted_at IS NULL"
                ))
                .await
                .map_err(db("prepare"))?;
            let row = client
                .query_opt(&stmt, &[thread.as_uuid(), id.as_uuid()])
                .await
                .map_err(db("get message"))?;
            row.as_ref().map(message_from_row).ok_or(Error::NotFound)?
        })
        .await
    }

    async fn update(
        &self,
        thread: ThreadId,
        id: MessageId,
        user: UserId,
        patch: &MessagePatch,
        now: Timestamp,
        event: UpdateEvent<'_>,
    ) -> Result<Message> {
        const OUTBOX: &str =
            "INSERT INTO outbox (id, kind, thread_id, time, payload) VALUES ($1, $2, $3, $4, $5)";
        self.timed("update", async {
            let mut client = self.client().await?;
            let update = client
                .prepare_cached(&format!(
                    "UPDATE messages SET content = COALESCE($4, content), \
                         paths = COALESCE($5, paths), updated_at = $6 \
                     WHERE thread_id = $1 AND id = $2 AND user_id = $3 AND deleted_at IS NULL \
                     RETURNING {COLUMNS}"
                ))
                .await
                .map_err(db("prepare"))?;
            let outbox = client.prepare_cached(OUTBOX).await.map_err(db("prepare"))?;
            let tx = client.transaction().await.map_err(db("begin"))?;
            let now_dt = now.to_datetime();
            let row = tx
                .query_opt(
                    &update,
                    &[
                        thread.as_uuid(),
                        id.as_uuid(),
                        user.as_uuid(),
                        &patch.content(),
                        &patch.paths(),
                        &now_dt,
                    ],
                )
                .await
                .map_err(db("update message"))?;
            let Some(row) = row else {
                drop(tx);
                return Err(self.diagnose(&client, thread, id).await);
            };
            let edited = message_from_row(&row)?;
            if edited.is_blank() {
                // Rolled back when `tx` drops.
                return Err(Error::invalid(
                    "content",
                    "must not be blank unless paths are given",
                ));
            }
            let e = event(&edited);
            let time = e.time.to_datetime();
            tx.execute(
                &outbox,
                &[&e.id, &e.kind, e.thread_id.as_uuid(), &time, &e.payload],
            )
            .await
            .map_err(db("insert event"))?;
            tx.commit().await.map_err(db("commit"))?;
            Ok(edited)
        })
        .await
    }

    async fn delete(
        &self,
        thread: ThreadId,
        id: MessageId,
        user: UserId,
        now: Timestamp,
        event: OutboxEvent,
    ) -> Result<()> {
        const DELETE: &str = "WITH del AS ( \
                UPDATE messages SET deleted_at = $4 \
                WHERE thread_id = $1 AND id = $2 AND user_id = $3 AND deleted_at IS NULL \
                RETURNING id \
            ), ob AS ( \
                INSERT INTO outbox (id, kind, thread_id, time, payload) \
                SELECT $5, $6, $1, $7, $8 FROM del \
            ) SELECT count(*) FROM del";
        self.timed("delete", async {
            let client = self.client().await?;
            let stmt = client.prepare_cached(DELETE).await.map_err(db("prepare"))?;
            let now_dt = now.to_datetime();
            let time = event.time.to_datetime();
            let row = client
                .query_one(
                    &stmt,
                    &[
                        thread.as_uuid(),
                        id.as_uuid(),
                        user.as_uuid(),
                        &now_dt,
                        &event.id,
                        &event.kind,
                        &time,
                        &event.payload,
                    ],
                )
                .await
                .map_err(db("delete message"))?;
            let deleted: i64 = row.try_get(0).map_err(decode)?;
            if deleted == 1 {
                Ok(())
            } else {
                Err(self.diagnose(&client, thread, id).await)
            }
        })
        .await
    }

    async fn page(&self, thread: ThreadId, query: PageQuery, size: PageSize) -> Result<Page> {
        self.timed("page", async {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(&page_sql(query, false))
                .await
                .map_err(db("prepare"))?;
            let (at, id) = query_position(query);
            let take = (size.get() + 1) as i64;
            let rows = match query {
                PageQuery::Newest => client.query(&stmt, &[thread.as_uuid(), &take]).await,
                PageQuery::Before(_) | PageQuery::After(_) => {
                    client
                        .query(&stmt, &[thread.as_uuid(), &at, &id, &take])
                        .await
                }
            }
            .map_err(db("page"))?;
            let messages = rows
                .iter()
                .map(message_from_row)
                .collect::<Result<Vec<_>>>()?;
            Ok(Page::from_overfetch(messages, size))
        })
        .await
    }

    async fn claim_events(&self, limit: usize, lease: Duration) -> Result<Vec<StoredEvent>> {
        const CLAIM: &str = "UPDATE outbox SET claimed_until = now() + $2 * interval '1 millisecond' \
            WHERE seq IN ( \
                SELECT seq FROM outbox \
                WHERE claimed_until IS NULL OR claimed_until < now() \
                ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED \
            ) RETURNING seq, id, kind, thread_id, time, payload";
        self.timed("claim events", async {
            let client = self.client().await?;
            let stmt = client.prepare_cached(CLAIM).await.map_err(db("prepare"))?;
            let limit = limit as i64;
            let lease_ms = lease.as_millis() as f64;
            let rows = client
                .query(&stmt, &[&limit, &lease_ms])
                .await
                .map_err(db("claim events"))?;
            let mut events = rows
                .iter()
                .map(|row| {
                    let time: DateTime<Utc> = row.try_get(4)?;
                    Ok(StoredEvent {
                        seq: row.try_get(0)?,
                        id: row.try_get(1)?,
                        kind: row.try_get(2)?,
                        thread_id: ThreadId::from_uuid(row.try_get(3)?),
                        time: Timestamp::from(time),
                        payload: row.try_get(5)?,
                    })
                })
                .collect::<std::result::Result<Vec<_>, tokio_postgres::Error>>()
                .map_err(decode)?;
            events.sort_by_key(|e| e.seq);
            Ok(events)
        })
        .await
    }

    async fn ack_events(&self, seqs: &[i64]) -> Result<()> {
        self.timed("ack events", async {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached("DELETE FROM outbox WHERE seq = ANY($1)")
                .await
                .map_err(db("prepare"))?;
            client
                .execute(&stmt, &[&seqs])
                .await
                .map_err(db("ack events"))?;
            Ok(())
        })
        .await
    }

    async fn release_events(&self, seqs: &[i64]) -> Result<()> {
        self.timed("release events", async {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached("UPDATE outbox SET claimed_until = NULL WHERE seq = ANY($1)")
                .await
                .map_err(db("prepare"))?;
            client
                .execute(&stmt, &[&seqs])
                .await
                .map_err(db("release events"))?;
            Ok(())
        })
        .await
    }

    async fn pending_events(&self) -> Result<(u64, Option<Timestamp>)> {
        self.timed("pending events", async {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached("SELECT count(*), min(time) FROM outbox")
                .await
                .map_err(db("prepare"))?;
            let row = client
                .query_one(&stmt, &[])
                .await
                .map_err(db("pending events"))?;
            let count: i64 = row.try_get(0).map_err(decode)?;
            let oldest: Option<DateTime<Utc>> = row.try_get(1).map_err(decode)?;
            Ok((count.max(0) as u64, oldest.map(Timestamp::from)))
        })
        .await
    }

    async fn ping(&self) -> Result<()> {
        self.timed("ping", async {
            let client = self.client().await?;
            client.simple_query("SELECT 1").await.map_err(db("ping"))?;
            Ok(())
        })
        .await
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
