//! A reply on PostgreSQL written alone: the reply and its root's new summary written by one
//! statement (the reply takes N, the root N+1), first on the root as last known, else in a
//! transaction that locks it (see `insert_reply`). Replies that queue together are
//! `reply_group`'s. Locks follow the order every write of a thread takes (see
//! `replies`).

use deadpool_postgres::GenericClient;

use super::replies::{lock_root, summary_columns};
use super::rows::{mentions_column, message_from_row};
use super::{PostgresStore, db, decode};
use crate::error::{Error, Result};
use crate::events::codec;
use crate::message::{Message, MessageId, ThreadId};
use crate::replies;
use crate::write::{CreateRequest, Created};

/// A live message, read as it is (a reply's target: its `root_id` never changes).
const LIVE: &str = r#"
SELECT thread_id, id, user_id, kind, content, paths, created_at, updated_at, seq, rev,
       reply_to, reactions, root_id, reply_count, last_reply_at, last_reply_id, reply_users, mentions
FROM messages
WHERE thread_id = $1 AND id = $2 AND deleted_at IS NULL
"#;

/// A live message $2 and, when it is a reply, its root, both as they are (no lock): a reply's
/// target and root as a reply tried without a transaction reads them.
const TARGET_AND_ROOT: &str = r#"
SELECT thread_id, id, user_id, kind, content, paths, created_at, updated_at, seq, rev,
       reply_to, reactions, root_id, reply_count, last_reply_at, last_reply_id, reply_users, mentions
FROM messages
WHERE thread_id = $1 AND deleted_at IS NULL
  AND id IN ($2, (SELECT root_id FROM messages WHERE thread_id = $1 AND id = $2))
"#;

/// A reply's target that is not its root, kept live until the reply commits.
const HOLD_TARGET: &str = r#"
SELECT 1 FROM messages WHERE thread_id = $1 AND id = $2 AND deleted_at IS NULL FOR SHARE
"#;

/// One statement: the thread's counter bumped by $20 (1, or 2 when the root $15 is live),
/// the reply numbered first with its author's read position, then the root's summary ($16
/// replies, $17 participants; the reply is its last) numbered last; their events ($10-$13,
/// $18-$19, of kind $24) written in that order, so the outbox holds them in the order of their numbers.
/// With a live root, the replier follows it with the reply read, and its author ($22, when
/// another user) follows unless they chose not to.
///
/// Written only while the root $15 is live at `rev` $23 (locked for update) and the target
/// $14 is live (held for share): otherwise the statement writes nothing and answers no row,
/// and the caller reads again. So a reply can be tried on the state last known, without a
/// transaction of its own.
const INSERT_REPLY: &str = r#"
WITH root_held AS (
    SELECT 1 FROM messages
    WHERE thread_id = $1 AND id = $15 AND rev = $23 AND deleted_at IS NULL AND reply_to IS NULL
    FOR UPDATE
), target_held AS (
    SELECT 1 FROM messages WHERE thread_id = $1 AND id = $14 AND deleted_at IS NULL FOR SHARE
), bump AS (
    INSERT INTO threads AS t (thread_id, head)
    SELECT $1, $20
    WHERE ($15::uuid IS NULL OR EXISTS (SELECT 1 FROM root_held))
      AND EXISTS (SELECT 1 FROM target_held)
    ON CONFLICT (thread_id) DO UPDATE SET head = t.head + excluded.head
    RETURNING head
), ins AS (
    INSERT INTO messages (thread_id, id, user_id, kind, content, paths, created_at,
                          updated_at, idempotency_key, request_hash, seq, rev, reply_to, root_id,
                          mentions)
    SELECT $1, $2, $3, $4, $5, $6, $7, $7, $8, $9, head - $20 + 1, head - $20 + 1, $14, $21, $25
    FROM bump
    RETURNING seq
), seen AS (
    INSERT INTO read_positions AS r (thread_id, user_id, seq) SELECT $1, $3, seq FROM ins
    ON CONFLICT (thread_id, user_id) DO UPDATE SET seq = GREATEST(r.seq, excluded.seq)
), root AS (
    UPDATE messages m
    SET reply_count = $16, last_reply_at = $7, last_reply_id = $2, reply_users = $17,
        rev = bump.head
    FROM bump
    WHERE $15::uuid IS NOT NULL AND m.thread_id = $1 AND m.id = $15
    RETURNING m.seq, m.rev
), replier AS (
    INSERT INTO reply_follows AS f (thread_id, root_id, user_id, following, seq)
    SELECT $1, $15, $3, true, seq FROM ins WHERE $15::uuid IS NOT NULL
    ON CONFLICT (thread_id, root_id, user_id) DO UPDATE
    SET following = true, seq = GREATEST(f.seq, excluded.seq)
), filed AS (
    INSERT INTO mentions (thread_id, user_id, seq, author, id)
    SELECT $1, k, seq, $3, $2 FROM ins, unnest($26::uuid[]) k
), root_author AS (
    INSERT INTO reply_follows (thread_id, root_id, user_id, following, seq)
    SELECT $1, $15, $22, true, 0 FROM ins WHERE $15::uuid IS NOT NULL AND $22::uuid IS NOT NULL
    ON CONFLICT (thread_id, root_id, user_id) DO NOTHING
), ob AS (
    INSERT INTO outbox (id, kind, thread_id, time, payload, message_seq, rev)
    SELECT * FROM (
        SELECT $10::uuid, $11::text, $1::uuid, $12::timestamptz, $13::bytea, seq, seq FROM ins
        UNION ALL
        SELECT $18, $24::text, $1, $7, $19, seq, rev FROM root
    ) e ORDER BY 7
) SELECT seq FROM ins
"#;

