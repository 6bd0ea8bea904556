//! Creates on PostgreSQL: one by one, or the creates that queued together (`batch`), of any
//! threads, written by one statement with one bump of each thread's counter and one commit; a
//! reused idempotency key or a refused value in a group sends its creates in one by one.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use tokio_postgres::error::SqlState;

use super::batch::{self, Job};
use super::sql::*;
use super::{COLUMNS, Failure, PostgresStore, classify, db, decode, message_from_row};
use crate::error::{Error, Result};
use crate::message::{Message, RequestFingerprint, ThreadId};
use crate::storage::{Created, OutboxEvent};

impl PostgresStore {
    /// Writes a group of creates and answers each: one statement for all of them, or each
    /// alone when there is one, or when a reused idempotency key or a refused value fails the
    /// group (that create must answer as it would alone, the others go in).
    pub(super) async fn insert_group(&self, jobs: Vec<Job>) {
        if jobs.len() > 1 {
            let many = tokio::time::timeout(self.operation_timeout, self.insert_many(&jobs))
                .await
                .unwrap_or_else(|_| Err(Error::unavailable("create", "timed out").into()));
            match many {
                Ok(heads) => return self.answer_group(jobs, &heads),
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

    /// Numbers each create of a written group from its thread's head after the group: a
    /// thread's creates took the numbers up to its head, in the order they queued.
    fn answer_group(&self, jobs: Vec<Job>, heads: &HashMap<ThreadId, i64>) {
        let mut taken: HashMap<ThreadId, i64> = HashMap::with_capacity(heads.len());
        for job in &jobs {
            *taken.entry(job.message.thread_id).or_default() += 1;
        }
        let mut next: HashMap<ThreadId, i64> = taken
            .iter()
            .map(|(thread, n)| (*thread, heads.get(thread).copied().unwrap_or(0) - n + 1))
            .collect();
        for job in jobs {
            let mut numbered = job.message;
            let Some(seq) = next.get_mut(&numbered.thread_id).filter(|seq| **seq > 0) else {
                // The statement bumps every thread of its group; a missing head is a bug.
                let error = Error::internal("create", "a thread's head is missing from its group");
                let _ = job.reply.send(Err(error));
                continue;
            };
            numbered.seq = *seq;
            numbered.rev = *seq;
            *seq += 1;
            self.recent.remember(&numbered);
            let _ = job.reply.send(Ok(Created::New(numbered)));
        }
    }

    /// One create: the bump, the message and its event in one statement.
    pub(super) async fn insert_one(
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
        let reply_to = message.reply_to.map(|id| *id.as_uuid());
        let inserted = client
            .query_opt(
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
                    &reply_to,
                ],
            )
            .await;
        match (inserted, idempotency) {
            // The reply's target is not live: a retry of a create whose target was deleted
            // since still replays.
            (Ok(None), Some((key, fingerprint))) => {
                match self.replay(&client, message, key, *fingerprint).await {
                    Err(Error::NotFound) => Err(Error::InvalidReplyTo),
                    replayed => replayed,
                }
            }
            (Ok(None), None) => Err(Error::InvalidReplyTo),
            (Ok(Some(row)), _) => {
                let seq: i64 = row.try_get(0).map_err(decode)?;
                let mut numbered = message.clone();
                numbered.seq = seq;
                numbered.rev = seq;
                self.recent.remember(&numbered);
                Ok(Created::New(numbered))
            }
            (Err(e), Some((key, fingerprint))) if is_reused_key(&e) => {
                self.replay(&client, message, key, *fingerprint).await
            }
            (Err(e), _) => Err(db("insert message")(e)),
        }
    }

    /// A group of creates in one statement; each of its threads' head after it.
    pub(super) async fn insert_many(
        &self,
        jobs: &[Job],
    ) -> Result<HashMap<ThreadId, i64>, ManyError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(CREATE_GROUP)
            .await
            .map_err(db("prepare"))?;
        let threads: Vec<&uuid::Uuid> =
            jobs.iter().map(|j| j.message.thread_id.as_uuid()).collect();
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
        let replies: Vec<Option<uuid::Uuid>> = jobs
            .iter()
            .map(|j| j.message.reply_to.map(|id| *id.as_uuid()))
            .collect();
        let rows = client
            .query(
                &stmt,
                &[
                    &threads,
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
                    &replies,
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
        // No row: a reply's target is not live, and each create answers for itself.
        if rows.is_empty() {
            return Err(ManyError::OneByOne);
        }
        let mut heads = HashMap::with_capacity(rows.len());
        for row in rows {
            let thread: uuid::Uuid = row.try_get(0).map_err(decode)?;
            let head: i64 = row.try_get(1).map_err(decode)?;
            heads.insert(ThreadId::from_uuid(thread), head);
        }
        Ok(heads)
    }
}

/// Why a group's statement failed.
pub(super) enum ManyError {
    /// An idempotency key in it was used before, or the database refused a value of one
    /// create: the creates go in one by one, so each answers as it would alone (a replay, a
    /// 422 for the refused one, the others written).
    OneByOne,
    /// Anything else, for every create of the group.
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
    pub(super) async fn replay(
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
            .query_opt(
                &stmt,
                &[message.thread_id.as_uuid(), message.user_id.as_uuid(), &key],
            )
            .await
            .map_err(db("idempotent replay"))?
            .ok_or(Error::NotFound)?;
        let stored: Vec<u8> = row.try_get(COLUMNS).map_err(decode)?;
        let stored: [u8; 32] = stored
            .try_into()
            .map_err(|_| decode("bad request_hash length"))?;
        if RequestFingerprint::from_bytes(stored) != fingerprint {
            return Err(Error::IdempotencyConflict);
        }
        Ok(Created::Replayed(message_from_row(&row, 0)?))
    }
}
