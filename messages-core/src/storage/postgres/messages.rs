//! The PostgreSQL message store: create and delete are one statement each, an edit is one
//! short transaction.
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
//! and why creates of one thread that arrive together are inserted by one statement with one
//! bump and one commit (see `batch`).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::oneshot;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;

use super::batch::{self, Job};
use super::{Failure, PostgresStore, classify, db, decode, message_from_row};
use crate::changes::{Change, Changes, ChangesLimit};
use crate::error::{Error, Result};
use crate::message::{
    Message, MessageId, MessagePatch, RequestFingerprint, ThreadId, Timestamp, Tombstone, UserId,
};
use crate::page::{Around, Page, PageQuery, PageSize};
use crate::storage::{Created, Idempotency, MessageStore, OutboxEvent, UpdateEvent};

/// The columns of a message, in the order `message_from_row` reads them.
macro_rules! columns {
    ($m:literal) => {
        concat!(
            $m,
            "thread_id, ",
            $m,
            "id, ",
            $m,
            "user_id, ",
            $m,
            "kind, ",
            $m,
            "content, ",
            $m,
            "paths, ",
            $m,
            "created_at, ",
            $m,
            "updated_at, ",
            $m,
            "seq, ",
            $m,
            "rev"
        )
    };
}

/// The thread's position, 0 for a thread never written: the first column of every read, so
/// the rows and the position come from one snapshot.
macro_rules! head {
    () => {
        "(SELECT COALESCE((SELECT head FROM threads WHERE thread_id = $1), 0) AS head) h"
    };
}

/// A page: the position, then the rows (none: one row of NULLs).
macro_rules! page_sql {
    ($condition:literal, $order:literal) => {
        concat!(
            "SELECT h.head, ",
            columns!("m."),
            " FROM ",
            head!(),
            " LEFT JOIN LATERAL (",
            "SELECT ",
            columns!(""),
            " FROM messages WHERE thread_id = $1 AND deleted_at IS NULL",
            $condition,
            " ORDER BY seq ",
            $order,
            " LIMIT $2) m ON true"
        )
    };
}

const PAGE_NEWEST: &str = page_sql!("", "DESC");
const PAGE_BEFORE: &str = page_sql!(" AND seq < $3", "DESC");
const PAGE_AFTER: &str = page_sql!(" AND seq > $3", "ASC");

/// The statement of a page query, and its position parameter.
pub(super) fn page_statement(query: PageQuery) -> (&'static str, i64) {
    match query {
        PageQuery::Newest => (PAGE_NEWEST, 0),
        PageQuery::Before(seq) => (PAGE_BEFORE, seq),
        PageQuery::After(seq) => (PAGE_AFTER, seq),
    }
}

/// Reads the position and the messages of rows shaped `head, message columns...`.
fn head_and_messages(rows: &[Row]) -> Result<(i64, Vec<Message>)> {
    let head = match rows.first() {
        Some(row) => row.try_get(0).map_err(decode)?,
        None => 0,
    };
    let mut messages = Vec::with_capacity(rows.len());
    for row in rows {
        let id: Option<uuid::Uuid> = row.try_get(2).map_err(decode)?;
        if id.is_some() {
            messages.push(message_from_row(row, 1)?);
        }
    }
    Ok((head, messages))
}

/// One statement: bump the thread's counter, insert the message numbered with it, insert its
/// event with the numbers beside its open body. A reused idempotency key fails the unique
/// index, which rolls back the whole statement, bump included: a replay takes no number.
const CREATE: &str = "WITH bump AS ( \
        INSERT INTO threads AS t (thread_id, head) VALUES ($1, 1) \
        ON CONFLICT (thread_id) DO UPDATE SET head = t.head + 1 \
        RETURNING head \
    ), ins AS ( \
        INSERT INTO messages (thread_id, id, user_id, kind, content, paths, created_at, \
                              updated_at, idempotency_key, request_hash, seq, rev) \
        SELECT $1, $2, $3, $4, $5, $6, $7, $7, $8, $9, head, head FROM bump \
        RETURNING seq \
    ), ob AS ( \
        INSERT INTO outbox (id, kind, thread_id, time, payload, message_seq, rev) \
        SELECT $10, $11, $1, $12, $13, seq, seq FROM ins \
    ) SELECT seq FROM ins";