/// A live message of the thread, read as it is.
async fn live<C: GenericClient + Sync>(
    client: &C,
    thread: ThreadId,
    id: MessageId,
) -> Result<Option<Message>> {
    let stmt = client.prepare_cached(LIVE).await.map_err(db("prepare"))?;
    client
        .query_opt(&stmt, &[thread.as_uuid(), id.as_uuid()])
        .await
        .map_err(db("read message"))?
        .map(|row| message_from_row(&row, 0))
        .transpose()
}

/// How many times a reply is tried on the state last known before it takes its locks.
const OPTIMISTIC_ATTEMPTS: usize = 2;

/// A reply. First tried as one statement on the target and root as last known (this
/// process wrote them last) or as read without a lock: written if the root has not moved
/// since, one round trip and one commit. When the root keeps moving (others reply to it at
/// the same moment) or is not live, a transaction reads the target, locks the root and
/// writes with the same statement; run again when the database ends it to break a deadlock.
///
/// A key used before is answered first, before the target is looked at: a retried reply
/// whose target was removed since is answered with the reply it made, not refused.
pub(super) async fn insert_reply(
    store: &PostgresStore,
    request: &CreateRequest,
) -> Result<Created> {
    let client = store.client().await?;
    if let Some(idem) = &request.idempotency {
        let used = super::idempotency::replay_if_used(&client, &request.message, idem).await?;
        if let Some(replayed) = used {
            return Ok(replayed);
        }
    }
    if let Some(created) = reply_unlocked(store, &client, request).await? {
        return Ok(created);
    }
    drop(client);
    super::rerun_lost_races("create reply", || write_reply(store, request)).await
}

