//! Replies that queued together in a create lane (see `queue`), written by one statement with
//! one commit: each reply numbered in the order it queued, then each root it changed once,
//! with its summary after all of the group's replies to it.
//!
//! A group is written on the roots as this process last wrote them (`recent`), and only while
//! every one of them is still at that `rev` and every target is live; otherwise nothing is
//! written and each reply goes alone (`reply_create`), which reads and locks what it needs. A
//! reply alone in its group goes that way too, so it takes N and its root N+1 as before.
//!
//! Locks follow the order every write of a thread takes (see `replies`): the group's roots and
//! targets first, in (thread, id) order, then the threads' counters in thread order.

use std::collections::HashMap;

use super::group_columns::GroupColumns;
use super::queue::{self, CreateJob};
use super::replies::summary_columns;
use super::reply_create::insert_reply;
use super::{Failure, PostgresStore, classify, db, decode};
use crate::error::{Error, Result};
use crate::message::{Message, MessageId, ThreadId};
use crate::replies;
use crate::storage::OutboxEvent;
use crate::write::Created;

/// A group of replies ($1-$16 as `GroupColumns` has them, and $17-$18, one element per reply,
/// in the order they queued) and the live roots they answer ($19-$28, one element per root, in (thread, id) order, each with the
/// `rev` it was read at and its summary after the group's replies). Every root and target is
/// locked in (thread, id) order; only when every root is still at its `rev` and every target
/// live are the counters bumped (in thread order) by the thread's replies and roots. A
/// thread's replies take its numbers first, in queue order, then its roots theirs; each
/// replier follows the root at their last reply, each root's author follows unless they chose
/// not to; the events are written in the order of their numbers. Answers each thread's head
/// after the group, or no row when it wrote nothing.
const REPLY_GROUP: &str = r#"
WITH r AS (
    SELECT r.*, row_number() OVER (PARTITION BY r.thread_id ORDER BY r.n) AS k
    FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[],
                $7::timestamptz[], $8::text[], $9::bytea[], $10::uuid[], $11::text[],
                $12::timestamptz[], $13::bytea[], $17::uuid[], $18::uuid[], $14::text[])
         WITH ORDINALITY
         AS r(thread_id, id, user_id, kind, content, paths, created_at, idempotency_key,
              request_hash, event_id, event_kind, event_time, payload, target_id, root_id,
              mentions, n)
), roots AS (
    SELECT x.*, row_number() OVER (PARTITION BY x.thread_id ORDER BY x.n) AS k
    FROM unnest($19::uuid[], $20::uuid[], $21::bigint[], $22::int[], $23::timestamptz[],
                $24::uuid[], $25::text[], $26::uuid[], $27::bytea[], $28::uuid[]) WITH ORDINALITY
         AS x(thread_id, id, rev, reply_count, last_reply_at, last_reply_id, reply_users,
              event_id, payload, author, n)
), held AS (
    SELECT m.thread_id, m.id, m.rev, m.reply_to FROM messages m
    WHERE (m.thread_id, m.id) IN (SELECT thread_id, id FROM roots
                                  UNION SELECT thread_id, target_id FROM r)
      AND m.deleted_at IS NULL
    ORDER BY m.thread_id, m.id
    FOR UPDATE
), ok AS (
    SELECT (SELECT count(*) FROM held h JOIN roots x USING (thread_id, id)
            WHERE h.rev = x.rev AND h.reply_to IS NULL) = (SELECT count(*) FROM roots)
       AND (SELECT count(*) FROM held h
            WHERE (h.thread_id, h.id) IN (SELECT thread_id, target_id FROM r))
           = (SELECT count(*) FROM (SELECT DISTINCT thread_id, target_id FROM r) t) AS go
), total AS (
    SELECT c.thread_id, c.replies,
           c.replies + (SELECT count(*) FROM roots x WHERE x.thread_id = c.thread_id) AS c
    FROM (SELECT thread_id, count(*) AS replies FROM r GROUP BY thread_id) c
), bump AS (
    INSERT INTO threads AS t (thread_id, head)
    SELECT thread_id, c FROM total WHERE (SELECT go FROM ok) ORDER BY thread_id
    ON CONFLICT (thread_id) DO UPDATE SET head = t.head + excluded.head
    RETURNING thread_id, head
), base AS (
    SELECT b.thread_id, b.head - t.c AS base, t.replies FROM bump b JOIN total t USING (thread_id)
), numbered AS (
    SELECT r.*, base.base + r.k AS seq FROM r JOIN base USING (thread_id)
), root_numbered AS (
    SELECT x.*, base.base + base.replies + x.k AS new_rev FROM roots x JOIN base USING (thread_id)
), ins AS (
    INSERT INTO messages (thread_id, id, user_id, kind, content, paths, created_at,
                          updated_at, idempotency_key, request_hash, seq, rev, reply_to, root_id,
                          mentions)
    SELECT thread_id, id, user_id, kind, content,
           ARRAY(SELECT json_array_elements_text(paths::json)), created_at, created_at,
           idempotency_key, request_hash, seq, seq, target_id, root_id, mentions
    FROM numbered ORDER BY n
), seen AS (
    INSERT INTO read_positions AS p (thread_id, user_id, seq)
    SELECT thread_id, user_id, max(seq) FROM numbered
    GROUP BY thread_id, user_id ORDER BY thread_id, user_id
    ON CONFLICT (thread_id, user_id) DO UPDATE SET seq = GREATEST(p.seq, excluded.seq)
), root AS (
    UPDATE messages m
    SET reply_count = x.reply_count, last_reply_at = x.last_reply_at,
        last_reply_id = x.last_reply_id,
        reply_users = ARRAY(SELECT json_array_elements_text(x.reply_users::json))::uuid[],
        rev = x.new_rev
    FROM root_numbered x
    WHERE m.thread_id = x.thread_id AND m.id = x.id
    RETURNING m.thread_id, m.seq, m.rev, x.event_id, x.payload, x.last_reply_at
), replier AS (
    INSERT INTO reply_follows AS f (thread_id, root_id, user_id, following, seq)
    SELECT thread_id, root_id, user_id, true, max(seq) FROM numbered
    GROUP BY thread_id, root_id, user_id ORDER BY thread_id, root_id, user_id
    ON CONFLICT (thread_id, root_id, user_id) DO UPDATE
    SET following = true, seq = GREATEST(f.seq, excluded.seq)
), filed AS (
    INSERT INTO mentions (thread_id, user_id, seq, author, id)
    SELECT m.thread_id, k.key, m.seq, m.user_id, m.id
    FROM unnest($15::int8[], $16::uuid[]) AS k(place, key) JOIN numbered m ON m.n = k.place
), root_author AS (
    INSERT INTO reply_follows (thread_id, root_id, user_id, following, seq)
    SELECT x.thread_id, x.id, x.author, true, 0 FROM root_numbered x
    WHERE NOT EXISTS (SELECT 1 FROM numbered n
                      WHERE n.thread_id = x.thread_id AND n.root_id = x.id
                        AND n.user_id = x.author)
    ORDER BY 1, 2
    ON CONFLICT (thread_id, root_id, user_id) DO NOTHING
), ob AS (
    INSERT INTO outbox (id, kind, thread_id, time, payload, message_seq, rev)
    SELECT * FROM (
        SELECT event_id, event_kind, thread_id, event_time, payload, seq, seq FROM numbered
        UNION ALL
        SELECT event_id, $29::text, thread_id, last_reply_at, payload, seq, rev FROM root
    ) e ORDER BY 3, 7
) SELECT thread_id, head FROM bump
"#;