/// A batch of creates of one thread (see `batch`): one bump by their number, then each message
/// and its event, numbered in the order they queued.
const CREATE_MANY: &str = "WITH bump AS ( \
        INSERT INTO threads AS t (thread_id, head) VALUES ($1, $2) \
        ON CONFLICT (thread_id) DO UPDATE SET head = t.head + $2 \
        RETURNING head \
    ), rows AS ( \
        SELECT r.*, (SELECT head FROM bump) - $2 + r.n AS seq \
        FROM unnest($3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::text[], \
                    $8::timestamptz[], $9::text[], $10::bytea[], $11::uuid[], $12::text[], \
                    $13::timestamptz[], $14::bytea[]) WITH ORDINALITY \
             AS r(id, user_id, kind, content, paths, created_at, idempotency_key, \
                  request_hash, event_id, event_kind, event_time, payload, n) \
    ), ins AS ( \
        INSERT INTO messages (thread_id, id, user_id, kind, content, paths, created_at, \
                              updated_at, idempotency_key, request_hash, seq, rev) \
        SELECT $1, id, user_id, kind, content, \
               ARRAY(SELECT json_array_elements_text(paths::json)), created_at, created_at, \
               idempotency_key, request_hash, seq, seq \
        FROM rows ORDER BY n \
    ), ob AS ( \
        INSERT INTO outbox (id, kind, thread_id, time, payload, message_seq, rev) \
        SELECT event_id, event_kind, $1, event_time, payload, seq, seq FROM rows ORDER BY n \
    ) SELECT head FROM bump";

const ORIGINAL: &str = concat!(
    "SELECT ",
    columns!(""),
    ", request_hash FROM messages \
     WHERE thread_id = $1 AND user_id = $2 AND idempotency_key = $3"
);

const GET: &str = concat!(
    "SELECT ",
    columns!(""),
    " FROM messages WHERE thread_id = $1 AND id = $2 AND deleted_at IS NULL"
);

/// An edit, first step: the new content, without a number yet.
const EDIT: &str = concat!(
    "UPDATE messages SET content = COALESCE($4, content), paths = COALESCE($5, paths), \
     updated_at = $6 \
     WHERE thread_id = $1 AND id = $2 AND user_id = $3 AND deleted_at IS NULL RETURNING ",
    columns!("")
);

/// An edit, last step before the commit: bump the counter, number the edit, write its event.
const NUMBER_EDIT: &str = "WITH bump AS ( \
        UPDATE threads SET head = head + 1 WHERE thread_id = $1 RETURNING head \
    ), upd AS ( \
        UPDATE messages m SET rev = bump.head FROM bump \
        WHERE m.thread_id = $1 AND m.id = $2 RETURNING m.seq, m.rev \
    ), ob AS ( \
        INSERT INTO outbox (id, kind, thread_id, time, payload, message_seq, rev) \
        SELECT $3, $4, $1, $5, $6, seq, rev FROM upd \
    ) SELECT rev FROM upd";

/// One statement: lock the live message (a concurrent delete waits, then finds it gone), bump
/// the counter, mark the message deleted with the new number, write the event.
const DELETE: &str = "WITH target AS ( \
        SELECT id FROM messages \
        WHERE thread_id = $1 AND id = $2 AND user_id = $3 AND deleted_at IS NULL FOR UPDATE \
    ), bump AS ( \
        UPDATE threads SET head = head + 1 \
        WHERE thread_id = $1 AND EXISTS (SELECT 1 FROM target) RETURNING head \
    ), del AS ( \
        UPDATE messages m SET deleted_at = $4, rev = bump.head FROM bump \
        WHERE m.thread_id = $1 AND m.id = $2 AND m.deleted_at IS NULL RETURNING m.seq, m.rev \
    ), ob AS ( \
        INSERT INTO outbox (id, kind, thread_id, time, payload, message_seq, rev) \
        SELECT $5, $6, $1, $7, $8, seq, rev FROM del \
    ) SELECT seq, rev FROM del";