/// The reply tried on the last known state; `None` when the root moved each time or is not
/// live (the caller then takes the locks).
async fn reply_unlocked(
    store: &PostgresStore,
    client: &deadpool_postgres::Object,
    request: &CreateRequest,
) -> Result<Option<Created>> {
    let thread = request.message.thread_id;
    let target_id = request.message.reply_to.ok_or(Error::InvalidReplyTo)?;
    let mut known = store.recent.get(thread, target_id).and_then(|target| {
        let root_id = replies::root_of(&target);
        let root = match root_id == target.id {
            true => target.clone(),
            false => store.recent.get(thread, root_id)?,
        };
        Some((target, root))
    });
    for _ in 0..OPTIMISTIC_ATTEMPTS {
        let (target, root) = match known.take() {
            Some(known) => known,
            None => match target_and_root(client, thread, target_id).await? {
                (None, _) => return Err(Error::InvalidReplyTo),
                (Some(_), None) => return Ok(None),
                (Some(target), Some(root)) => (target, root),
            },
        };
        if root.reply_to.is_some() {
            return Ok(None);
        }
        match write(client, request, &target, Some(root)).await {
            Ok(Written::Reply(created)) => {
                remember(store, &created);
                return Ok(Some(*created));
            }
            Ok(Written::Nothing) => continue,
            Ok(Written::KeyUsed) => return replay_reused(client, request).await.map(Some),
            // Ended to break a deadlock (see the module's head): nothing stands; read again.
            Err(error) if super::lost_a_race(&error) => continue,
            Err(error) => return Err(error),
        }
    }
    Ok(None)
}

/// The live target `id` and its live root (the target itself when it is a root), as they
/// are; `(None, _)` when the target is not live, `(Some, None)` when its root is not.
async fn target_and_root(
    client: &deadpool_postgres::Object,
    thread: ThreadId,
    id: MessageId,
) -> Result<(Option<Message>, Option<Message>)> {
    let stmt = client
        .prepare_cached(TARGET_AND_ROOT)
        .await
        .map_err(db("prepare"))?;
    let rows = client
        .query(&stmt, &[thread.as_uuid(), id.as_uuid()])
        .await
        .map_err(db("read reply target"))?;
    let mut read = Vec::with_capacity(rows.len());
    for row in &rows {
        read.push(message_from_row(row, 0)?);
    }
    let Some(target) = read.iter().find(|m| m.id == id).cloned() else {
        return Ok((None, None));
    };
    let root_id = replies::root_of(&target);
    let root = read.into_iter().find(|m| m.id == root_id);
    Ok((Some(target), root))
}

/// One try of a reply's transaction: the target read, the root locked, then the statement.
async fn write_reply(store: &PostgresStore, request: &CreateRequest) -> Result<Created> {
    let thread = request.message.thread_id;
    let target_id = request.message.reply_to.ok_or(Error::InvalidReplyTo)?;
    let mut client = store.client().await?;
    let tx = client.transaction().await.map_err(db("begin"))?;
    let target = live(&tx, thread, target_id)
        .await?
        .ok_or(Error::InvalidReplyTo)?;
    let root_id = replies::root_of(&target);
    let root = lock_root(&tx, thread, root_id).await?;
    if root_id != target.id {
        let hold = tx
            .prepare_cached(HOLD_TARGET)
            .await
            .map_err(db("prepare"))?;
        tx.query_opt(&hold, &[thread.as_uuid(), target.id.as_uuid()])
            .await
            .map_err(db("hold reply target"))?
            .ok_or(Error::InvalidReplyTo)?;
    } else if root.is_none() {
        // The target went between the read and the lock.
        return Err(Error::InvalidReplyTo);
    }
    match write(&tx, request, &target, root).await? {
        Written::Reply(created) => {
            tx.commit().await.map_err(db("commit"))?;
            remember(store, &created);
            Ok(*created)
        }
        Written::Nothing => Err(Error::internal(
            "create reply",
            "a root and target held by this transaction moved",
        )),
        Written::KeyUsed => {
            drop(tx);
            replay_reused(&client, request).await
        }
    }
}

/// What the reply statement did.
enum Written {
    /// The reply, and its root in its new state when the root is live.
    Reply(Box<Created>),
    /// Nothing: the root moved since `root` was read, or the target went.
    Nothing,
    /// Nothing: the request's idempotency key was used by another message.
    KeyUsed,
}

