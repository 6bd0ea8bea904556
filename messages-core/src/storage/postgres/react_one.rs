//! One reaction change on PostgreSQL, outside a group: optimistic first (read, ask the rule,
//! write only if the message has not moved), then held, when the message keeps moving.

use deadpool_postgres::GenericClient;

use super::rows::message_from_row;
use super::{PostgresStore, db, decode};
use crate::error::{Error, Result};
use crate::message::{Emoji, Message, UserId};
use crate::reaction::{self, Plan, Reacted, ReactionChange, ReactionRequest};

/// A reaction, first step: the live message as it is. No lock: the second step applies only
/// if the message's `rev` is still the one read here.
const READ_FOR_REACTION: &str = r#"
SELECT thread_id, id, user_id, kind, content, paths, created_at, updated_at, seq, rev,
       reply_to, reactions, root_id, reply_count, last_reply_at, last_reply_id,
       reply_users, mentions
FROM messages
WHERE thread_id = $1 AND id = $2 AND deleted_at IS NULL
"#;

/// The first step read locked, inside a transaction, when optimism keeps losing: the
/// message's other changes wait until the reaction commits.
const READ_FOR_REACTION_LOCKED: &str = r#"
SELECT thread_id, id, user_id, kind, content, paths, created_at, updated_at, seq, rev,
       reply_to, reactions, root_id, reply_count, last_reply_at, last_reply_id,
       reply_users, mentions
FROM messages
WHERE thread_id = $1 AND id = $2 AND deleted_at IS NULL
FOR UPDATE
"#;

/// The earliest holder of an emoji that the summary does not list ($4). `position IS NOT
/// NULL` (always true) is the predicate of the partial index `reactions_by_position`, which
/// only a statement that states it may use.
const NEXT_HOLDER: &str = r#"
SELECT user_id FROM reactions
WHERE thread_id = $1 AND message_id = $2 AND emoji = $3 AND user_id <> ALL($4)
  AND position IS NOT NULL
ORDER BY position
LIMIT 1
"#;

/// A reaction, second step, one statement: if the live message is still at `rev` $3 (locked
/// now, so nothing changes it until the statement ends), add ($6 true) or remove the caller's
/// row, and when that changed it, bump the counter, write the summary $7 numbered with it and
/// the event. Answers one row: the new `rev` (NULL when nothing was written) and whether the
/// message was still live at $3. NULL and true: the caller's row was already as asked (every
/// reaction change moves `rev`, so the holders then are the holders now); false: the message
/// moved or was deleted since the first step. Whether the caller holds the reaction is learnt
/// here, from the insert's conflict or the delete's count, both on the primary key, rather than
/// by a lookup whose plan the statistics of a young table could turn into a scan.
const REACT: &str = r#"
WITH cur AS (
    SELECT seq FROM messages
    WHERE thread_id = $1 AND id = $2 AND deleted_at IS NULL AND rev = $3
    FOR UPDATE
), added AS (
    INSERT INTO reactions (thread_id, message_id, emoji, user_id)
    SELECT $1, $2, $4, $5 FROM cur WHERE $6
    ON CONFLICT DO NOTHING RETURNING 1
), removed AS (
    DELETE FROM reactions
    WHERE thread_id = $1 AND message_id = $2 AND emoji = $4 AND user_id = $5 AND NOT $6
      AND EXISTS (SELECT 1 FROM cur)
    RETURNING 1
), bump AS (
    INSERT INTO threads AS t (thread_id, head)
    SELECT $1, 1 WHERE EXISTS (SELECT 1 FROM added) OR EXISTS (SELECT 1 FROM removed)
    ON CONFLICT (thread_id) DO UPDATE SET head = t.head + 1
    RETURNING head
), upd AS (
    UPDATE messages m SET reactions = $7, rev = bump.head FROM bump
    WHERE m.thread_id = $1 AND m.id = $2 RETURNING m.seq, m.rev
), ob AS (
    INSERT INTO outbox (id, kind, thread_id, time, payload, message_seq, rev)
    SELECT $8, $9, $1, $10, $11, seq, rev FROM upd
) SELECT (SELECT rev FROM upd), EXISTS (SELECT 1 FROM cur)
"#;

/// The live message `id` of `thread`, read locked by `client`'s transaction (its other changes
/// wait until that transaction ends); `None` when the thread holds no live message by that id.
pub(super) async fn read_locked<C: GenericClient + Sync>(
    client: &C,
    thread: crate::message::ThreadId,
    id: crate::message::MessageId,
) -> Result<Option<Message>> {
    let locked = client
        .prepare_cached(READ_FOR_REACTION_LOCKED)
        .await
        .map_err(db("prepare"))?;
    client
        .query_opt(&locked, &[thread.as_uuid(), id.as_uuid()])
        .await
        .map_err(db("read locked"))?
        .map(|row| message_from_row(&row, 0))
        .transpose()
}

/// What a reaction attempt came to.
pub(super) enum Attempt {
    /// Written (the new state, to remember once committed), or already as asked.
    Done(Box<Reacted>),
    /// The message moved since it was read; nothing written.
    Moved,
}

/// How many times a reaction tries optimistically before it holds the message instead: an
/// attempt loses only to another change of the same message that committed meanwhile, which
/// on a message many people react to at once is most attempts.
const OPTIMISTIC_ATTEMPTS: usize = 3;