/// The anchor's part (2; its columns NULL when it is deleted), the older messages (0) and the
/// newer ones (1), with the position, in one snapshot.
const AROUND: &str = concat!(
    "WITH a AS (SELECT seq FROM messages WHERE thread_id = $1 AND id = $2) ",
    "SELECT 0::int2 AS part, h.head, ",
    columns!("m."),
    " FROM ",
    head!(),
    " CROSS JOIN a CROSS JOIN LATERAL (SELECT ",
    columns!(""),
    " FROM messages WHERE thread_id = $1 AND deleted_at IS NULL AND seq < a.seq \
     ORDER BY seq DESC LIMIT $3) m \
     UNION ALL SELECT 1::int2, h.head, ",
    columns!("m."),
    " FROM ",
    head!(),
    " CROSS JOIN a CROSS JOIN LATERAL (SELECT ",
    columns!(""),
    " FROM messages WHERE thread_id = $1 AND deleted_at IS NULL AND seq > a.seq \
     ORDER BY seq ASC LIMIT $3) m \
     UNION ALL SELECT 2::int2, h.head, ",
    columns!("m."),
    " FROM ",
    head!(),
    " CROSS JOIN a LEFT JOIN messages m \
     ON m.thread_id = $1 AND m.seq = a.seq AND m.deleted_at IS NULL"
);

const CHANGES: &str = concat!(
    "SELECT h.head, ",
    columns!("m."),
    ", m.deleted_at FROM ",
    head!(),
    " LEFT JOIN LATERAL (SELECT ",
    columns!(""),
    ", deleted_at FROM messages WHERE thread_id = $1 AND rev > $2 ORDER BY rev LIMIT $3) m \
     ON true"
);

const LOCATE: &str = "SELECT seq FROM messages WHERE thread_id = $1 AND id = $2";

const HEAD: &str = "SELECT head FROM threads WHERE thread_id = $1";

impl PostgresStore {
    /// Writes a batch of creates of one thread and answers each: one statement for all of
    /// them, or each alone when there is one, or when a reused idempotency key or a refused
    /// value fails the batch (that create must answer as it would alone, the others go in).
    async fn insert_batch(&self, jobs: Vec<Job>) {
        if jobs.len() > 1 {
            let many = tokio::time::timeout(self.operation_timeout, self.insert_many(&jobs))
                .await
                .unwrap_or_else(|_| Err(Error::unavailable("create", "timed out").into()));
            match many {
                Ok(head) => {
                    let first = head - jobs.len() as i64 + 1;
                    for (i, job) in jobs.into_iter().enumerate() {
                        let mut numbered = job.message;
                        numbered.seq = first + i as i64;
                        numbered.rev = numbered.seq;
                        let _ = job.reply.send(Ok(Created::New(numbered)));
                    }
                    return;
                }
                Err(ManyError::OneByOne) => {}
                Err(ManyError::Failed(error)) => return batch::fail_all(jobs, error),
            }
        }
        for job in jobs {
            let created = self
                .timed(
                    "create",
                    self.insert_one(&job.message, job.idempotency.as_ref(), &job.event),
                )
                .await;
            let _ = job.reply.send(created);
        }
    }