/// Writes the reply on `target` and `root` (its live root, as read; `None` when the root is
/// not live) with one statement.
async fn write<C: GenericClient + Sync>(
    client: &C,
    request: &CreateRequest,
    target: &Message,
    root: Option<Message>,
) -> Result<Written> {
    let CreateRequest {
        message,
        idempotency,
        participants,
    } = request;
    let thread = message.thread_id;
    let root_id = replies::root_of(target);
    let mut reply = message.clone();
    reply.root_id = Some(root_id);
    let event = codec::created(&reply);
    let mut root = root;
    let root_rev = root.as_ref().map_or(0, |r| r.rev);
    let root_event = root.as_mut().map(|root| {
        let summary = replies::after_reply(root.replies.as_deref(), &reply, *participants);
        replies::renumber_root(root, Some(summary), 0, reply.created_at)
    });
    let (count, _, _, users) = summary_columns(root.as_ref().and_then(|r| r.replies.as_deref()));
    let changes: i64 = if root.is_some() { 2 } else { 1 };
    let key = idempotency.as_ref().map(|i| i.key.as_str());
    let hash = idempotency
        .as_ref()
        .map(|i| i.fingerprint.as_bytes().to_vec());
    let stmt = client
        .prepare_cached(INSERT_REPLY)
        .await
        .map_err(db("prepare"))?;
    let root_key = root.as_ref().map(|r| *r.id.as_uuid());
    let root_author = root
        .as_ref()
        .map(|r| *r.user_id.as_uuid())
        .filter(|author| author != reply.user_id.as_uuid());
    let (root_event_id, root_payload) = match &root_event {
        Some(e) => (Some(e.id), Some(e.open_payload.as_slice())),
        None => (None, None),
    };
    let written = client
        .query_opt(
            &stmt,
            &[
                thread.as_uuid(),
                reply.id.as_uuid(),
                reply.user_id.as_uuid(),
                &reply.kind.as_str(),
                &reply.content,
                &reply.paths,
                &reply.created_at.to_datetime(),
                &key,
                &hash,
                &event.id,
                &event.kind,
                &event.time.to_datetime(),
                &event.open_payload,
                target.id.as_uuid(),
                &root_key,
                &count,
                &users,
                &root_event_id,
                &root_payload,
                &changes,
                root_id.as_uuid(),
                &root_author,
                &root_rev,
                &replies::REPLIES_UPDATED,
                &mentions_column(reply.mentions.as_ref()),
                &crate::message::Mentions::keys(reply.mentions.as_ref()),
            ],
        )
        .await;
    let seq: i64 = match written {
        Ok(Some(row)) => row.try_get(0).map_err(decode)?,
        Ok(None) => return Ok(Written::Nothing),
        Err(e) if super::idempotency::is_reused_key(&e) => return Ok(Written::KeyUsed),
        Err(e) => return Err(db("insert reply")(e)),
    };
    reply.seq = seq;
    reply.rev = seq;
    Ok(Written::Reply(Box::new(match root {
        Some(mut root) => {
            root.rev = seq + 1;
            Created::Reply {
                reply,
                root: Box::new(root),
            }
        }
        None => Created::New(reply),
    })))
}

/// What a reply whose key another message took answers: that message, or the conflict.
async fn replay_reused(
    client: &deadpool_postgres::Object,
    request: &CreateRequest,
) -> Result<Created> {
    let idem = request
        .idempotency
        .as_ref()
        .ok_or_else(|| Error::internal("create reply", "a key conflict without a key"))?;
    super::idempotency::replay_if_used(client, &request.message, idem)
        .await?
        .ok_or_else(|| Error::internal("create reply", "a reused key found no message"))
}

/// Keeps what a reply wrote for the next write of the same messages.
fn remember(store: &PostgresStore, created: &Created) {
    match created {
        Created::Reply { reply, root } => {
            store.recent.remember(reply);
            store.recent.remember(root);
        }
        Created::New(reply) => store.recent.remember(reply),
        Created::Replayed(_) => {}
    }
}