/// One reaction attempt on `message` as read at its `rev` (`read_now`: just read, not the state
/// this process kept). Whether the user holds the reaction is known here only when the summary
/// tells (it lists them, or no one holds the emoji); otherwise the change is planned as made
/// and `REACT` learns from the rows whether it was, writing nothing when it was not.
pub(super) async fn try_react<C: GenericClient + Sync>(
    client: &C,
    statements: &ReactionStatements,
    request: &ReactionRequest,
    mut message: Message,
    read_now: bool,
) -> Result<Attempt> {
    let adding = request.change == ReactionChange::Add;
    let by_summary = reaction::holds_by_summary(&message.reactions, request);
    if !read_now && by_summary == Some(true) {
        // The state kept says the caller holds it: trust only what is read.
        return Ok(Attempt::Moved);
    }
    if read_now && by_summary == Some(adding) {
        // Already as asked, by the summary just read.
        return Ok(Attempt::Done(Box::new(Reacted {
            message,
            changed: false,
        })));
    }
    let next = if reaction::needs_next_holder(&message.reactions, request) {
        next_holder(client, &statements.next_holder, &message, &request.emoji).await?
    } else {
        None
    };
    let Plan::Changed { summary, event, .. } =
        reaction::plan(&message.reactions, !adding, next, request)?
    else {
        return Ok(Attempt::Done(Box::new(Reacted {
            message,
            changed: false,
        })));
    };
    let row = client
        .query_one(
            &statements.react,
            &[
                request.thread.as_uuid(),
                request.id.as_uuid(),
                &message.rev,
                &request.emoji.as_str(),
                request.user.as_uuid(),
                &adding,
                &reaction::summary_to_json(&summary),
                &event.id,
                &event.kind,
                &event.time.to_datetime(),
                &event.open_payload,
            ],
        )
        .await
        .map_err(db("react"))?;
    let rev: Option<i64> = row.try_get(0).map_err(decode)?;
    let unmoved: bool = row.try_get(1).map_err(decode)?;
    Ok(match rev {
        Some(rev) => {
            message.reactions = summary;
            message.rev = rev;
            Attempt::Done(Box::new(Reacted {
                message,
                changed: true,
            }))
        }
        // The caller's row was already as asked (the summary lists only some holders).
        None if unmoved && read_now => Attempt::Done(Box::new(Reacted {
            message,
            changed: false,
        })),
        None => Attempt::Moved,
    })
}

/// Optimistic first: read the message, work out the summary here, then apply it in one
/// statement only if the message has not moved since (see `REACT`); when it has, read
/// again. Two round trips and no lock held between them, so reactions of different
/// messages never wait for each other. A message that keeps moving (many people reacting
/// at once) is then read locked, in a transaction, so the reaction cannot lose again.
pub(super) async fn react_alone(
    store: &PostgresStore,
    request: ReactionRequest,
) -> Result<Reacted> {
    let (thread, id) = (request.thread, request.id);
    let mut client = store.client().await?;
    let read = client
        .prepare_cached(READ_FOR_REACTION)
        .await
        .map_err(db("prepare"))?;
    let statements = ReactionStatements::prepare(&client).await?;
    // A reaction added to a message this process wrote last: try it on that state
    // first, one round trip when no one changed the message since.
    let mut kept = match request.change {
        ReactionChange::Add => store.recent.get(thread, id),
        ReactionChange::Remove => None,
    };
    for _ in 0..OPTIMISTIC_ATTEMPTS {
        let (message, read_now) = match kept.take() {
            Some(message) => (message, false),
            None => {
                let row = client
                    .query_opt(&read, &[thread.as_uuid(), id.as_uuid()])
                    .await
                    .map_err(db("react"))?
                    .ok_or(Error::NotFound)?;
                (message_from_row(&row, 0)?, true)
            }
        };
        let attempt = try_react(&client, &statements, &request, message, read_now).await?;
        if let Attempt::Done(reacted) = attempt {
            if reacted.changed {
                store.recent.remember(&reacted.message);
            }
            return Ok(*reacted);
        }
    }
    let tx = client.transaction().await.map_err(db("begin"))?;
    let message = read_locked(&tx, thread, id).await?.ok_or(Error::NotFound)?;
    match try_react(&tx, &statements, &request, message, true).await? {
        Attempt::Done(reacted) => {
            tx.commit().await.map_err(db("commit"))?;
            if reacted.changed {
                store.recent.remember(&reacted.message);
            }
            Ok(*reacted)
        }
        Attempt::Moved => Err(Error::internal(
            "react",
            "a message held by this transaction moved",
        )),
    }
}

/// The statements of a reaction, prepared on its connection.
pub(super) struct ReactionStatements {
    react: tokio_postgres::Statement,
    next_holder: tokio_postgres::Statement,
}

impl ReactionStatements {
    /// Prepares them on `client` (once per connection: the statements are cached).
    pub(super) async fn prepare(client: &deadpool_postgres::Object) -> Result<Self> {
        Ok(ReactionStatements {
            react: client.prepare_cached(REACT).await.map_err(db("prepare"))?,
            next_holder: client
                .prepare_cached(NEXT_HOLDER)
                .await
                .map_err(db("prepare"))?,
        })
    }
}

/// The earliest holder of `emoji` on `message` that its summary does not list.
async fn next_holder<C: GenericClient + Sync>(
    client: &C,
    statement: &tokio_postgres::Statement,
    message: &Message,
    emoji: &Emoji,
) -> Result<Option<UserId>> {
    let shown: Vec<uuid::Uuid> = reaction::shown(&message.reactions, emoji)
        .iter()
        .map(|u| *u.as_uuid())
        .collect();
    client
        .query_opt(
            statement,
            &[
                message.thread_id.as_uuid(),
                message.id.as_uuid(),
                &emoji.as_str(),
                &shown,
            ],
        )
        .await
        .map_err(db("react"))?
        .map(|row| row.try_get(0).map(UserId::from_uuid))
        .transpose()
        .map_err(decode)
}