    /// One create: the bump, the message and its event in one statement.
    async fn insert_one(
        &self,
        message: &Message,
        idempotency: Option<&(String, RequestFingerprint)>,
        event: &OutboxEvent,
    ) -> Result<Created> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(CREATE).await.map_err(db("prepare"))?;
        let key = idempotency.map(|(key, _)| key.as_str());
        let hash = idempotency.map(|(_, fingerprint)| fingerprint.as_bytes().to_vec());
        let created_at = message.created_at.to_datetime();
        let event_time = event.time.to_datetime();
        let inserted = client
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
                    &event.open_payload,
                ],
            )
            .await;
        match (inserted, idempotency) {
            (Ok(row), _) => {
                let seq: i64 = row.try_get(0).map_err(decode)?;
                let mut numbered = message.clone();
                numbered.seq = seq;
                numbered.rev = seq;
                Ok(Created::New(numbered))
            }
            (Err(e), Some((key, fingerprint))) if is_reused_key(&e) => {
                self.replay(&client, message, key, *fingerprint).await
            }
            (Err(e), _) => Err(db("insert message")(e)),
        }
    }

    /// Several creates of one thread in one statement; the thread's head after them.
    async fn insert_many(&self, jobs: &[Job]) -> Result<i64, ManyError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(CREATE_MANY)
            .await
            .map_err(db("prepare"))?;
        let thread = jobs[0].message.thread_id;
        let n = jobs.len() as i64;
        let ids: Vec<&uuid::Uuid> = jobs.iter().map(|j| j.message.id.as_uuid()).collect();
        let users: Vec<&uuid::Uuid> = jobs.iter().map(|j| j.message.user_id.as_uuid()).collect();
        let kinds: Vec<&str> = jobs.iter().map(|j| j.message.kind.as_str()).collect();
        let contents: Vec<&str> = jobs.iter().map(|j| j.message.content.as_str()).collect();
        let paths: Vec<String> = jobs
            .iter()
            .map(|j| {
                serde_json::to_string(&j.message.paths)
                    .expect("a list of strings always serialises to JSON")
            })
            .collect();
        let created: Vec<DateTime<Utc>> = jobs
            .iter()
            .map(|j| j.message.created_at.to_datetime())
            .collect();
        let keys: Vec<Option<&str>> = jobs
            .iter()
            .map(|j| j.idempotency.as_ref().map(|(key, _)| key.as_str()))
            .collect();
        let hashes: Vec<Option<&[u8]>> = jobs
            .iter()
            .map(|j| j.idempotency.as_ref().map(|(_, f)| f.as_bytes().as_slice()))
            .collect();
        let event_ids: Vec<&uuid::Uuid> = jobs.iter().map(|j| &j.event.id).collect();
        let event_kinds: Vec<&str> = jobs.iter().map(|j| j.event.kind).collect();
        let event_times: Vec<DateTime<Utc>> =
            jobs.iter().map(|j| j.event.time.to_datetime()).collect();
        let payloads: Vec<&[u8]> = jobs
            .iter()
            .map(|j| j.event.open_payload.as_slice())
            .collect();
        let row = client
            .query_one(
                &stmt,
                &[
                    thread.as_uuid(),
                    &n,
                    &ids,
                    &users,
                    &kinds,
                    &contents,
                    &paths,
                    &created,
                    &keys,
                    &hashes,
                    &event_ids,
                    &event_kinds,
                    &event_times,
                    &payloads,
                ],
            )
            .await
            .map_err(|e| {
                if is_reused_key(&e) || classify(e.code()) == Failure::Refused {
                    ManyError::OneByOne
                } else {
                    ManyError::Failed(db("insert messages")(e))
                }
            })?;
        Ok(row.try_get(0).map_err(decode)?)
    }
}

/// Why a batch statement failed.
enum ManyError {
    /// An idempotency key in it was used before, or the database refused a value of one
    /// create: the creates go in one by one, so each answers as it would alone (a replay, a
    /// 422 for the refused one, the others written).
    OneByOne,
    /// Anything else, for every create of the batch.
    Failed(Error),
}

impl From<Error> for ManyError {
    fn from(error: Error) -> Self {
        ManyError::Failed(error)
    }
}

/// Tells a unique violation of the idempotency index from every other failure.
fn is_reused_key(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
        && e.as_db_error().and_then(|d| d.constraint()) == Some("messages_idempotency")
}