/// Writes the replies of a create lane's group and answers each: together when two or more
/// answer roots this process knows, else (and whenever the group cannot be written as known)
/// each alone.
pub(super) async fn insert_replies(store: &PostgresStore, jobs: Vec<CreateJob>) {
    if jobs.len() < 2 {
        return alone(store, jobs).await;
    }
    let (group, apart) = Group::of(store, jobs);
    let apart = alone(store, apart);
    let Some(group) = group else {
        return apart.await;
    };
    let written = tokio::time::timeout(store.operation_timeout, write(store, &group))
        .await
        .unwrap_or_else(|_| Err(Error::unavailable("create reply", "timed out")));
    match written {
        Ok(Some(heads)) => group.answer(store, &heads),
        // A root moved or a target went since they were known, a key was used before, the
        // database refused a value, or the group lost a race: each reply goes alone and
        // answers as it would have.
        Ok(None) => alone(store, group.jobs).await,
        Err(error) if super::lost_a_race(&error) => alone(store, group.jobs).await,
        Err(error) => queue::fail_all(group.jobs, error),
    }
    apart.await;
}

/// Each reply written by itself (`reply_create`), all at once, each on a task of its own.
/// The future ends when all are answered: the lane takes its next group only then, and the
/// replies that queue meanwhile are the next group.
fn alone(store: &PostgresStore, jobs: Vec<CreateJob>) -> impl Future<Output = ()> + use<> {
    let tasks: Vec<_> = jobs
        .into_iter()
        .map(|job| {
            let store = store.clone();
            tokio::spawn(async move {
                let created = store
                    .timed("create", insert_reply(&store, &job.request))
                    .await;
                let _ = job.reply.send(created);
            })
        })
        .collect();
    async move {
        for task in tasks {
            // A task that panicked dropped its job's answer: its caller hears the task ended.
            let _ = task.await;
        }
    }
}

