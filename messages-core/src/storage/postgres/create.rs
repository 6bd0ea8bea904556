//! Creates on PostgreSQL: one by one, or the creates that queued together (`queue`), of any
//! threads, written by one statement with one bump of each thread's counter and one commit; a
//! reused idempotency key or a refused value in a group sends its creates in one by one.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::oneshot;

use super::group_columns::GroupColumns;
use super::idempotency::{is_reused_key, replay_if_used};
use super::queue::{self, CreateJob};
use super::rows::mentions_column;
use super::{Failure, PostgresStore, classify, db, decode};
use crate::error::{Error, Result};
use crate::events::codec;
use crate::message::{Mentions, ThreadId};
use crate::storage::{CreateStore, OutboxEvent};
use crate::write::{CreateRequest, Created};

/// One statement: bump the thread's counter, insert the message numbered with it, insert its
/// event with the numbers beside its open body, move the author's read position up to it. A
/// reused idempotency key fails the unique index, which rolls back the whole statement, bump
/// included: a replay takes no number. (A reply changes its root too: see `replies`.)
const CREATE: &str = r#"
WITH bump AS (
    INSERT INTO threads AS t (thread_id, head) VALUES ($1, 1)
    ON CONFLICT (thread_id) DO UPDATE SET head = t.head + 1
    RETURNING head
), ins AS (
    INSERT INTO messages (thread_id, id, user_id, kind, content, paths, created_at,
                          updated_at, idempotency_key, request_hash, seq, rev, mentions)
    SELECT $1, $2, $3, $4, $5, $6, $7, $7, $8, $9, head, head, $14 FROM bump
    RETURNING seq
), ob AS (
    INSERT INTO outbox (id, kind, thread_id, time, payload, message_seq, rev)
    SELECT $10, $11, $1, $12, $13, seq, seq FROM ins
), seen AS (
    INSERT INTO read_positions AS r (thread_id, user_id, seq) SELECT $1, $3, seq FROM ins
    ON CONFLICT (thread_id, user_id) DO UPDATE SET seq = GREATEST(r.seq, excluded.seq)
), filed AS (
    INSERT INTO mentions (thread_id, user_id, seq, author, id)
    SELECT $1, k, seq, $3, $2 FROM ins, unnest($15::uuid[]) k
) SELECT seq FROM ins
"#;

/// A group of creates, of any threads (see `queue`): each thread's counter bumped once by its
/// number of creates, in thread id order (two groups never wait on each other in a circle), then
/// each message and its event, numbered per thread in the order they queued, and each author's
/// read position moved up to their last. Answers each thread's head after the group.
const CREATE_GROUP: &str = r#"
WITH rows AS (
    SELECT r.*, row_number() OVER (PARTITION BY r.thread_id ORDER BY r.n) AS k
    FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[],
                $7::timestamptz[], $8::text[], $9::bytea[], $10::uuid[], $11::text[],
                $12::timestamptz[], $13::bytea[], $14::text[]) WITH ORDINALITY
         AS r(thread_id, id, user_id, kind, content, paths, created_at, idempotency_key,
              request_hash, event_id, event_kind, event_time, payload, mentions, n)
), counts AS (
    SELECT thread_id, count(*) AS c FROM rows GROUP BY thread_id
), bump AS (
    INSERT INTO threads AS t (thread_id, head)
    SELECT thread_id, c FROM counts ORDER BY thread_id
    ON CONFLICT (thread_id) DO UPDATE SET head = t.head + excluded.head
    RETURNING thread_id, head
), numbered AS (
    SELECT r.*, b.head - c.c + r.k AS seq
    FROM rows r JOIN counts c USING (thread_id) JOIN bump b USING (thread_id)
), ins AS (
    INSERT INTO messages (thread_id, id, user_id, kind, content, paths, created_at,
                          updated_at, idempotency_key, request_hash, seq, rev, mentions)
    SELECT thread_id, id, user_id, kind, content,
           ARRAY(SELECT json_array_elements_text(paths::json)), created_at, created_at,
           idempotency_key, request_hash, seq, seq, mentions
    FROM numbered ORDER BY n
), ob AS (
    INSERT INTO outbox (id, kind, thread_id, time, payload, message_seq, rev)
    SELECT event_id, event_kind, thread_id, event_time, payload, seq, seq
    FROM numbered ORDER BY n
), seen AS (
    INSERT INTO read_positions AS r (thread_id, user_id, seq)
    SELECT thread_id, user_id, max(seq) FROM numbered
    GROUP BY thread_id, user_id ORDER BY thread_id, user_id
    ON CONFLICT (thread_id, user_id) DO UPDATE SET seq = GREATEST(r.seq, excluded.seq)
), filed AS (
    INSERT INTO mentions (thread_id, user_id, seq, author, id)
    SELECT m.thread_id, k.key, m.seq, m.user_id, m.id
    FROM unnest($15::int8[], $16::uuid[]) AS k(place, key) JOIN numbered m ON m.n = k.place
) SELECT thread_id, head FROM bump
"#;

