//! A group of one message's reaction changes on PostgreSQL (see `react`), so a storm on one
//! popular message commits a group at a time.
//!
//! Alone, a reaction is optimistic (see `react_one`): read, work the summary out, write only
//! if the message has not moved. When many people react to one message at once, nearly every
//! attempt loses to another's commit, and the locked fallback commits one change at a time.
//! So changes queue per message: while one is in flight the others wait, and the next group
//! is applied in one transaction that holds the message from the start, each change numbered
//! in the order it queued, with its own event, then one commit. A message one person reacts to
//! at a time sees no difference: its group holds one change.
//!
//! In the transaction, which of the group's users hold their emoji is read once; every change
//! is then worked out here, in order (the summary after each, its count, its event), and
//! written by one statement. A group that takes a listed holder's reaction away needs the
//! next holder from the table after the changes before it, so it is applied a statement per
//! change instead, in the same transaction.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use tokio_postgres::types::{ToSql, Type};

use super::queue::ReactionJob;
use super::react_one::{Attempt, ReactionStatements, read_locked, try_react};
use super::{PostgresStore, db, decode};
use crate::error::{Error, Result};
use crate::message::{Message, Reaction};
use crate::reaction::{self, Plan, Reacted, ReactionChange};
use crate::storage::OutboxEvent;

/// Which of the (emoji $3, user $4) pairs of a group of reaction changes hold their reaction
/// now, on a message the transaction holds: one lookup on the primary key per pair. Run
/// unprepared (`query_typed`), so it is planned for the message at hand: a generic plan
/// estimates one reaction per message. (It once took the position index, reading every holder
/// of the emoji of a popular message for each pair; that index is now partial, see
/// `V7__reactions_by_position_partial.sql`.)
const HOLDINGS: &str = r#"
SELECT p.emoji, p.user_id
FROM unnest($3::text[], $4::uuid[]) AS p(emoji, user_id)
CROSS JOIN LATERAL (
    SELECT 1 FROM reactions r
    WHERE r.thread_id = $1 AND r.message_id = $2 AND r.emoji = p.emoji AND r.user_id = p.user_id
    LIMIT 1
) held
"#;

/// The reactions a group of changes takes away (emoji $3, user $4), of a message the
/// transaction holds; run unprepared, like `HOLDINGS`.
const REMOVE_HELD: &str = r#"
DELETE FROM reactions
WHERE ctid = ANY (ARRAY(
    SELECT found.ctid
    FROM unnest($3::text[], $4::uuid[]) AS d(emoji, user_id)
    CROSS JOIN LATERAL (
        SELECT r.ctid FROM reactions r
        WHERE r.thread_id = $1 AND r.message_id = $2
          AND r.emoji = d.emoji AND r.user_id = d.user_id
        LIMIT 1
    ) found
))
"#;

/// A group of reaction changes of one message the transaction holds (see `react`), worked
/// out beforehand, after `REMOVE_HELD` took away the reactions it removes: the rows it adds
/// ($3, $4, in the order of their last change), one bump by its number of changes ($5), the
/// summary after the last ($6), and one event per change ($7..$10), numbered in order up to
/// the new head. Answers the message's new `rev`.
const REACT_GROUP: &str = r#"
WITH added AS (
    INSERT INTO reactions (thread_id, message_id, emoji, user_id)
    SELECT $1, $2, a.emoji, a.user_id
    FROM unnest($3::text[], $4::uuid[]) WITH ORDINALITY AS a(emoji, user_id, n)
    ORDER BY a.n
), bump AS (
    INSERT INTO threads AS t (thread_id, head) SELECT $1, $5
    ON CONFLICT (thread_id) DO UPDATE SET head = t.head + $5
    RETURNING head
), upd AS (
    UPDATE messages m SET reactions = $6, rev = bump.head FROM bump
    WHERE m.thread_id = $1 AND m.id = $2 RETURNING m.seq, m.rev
), ob AS (
    INSERT INTO outbox (id, kind, thread_id, time, payload, message_seq, rev)
    SELECT e.id, e.kind, $1, e.time, e.payload, upd.seq, upd.rev - $5 + e.n
    FROM upd, unnest($7::uuid[], $8::text[], $9::timestamptz[], $10::bytea[])
         WITH ORDINALITY AS e(id, kind, time, payload, n)
    ORDER BY e.n
) SELECT rev FROM upd
"#;