/// A root as the group changes it.
struct Root {
    /// As last written: the group is written only while it is still at this `rev`.
    rev: i64,
    /// After the group's replies to it (its own number still to come).
    after: Message,
    /// Its event, encoded up to its numbers.
    event: OutboxEvent,
}

/// The replies of a group whose roots this process knows, and those roots.
struct Group {
    /// The replies, in the order they queued.
    jobs: Vec<CreateJob>,
    /// Their roots, in (thread, id) order: the order they are locked and numbered in.
    roots: Vec<Root>,
}

impl Group {
    /// The group of `jobs` whose roots are known live roots, if at least two are; the
    /// others, to go alone.
    fn of(store: &PostgresStore, jobs: Vec<CreateJob>) -> (Option<Group>, Vec<CreateJob>) {
        let mut roots: HashMap<(ThreadId, MessageId), Message> = HashMap::new();
        let mut known = Vec::with_capacity(jobs.len());
        let mut apart = Vec::new();
        for job in jobs {
            let message = job.message();
            let root = message.root_id.and_then(|id| {
                let key = (message.thread_id, id);
                if roots.contains_key(&key) {
                    return Some(key);
                }
                let root = store.recent.get(message.thread_id, id)?;
                (root.reply_to.is_none()).then(|| {
                    roots.insert(key, root);
                    key
                })
            });
            match root {
                Some(key) => known.push((job, key)),
                None => apart.push(job),
            }
        }
        if known.len() < 2 {
            apart.extend(known.into_iter().map(|(job, _)| job));
            return (None, apart);
        }
        // Each root's summary after the replies to it, in the order they queued.
        let revs: HashMap<(ThreadId, MessageId), i64> =
            roots.iter().map(|(key, root)| (*key, root.rev)).collect();
        let mut jobs = Vec::with_capacity(known.len());
        for (job, key) in known {
            if let Some(root) = roots.get_mut(&key) {
                let summary = replies::after_reply(
                    root.replies.as_deref(),
                    job.message(),
                    job.request.participants,
                );
                root.replies = Some(Box::new(summary));
            }
            jobs.push(job);
        }
        let mut roots: Vec<Root> = roots
            .into_iter()
            .map(|(key, mut after)| {
                let summary = after.replies.take().map(|s| *s);
                let at = summary
                    .as_ref()
                    .map_or(after.created_at, |s| s.last_reply_at);
                let event = replies::renumber_root(&mut after, summary, 0, at);
                Root {
                    rev: revs.get(&key).copied().unwrap_or(0),
                    after,
                    event,
                }
            })
            .collect();
        roots.sort_by_key(|root| (root.after.thread_id, root.after.id));
        (Some(Group { jobs, roots }), apart)
    }