impl PostgresStore {
    /// The message a reused key created, or the conflict.
    async fn replay(
        &self,
        client: &deadpool_postgres::Object,
        message: &Message,
        key: &str,
        fingerprint: RequestFingerprint,
    ) -> Result<Created> {
        let stmt = client
            .prepare_cached(ORIGINAL)
            .await
            .map_err(db("prepare"))?;
        let row = client
            .query_one(
                &stmt,
                &[message.thread_id.as_uuid(), message.user_id.as_uuid(), &key],
            )
            .await
            .map_err(db("idempotent replay"))?;
        let stored: Vec<u8> = row.try_get(10).map_err(decode)?;
        let stored: [u8; 32] = stored
            .try_into()
            .map_err(|_| decode("bad request_hash length"))?;
        if RequestFingerprint::from_bytes(stored) != fingerprint {
            return Err(Error::IdempotencyConflict);
        }
        Ok(Created::Replayed(message_from_row(&row, 0)?))
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
        self.timed("create", async {
            let (reply, outcome) = oneshot::channel();
            let thread = message.thread_id;
            let job = Job {
                message: message.clone(),
                idempotency: idempotency.map(|i| (i.key.as_str().to_owned(), i.fingerprint)),
                event,
                reply,
            };
            if self.queues.push(job) {
                let store = self.clone();
                tokio::spawn(async move {
                    let queues = Arc::clone(&store.queues);
                    batch::drain(queues, thread, |jobs| store.insert_batch(jobs)).await;
                });
            }
            outcome
                .await
                .map_err(|_| Error::unavailable("create", "the batch's task ended"))?
        })
        .await
    }