/// What a change of a group came to, worked out before it is written: the summary after it,
/// how many changes of the group came up to it (itself included), and whether it was one.
type Outcome = (Vec<Reaction>, i64, bool);

/// One transaction: the message read locked, each change applied to it in the order it
/// queued (numbered, with its event), one commit. Answers each change; a change the
/// message's bounds refuse answers its error and the others go on. `Err` when the
/// transaction failed: nothing was written.
pub(super) async fn react_together(
    store: &PostgresStore,
    jobs: &[ReactionJob],
) -> Result<Vec<Result<Reacted>>> {
    let Some(first) = jobs.first() else {
        return Ok(Vec::new());
    };
    let (thread, id) = (first.request.thread, first.request.id);
    let mut client = store.client().await?;
    let statements = ReactionStatements::prepare(&client).await?;
    let tx = client.transaction().await.map_err(db("begin"))?;
    let Some(mut message) = read_locked(&tx, thread, id).await? else {
        return Ok(jobs.iter().map(|_| Err(Error::NotFound)).collect());
    };
    if let Some(answers) = react_in_one_statement(&tx, &message, jobs).await? {
        tx.commit().await.map_err(db("commit"))?;
        // The last change answered holds the message as the group left it.
        let changed = answers.iter().any(|a| matches!(a, Ok(r) if r.changed));
        if let Some(last) = answers.iter().rev().find_map(|a| a.as_ref().ok())
            && changed
        {
            store.recent.remember(&last.message);
        }
        return Ok(answers);
    }
    let mut changed = false;
    let mut answers = Vec::with_capacity(jobs.len());
    for job in jobs {
        let attempt = try_react(&tx, &statements, &job.request, message.clone(), true).await;
        match attempt {
            Ok(Attempt::Done(reacted)) => {
                changed |= reacted.changed;
                message = reacted.message.clone();
                answers.push(Ok(*reacted));
            }
            Ok(Attempt::Moved) => {
                return Err(Error::internal(
                    "react",
                    "a message held by this transaction moved",
                ));
            }
            // Refused before anything was written: the transaction goes on.
            Err(error @ Error::TooManyReactions { .. }) => answers.push(Err(error)),
            Err(error) => return Err(error),
        }
    }
    tx.commit().await.map_err(db("commit"))?;
    if changed {
        store.recent.remember(&message);
    }
    Ok(answers)
}