    /// Numbers and answers each reply from its thread's head after the group: a thread's
    /// replies took its numbers first, in the order they queued, its roots the last ones.
    fn answer(self, store: &PostgresStore, heads: &HashMap<ThreadId, i64>) {
        let mut replies: HashMap<ThreadId, i64> = HashMap::new();
        let mut roots: HashMap<ThreadId, i64> = HashMap::new();
        for job in &self.jobs {
            *replies.entry(job.message().thread_id).or_default() += 1;
        }
        for root in &self.roots {
            *roots.entry(root.after.thread_id).or_default() += 1;
        }
        let first = |thread: &ThreadId, taken: i64| heads.get(thread).map(|head| head - taken + 1);
        let mut next_reply: HashMap<ThreadId, Option<i64>> = replies
            .iter()
            .map(|(thread, n)| (*thread, first(thread, n + roots.get(thread).unwrap_or(&0))))
            .collect();
        let mut next_root: HashMap<ThreadId, Option<i64>> = roots
            .iter()
            .map(|(thread, n)| (*thread, first(thread, *n)))
            .collect();
        let mut after: HashMap<MessageId, Message> = HashMap::with_capacity(self.roots.len());
        for mut root in self.roots {
            if let Some(Some(rev)) = next_root.get_mut(&root.after.thread_id) {
                root.after.rev = *rev;
                *rev += 1;
                store.recent.remember(&root.after);
            }
            after.insert(root.after.id, root.after);
        }
        for job in self.jobs {
            let mut reply = job.request.message;
            let numbered = next_reply
                .get_mut(&reply.thread_id)
                .and_then(Option::as_mut);
            let root = reply.root_id.and_then(|id| after.get(&id));
            let (Some(seq), Some(root)) = (numbered, root) else {
                // The statement bumps every thread of its group; a missing head is a bug.
                let error = Error::internal("create reply", "a thread's head is missing");
                let _ = job.reply.send(Err(error));
                continue;
            };
            reply.seq = *seq;
            reply.rev = *seq;
            *seq += 1;
            store.recent.remember(&reply);
            let root = Box::new(root.clone());
            let _ = job.reply.send(Ok(Created::Reply { reply, root }));
        }
    }
}

/// The group's statement: each of its threads' head after it, or `None` when it wrote
/// nothing (a root moved or a target went).
async fn write(store: &PostgresStore, group: &Group) -> Result<Option<HashMap<ThreadId, i64>>> {
    let client = store.client().await?;
    let stmt = client
        .prepare_cached(REPLY_GROUP)
        .await
        .map_err(db("prepare"))?;
    let messages: Vec<&Message> = group.jobs.iter().map(CreateJob::message).collect();
    let columns = GroupColumns::of(&group.jobs);
    let targets: Vec<Option<&uuid::Uuid>> = messages
        .iter()
        .map(|m| m.reply_to.as_ref().map(MessageId::as_uuid))
        .collect();
    let root_ids: Vec<Option<&uuid::Uuid>> = messages
        .iter()
        .map(|m| m.root_id.as_ref().map(MessageId::as_uuid))
        .collect();

    let roots = &group.roots;
    let root_threads: Vec<&uuid::Uuid> =
        roots.iter().map(|r| r.after.thread_id.as_uuid()).collect();
    let root_keys: Vec<&uuid::Uuid> = roots.iter().map(|r| r.after.id.as_uuid()).collect();
    let root_revs: Vec<i64> = roots.iter().map(|r| r.rev).collect();
    let mut counts = Vec::with_capacity(roots.len());
    let mut last_at = Vec::with_capacity(roots.len());
    let mut last_ids = Vec::with_capacity(roots.len());
    let mut participants = Vec::with_capacity(roots.len());
    for root in roots {
        let (count, at, last, users) = summary_columns(root.after.replies.as_deref());
        counts.push(count);
        last_at.push(at);
        last_ids.push(last);
        participants
            .push(serde_json::to_string(&users).expect("a list of ids always serialises to JSON"));
    }
    let root_events: Vec<&uuid::Uuid> = roots.iter().map(|r| &r.event.id).collect();
    let root_payloads: Vec<&[u8]> = roots
        .iter()
        .map(|r| r.event.open_payload.as_slice())
        .collect();
    let authors: Vec<&uuid::Uuid> = roots.iter().map(|r| r.after.user_id.as_uuid()).collect();

    let rows = client
        .query(
            &stmt,
            &columns.params(&[
                &targets,
                &root_ids,
                &root_threads,
                &root_keys,
                &root_revs,
                &counts,
                &last_at,
                &last_ids,
                &participants,
                &root_events,
                &root_payloads,
                &authors,
                &replies::REPLIES_UPDATED,
            ]),
        )
        .await;
    let rows = match rows {
        Ok(rows) => rows,
        Err(e)
            if super::idempotency::is_reused_key(&e) || classify(e.code()) == Failure::Refused =>
        {
            return Ok(None);
        }
        Err(e) => return Err(db("insert replies")(e)),
    };
    if rows.is_empty() {
        return Ok(None);
    }
    let mut heads = HashMap::with_capacity(rows.len());
    for row in rows {
        let thread: uuid::Uuid = row.try_get(0).map_err(decode)?;
        let head: i64 = row.try_get(1).map_err(decode)?;
        heads.insert(ThreadId::from_uuid(thread), head);
    }
    Ok(Some(heads))
}