#[async_trait]
impl CreateStore for PostgresStore {
    async fn create(&self, mut request: CreateRequest) -> Result<Created> {
        // A reply changes its root too. One whose root this process knows queues in its
        // thread's lane with the creates (see `reply_group`); any other is written alone,
        // reading and locking what it needs (see `reply_create`).
        if let Some(target) = request.message.reply_to {
            let thread = request.message.thread_id;
            let known = self.recent.get(thread, target);
            match known.map(|target| crate::replies::root_of(&target)) {
                Some(root) => request.message.root_id = Some(root),
                None => {
                    let reply = super::reply_create::insert_reply(self, &request);
                    return self.timed("create", reply).await;
                }
            }
        }
        // Encoded here, on the caller's task: the lane's task only writes.
        let event = codec::created(&request.message);
        self.timed("create", async {
            let (reply, outcome) = oneshot::channel();
            let job = CreateJob {
                request,
                event,
                reply,
            };
            if let Some(lane) = self.creates.push(job) {
                let store = self.clone();
                tokio::spawn(async move {
                    let creates = Arc::clone(&store.creates);
                    queue::drain(creates.queues(), lane, |jobs| insert_group(&store, jobs)).await;
                });
            }
            outcome
                .await
                .map_err(|_| Error::unavailable("create", "the batch's task ended"))?
        })
        .await
    }
}

/// Writes a lane's group and answers each job: the replies by their own statement (see
/// `reply_group`) beside the creates'.
async fn insert_group(store: &PostgresStore, jobs: Vec<CreateJob>) {
    let (replies, creates): (Vec<_>, Vec<_>) = jobs
        .into_iter()
        .partition(|job| job.message().reply_to.is_some());
    tokio::join!(
        insert_creates(store, creates),
        super::reply_group::insert_replies(store, replies)
    );
}

/// Writes a group of creates and answers each: one statement for all of them, or each alone
/// when there is one, or when a reused idempotency key or a refused value fails the group
/// (that create must answer as it would alone, the others go in).
async fn insert_creates(store: &PostgresStore, jobs: Vec<CreateJob>) {
    if jobs.len() > 1 {
        let many = tokio::time::timeout(store.operation_timeout, insert_many(store, &jobs))
            .await
            .unwrap_or_else(|_| Err(Error::unavailable("create", "timed out").into()));
        match many {
            Ok(heads) => return answer_group(store, jobs, &heads),
            Err(ManyError::OneByOne) => {}
            Err(ManyError::Failed(error)) => return queue::fail_all(jobs, error),
        }
    }
    for job in jobs {
        let created = store
            .timed("create", insert_one(store, &job.request, &job.event))
            .await;
        let _ = job.reply.send(created);
    }
}

/// Numbers each create of a written group from its thread's head after the group: a thread's
/// creates took the numbers up to its head, in the order they queued.
fn answer_group(store: &PostgresStore, jobs: Vec<CreateJob>, heads: &HashMap<ThreadId, i64>) {
    let mut taken: HashMap<ThreadId, i64> = HashMap::with_capacity(heads.len());
    for job in &jobs {
        *taken.entry(job.message().thread_id).or_default() += 1;
    }
    let mut next: HashMap<ThreadId, i64> = taken
        .iter()
        .map(|(thread, n)| (*thread, heads.get(thread).copied().unwrap_or(0) - n + 1))
        .collect();
    for job in jobs {
        let mut numbered = job.request.message;
        let Some(seq) = next.get_mut(&numbered.thread_id).filter(|seq| **seq > 0) else {
            // The statement bumps every thread of its group; a missing head is a bug.
            let error = Error::internal("create", "a thread's head is missing from its group");
            let _ = job.reply.send(Err(error));
            continue;
        };
        numbered.seq = *seq;
        numbered.rev = *seq;
        *seq += 1;
        store.recent.remember(&numbered);
        let _ = job.reply.send(Ok(Created::New(numbered)));
    }
}

/// One create: the bump, the message and its event in one statement.
async fn insert_one(
    store: &PostgresStore,
    request: &CreateRequest,
    event: &OutboxEvent,
) -> Result<Created> {
    let CreateRequest {
        message,
        idempotency,
        ..
    } = request;
    let client = store.client().await?;
    let stmt = client.prepare_cached(CREATE).await.map_err(db("prepare"))?;
    let key = idempotency.as_ref().map(|i| i.key.as_str());
    let hash = idempotency
        .as_ref()
        .map(|i| i.fingerprint.as_bytes().to_vec());
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
                &mentions_column(message.mentions.as_ref()),
                &Mentions::keys(message.mentions.as_ref()),
            ],
        )
        .await;
    match (inserted, idempotency) {
        (Ok(row), _) => {
            let seq: i64 = row.try_get(0).map_err(decode)?;
            let mut numbered = message.clone();
            numbered.seq = seq;
            numbered.rev = seq;
            store.recent.remember(&numbered);
            Ok(Created::New(numbered))
        }
        (Err(e), Some(idempotency)) if is_reused_key(&e) => {
            replay_if_used(&client, message, idempotency)
                .await?
                .ok_or_else(|| Error::internal("create", "a reused key found no message"))
        }
        (Err(e), _) => Err(db("insert message")(e)),
    }
}

/// A group of creates in one statement; each of its threads' head after it.
async fn insert_many(
    store: &PostgresStore,
    jobs: &[CreateJob],
) -> Result<HashMap<ThreadId, i64>, ManyError> {
    let client = store.client().await?;
    let stmt = client
        .prepare_cached(CREATE_GROUP)
        .await
        .map_err(db("prepare"))?;
    let columns = GroupColumns::of(jobs);
    let rows = client
        .query(&stmt, &columns.params(&[]))
        .await
        .map_err(|e| {
            if is_reused_key(&e) || classify(e.code()) == Failure::Refused {
                ManyError::OneByOne
            } else {
                ManyError::Failed(db("insert messages")(e))
            }
        })?;
    let mut heads = HashMap::with_capacity(rows.len());
    for row in rows {
        let thread: uuid::Uuid = row.try_get(0).map_err(decode)?;
        let head: i64 = row.try_get(1).map_err(decode)?;
        heads.insert(ThreadId::from_uuid(thread), head);
    }
    Ok(heads)
}

/// Why a group's statement failed.
enum ManyError {
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