/// The group worked out from the holdings read once, then written by `REACT_GROUP`; each
/// change's answer. `None` when a change takes a listed holder's reaction away (the next
/// holder must come from the table): nothing was written.
async fn react_in_one_statement(
    tx: &deadpool_postgres::Transaction<'_>,
    message: &Message,
    jobs: &[ReactionJob],
) -> Result<Option<Vec<Result<Reacted>>>> {
    let (thread, id) = (message.thread_id, message.id);
    let emoji: Vec<&str> = jobs.iter().map(|j| j.request.emoji.as_str()).collect();
    let users: Vec<&uuid::Uuid> = jobs.iter().map(|j| j.request.user.as_uuid()).collect();
    let mut held = HashSet::new();
    for row in tx
        .query_typed(
            HOLDINGS,
            &pairs(thread.as_uuid(), id.as_uuid(), &emoji, &users),
        )
        .await
        .map_err(db("react"))?
    {
        let emoji: String = row.try_get(0).map_err(decode)?;
        let user: uuid::Uuid = row.try_get(1).map_err(decode)?;
        held.insert((emoji, user));
    }
    let before = held.clone();
    let mut summary = message.reactions.clone();
    let mut outcomes: Vec<Result<Outcome>> = Vec::with_capacity(jobs.len());
    let mut events: Vec<OutboxEvent> = Vec::new();
    // The index of the last change that added each pair, for the order of the new rows.
    let mut last_add: Vec<(usize, (String, uuid::Uuid))> = Vec::new();
    for job in jobs {
        let request = &job.request;
        let pair = (request.emoji.as_str().to_owned(), *request.user.as_uuid());
        let adding = request.change == ReactionChange::Add;
        let holds = held.contains(&pair);
        if holds && !adding && reaction::needs_next_holder(&summary, request) {
            // A listed holder leaves: the next holder must come from the table.
            return Ok(None);
        }
        let (after, event) = match reaction::plan(&summary, holds, None, request) {
            Ok(Plan::Changed { summary, event, .. }) => (summary, event),
            Ok(Plan::Unchanged) => {
                outcomes.push(Ok((summary.clone(), events.len() as i64, false)));
                continue;
            }
            Err(error) => {
                outcomes.push(Err(error));
                continue;
            }
        };
        summary = after;
        events.push(event);
        if adding {
            last_add.push((events.len(), pair.clone()));
            held.insert(pair);
        } else {
            held.remove(&pair);
        }
        outcomes.push(Ok((summary.clone(), events.len() as i64, true)));
    }
    let base = if events.is_empty() {
        message.rev
    } else {
        let mut added: Vec<&(String, uuid::Uuid)> = Vec::new();
        let mut seen = HashSet::new();
        for (_, pair) in last_add.iter().rev() {
            if held.contains(pair) && !before.contains(pair) && seen.insert(pair) {
                added.push(pair);
            }
        }
        added.reverse();
        let removed: Vec<&(String, uuid::Uuid)> = before.difference(&held).collect();
        if !removed.is_empty() {
            let emoji: Vec<&str> = removed.iter().map(|p| p.0.as_str()).collect();
            let users: Vec<&uuid::Uuid> = removed.iter().map(|p| &p.1).collect();
            tx.query_typed(
                REMOVE_HELD,
                &pairs(thread.as_uuid(), id.as_uuid(), &emoji, &users),
            )
            .await
            .map_err(db("react"))?;
        }
        let n = events.len() as i64;
        let statement = tx
            .prepare_cached(REACT_GROUP)
            .await
            .map_err(db("prepare"))?;
        let row = tx
            .query_one(
                &statement,
                &[
                    thread.as_uuid(),
                    id.as_uuid(),
                    &added.iter().map(|p| p.0.as_str()).collect::<Vec<_>>(),
                    &added.iter().map(|p| p.1).collect::<Vec<_>>(),
                    &n,
                    &reaction::summary_to_json(&summary),
                    &events.iter().map(|e| e.id).collect::<Vec<_>>(),
                    &events.iter().map(|e| e.kind).collect::<Vec<_>>(),
                    &events
                        .iter()
                        .map(|e| e.time.to_datetime())
                        .collect::<Vec<DateTime<Utc>>>(),
                    &events
                        .iter()
                        .map(|e| e.open_payload.as_slice())
                        .collect::<Vec<_>>(),
                ],
            )
            .await
            .map_err(db("react"))?;
        let head: i64 = row.try_get(0).map_err(decode)?;
        head - n
    };
    Ok(Some(
        outcomes
            .into_iter()
            .map(|outcome| {
                outcome.map(|(reactions, changes, changed)| Reacted {
                    message: Message {
                        reactions,
                        rev: if changes == 0 {
                            message.rev
                        } else {
                            base + changes
                        },
                        ..message.clone()
                    },
                    changed,
                })
            })
            .collect(),
    ))
}

/// The parameters of `HOLDINGS` and `REMOVE_HELD`, typed, for `query_typed`.
fn pairs<'a>(
    thread: &'a uuid::Uuid,
    id: &'a uuid::Uuid,
    emoji: &'a (dyn ToSql + Sync),
    users: &'a (dyn ToSql + Sync),
) -> [(&'a (dyn ToSql + Sync), Type); 4] {
    [
        (thread, Type::UUID),
        (id, Type::UUID),
        (emoji, Type::TEXT_ARRAY),
        (users, Type::UUID_ARRAY),
    ]
}