    async fn get(&self, thread: ThreadId, id: MessageId) -> Result<Message> {
        self.timed("get", async {
            let client = self.client().await?;
            let stmt = client.prepare_cached(GET).await.map_err(db("prepare"))?;
            let row = client
                .query_opt(&stmt, &[thread.as_uuid(), id.as_uuid()])
                .await
                .map_err(db("get message"))?;
            row.as_ref()
                .map(|r| message_from_row(r, 0))
                .ok_or(Error::NotFound)?
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
        event: UpdateEvent,
    ) -> Result<Message> {
        self.timed("update", async {
            let mut client = self.client().await?;
            let edit = client.prepare_cached(EDIT).await.map_err(db("prepare"))?;
            let number = client
                .prepare_cached(NUMBER_EDIT)
                .await
                .map_err(db("prepare"))?;
            let tx = client.transaction().await.map_err(db("begin"))?;
            let now_dt = now.to_datetime();
            let row = tx
                .query_opt(
                    &edit,
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
            let mut edited = message_from_row(&row, 0)?;
            if edited.is_blank() {
                // Rolled back when `tx` drops.
                return Err(Error::invalid(
                    "content",
                    "must not be blank unless paths are given",
                ));
            }
            let e = event(&edited);
            let time = e.time.to_datetime();
            let row = tx
                .query_one(
                    &number,
                    &[
                        thread.as_uuid(),
                        id.as_uuid(),
                        &e.id,
                        &e.kind,
                        &time,
                        &e.open_payload,
                    ],
                )
                .await
                .map_err(db("number edit"))?;
            edited.rev = row.try_get(0).map_err(decode)?;
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
    ) -> Result<Tombstone> {
        self.timed("delete", async {
            let client = self.client().await?;
            let stmt = client.prepare_cached(DELETE).await.map_err(db("prepare"))?;
            let now_dt = now.to_datetime();
            let time = event.time.to_datetime();
            let row = client
                .query_opt(
                    &stmt,
                    &[
                        thread.as_uuid(),
                        id.as_uuid(),
                        user.as_uuid(),
                        &now_dt,
                        &event.id,
                        &event.kind,
                        &time,
                        &event.open_payload,
                    ],
                )
                .await
                .map_err(db("delete message"))?;
            match row {
                Some(row) => Ok(Tombstone {
                    id,
                    thread_id: thread,
                    deleted_at: now,
                    seq: row.try_get(0).map_err(decode)?,
                    rev: row.try_get(1).map_err(decode)?,
                }),
                None => Err(self.diagnose(&client, thread, id).await),
            }
        })
        .await
    }

    async fn page(&self, thread: ThreadId, query: PageQuery, size: PageSize) -> Result<Page> {
        self.timed("page", async {
            let client = self.client().await?;
            let (sql, position) = page_statement(query);
            let stmt = client.prepare_cached(sql).await.map_err(db("prepare"))?;
            let take = (size.get() + 1) as i64;
            let rows = match query {
                PageQuery::Newest => client.query(&stmt, &[thread.as_uuid(), &take]).await,
                PageQuery::Before(_) | PageQuery::After(_) => {
                    client
                        .query(&stmt, &[thread.as_uuid(), &take, &position])
                        .await
                }
            }
            .map_err(db("page"))?;
            let (head, messages) = head_and_messages(&rows)?;
            Ok(Page::from_overfetch(messages, size, head))
        })
        .await
    }

    async fn around(&self, thread: ThreadId, id: MessageId, half: usize) -> Result<Around> {
        self.timed("around", async {
            let client = self.client().await?;
            let stmt = client.prepare_cached(AROUND).await.map_err(db("prepare"))?;
            let take = (half + 1) as i64;
            let rows = client
                .query(&stmt, &[thread.as_uuid(), id.as_uuid(), &take])
                .await
                .map_err(db("around"))?;
            let mut head = None;
            let (mut before, mut after, mut anchor) = (Vec::new(), Vec::new(), None);
            for row in &rows {
                let part: i16 = row.try_get(0).map_err(decode)?;
                head = Some(row.try_get::<_, i64>(1).map_err(decode)?);
                let live: Option<uuid::Uuid> = row.try_get(3).map_err(decode)?;
                let message = match live {
                    Some(_) => Some(message_from_row(row, 2)?),
                    None => None,
                };
                match (part, message) {
                    (0, Some(m)) => before.push(m),
                    (1, Some(m)) => after.push(m),
                    (2, m) => anchor = Some(m),
                    _ => {}
                }
            }
            // No anchor row: the id is unknown in this thread.
            let (Some(anchor), Some(head)) = (anchor, head) else {
                return Err(Error::NotFound);
            };
            before.sort_by_key(|m| std::cmp::Reverse(m.seq));
            after.sort_by_key(|m| m.seq);
            Ok(Around::from_overfetch(before, anchor, after, half, head))
        })
        .await
    }

    async fn changes(&self, thread: ThreadId, since: i64, limit: ChangesLimit) -> Result<Changes> {
        self.timed("changes", async {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(CHANGES)
                .await
                .map_err(db("prepare"))?;
            let take = (limit.get() + 1) as i64;
            let rows = client
                .query(&stmt, &[thread.as_uuid(), &since, &take])
                .await
                .map_err(db("changes"))?;
            let head = match rows.first() {
                Some(row) => row.try_get(0).map_err(decode)?,
                None => 0,
            };
            let mut changes = Vec::with_capacity(rows.len());
            for row in &rows {
                let id: Option<uuid::Uuid> = row.try_get(2).map_err(decode)?;
                if id.is_none() {
                    continue;
                }
                let message = message_from_row(row, 1)?;
                let deleted_at: Option<DateTime<Utc>> = row.try_get(11).map_err(decode)?;
                changes.push(match deleted_at {
                    None => Change::Message(message),
                    Some(at) => Change::Deleted(Tombstone {
                        id: message.id,
                        thread_id: message.thread_id,
                        deleted_at: Timestamp::from(at),
                        seq: message.seq,
                        rev: message.rev,
                    }),
                });
            }
            Ok(Changes::from_overfetch(changes, since, head, limit.get()))
        })
        .await
    }

    async fn locate(&self, thread: ThreadId, id: MessageId) -> Result<Option<i64>> {
        self.timed("locate", async {
            let client = self.client().await?;
            let stmt = client.prepare_cached(LOCATE).await.map_err(db("prepare"))?;
            let row = client
                .query_opt(&stmt, &[thread.as_uuid(), id.as_uuid()])
                .await
                .map_err(db("locate"))?;
            row.map(|r| r.try_get(0).map_err(decode)).transpose()
        })
        .await
    }

    async fn head(&self, thread: ThreadId) -> Result<i64> {
        self.timed("head", async {
            let client = self.client().await?;
            let stmt = client.prepare_cached(HEAD).await.map_err(db("prepare"))?;
            let row = client
                .query_opt(&stmt, &[thread.as_uuid()])
                .await
                .map_err(db("head"))?;
            Ok(match row {
                Some(row) => row.try_get(0).map_err(decode)?,
                None => 0,
            })
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

    /// Replicas share the database.
    fn is_shared(&self) -> bool {
        true
    }
}
