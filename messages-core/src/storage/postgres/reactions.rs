//! Reaction changes queued per message, so a storm on one popular message commits a group at a
//! time.
//!
//! Alone, a reaction is optimistic (see `react_alone`): read, work the summary out, write only
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
use tokio::sync::oneshot;
use tokio_postgres::types::{ToSql, Type};

use super::batch::{self, Queued, Queues};
use super::messages::{Attempt, ReactionStatements};
use super::sql::{HOLDINGS, REACT_GROUP, READ_FOR_REACTION_LOCKED, REMOVE_HELD};
use super::{PostgresStore, db, decode, message_from_row};
use crate::error::{Error, Result};
use crate::message::Reaction;
use crate::message::{Message, MessageId, ThreadId};
use crate::reaction::{self, Reacted, ReactionChange, ReactionEvent};
use crate::storage::{OutboxEvent, ReactionEventBuilder, ReactionRequest};

/// One reaction change waiting for its group.
pub(super) struct ReactionJob {
    request: ReactionRequest,
    event: ReactionEventBuilder,
    reply: oneshot::Sender<Result<Reacted>>,
}

impl Queued for ReactionJob {
    fn gone(&self) -> bool {
        self.reply.is_closed()
    }
}

/// What a change of a group came to, worked out before it is written: the summary after it,
/// how many changes of the group came up to it (itself included), and whether it was one.
type Outcome = (Vec<Reaction>, i64, bool);

/// The reaction changes waiting, per message.
pub(super) type Reactions = Queues<(ThreadId, MessageId), ReactionJob>;

impl PostgresStore {
    /// Queues a reaction change on its message and waits for its answer.
    pub(super) async fn queue_reaction(
        &self,
        request: ReactionRequest,
        event: ReactionEventBuilder,
    ) -> Result<Reacted> {
        let key = (request.thread, request.id);
        let (reply, outcome) = oneshot::channel();
        let job = ReactionJob {
            request,
            event,
            reply,
        };
        if self.reactions.push(key, job) {
            let store = self.clone();
            tokio::spawn(async move {
                let reactions = std::sync::Arc::clone(&store.reactions);
                batch::drain(&reactions, key, |jobs| store.react_group(jobs)).await;
            });
        }
        outcome
            .await
            .map_err(|_| Error::unavailable("react", "the group's task ended"))?
    }

    /// Applies a group of one message's reaction changes and answers each: alone when it is
    /// one; else in one transaction, or each alone when that transaction fails for anything
    /// but the database being unavailable (each then answers as it would alone).
    async fn react_group(&self, jobs: Vec<ReactionJob>) {
        if jobs.len() > 1 {
            let together = tokio::time::timeout(self.operation_timeout, self.react_together(&jobs))
                .await
                .unwrap_or_else(|_| Err(Error::unavailable("react", "timed out")));
            match together {
                Ok(answers) => {
                    for (job, answer) in jobs.into_iter().zip(answers) {
                        let _ = job.reply.send(answer);
                    }
                    return;
                }
                Err(error @ Error::Unavailable { .. }) => {
                    let error = std::sync::Arc::new(error);
                    for job in jobs {
                        let _ = job.reply.send(Err(Error::shared(&error)));
                    }
                    return;
                }
                Err(error) => {
                    tracing::warn!(%error, changes = jobs.len(), "a group of reactions failed; applying them one by one");
                }
            }
        }
        for job in jobs {
            let reacted = tokio::time::timeout(
                self.operation_timeout,
                self.react_alone(job.request, job.event),
            )
            .await
            .unwrap_or_else(|_| Err(Error::unavailable("react", "timed out")));
            let _ = job.reply.send(reacted);
        }
    }

    /// One transaction: the message read locked, each change applied to it in the order it
    /// queued (numbered, with its event), one commit. Answers each change; a change the
    /// message's bounds refuse answers its error and the others go on. `Err` when the
    /// transaction failed: nothing was written.
    async fn react_together(&self, jobs: &[ReactionJob]) -> Result<Vec<Result<Reacted>>> {
        let Some(first) = jobs.first() else {
            return Ok(Vec::new());
        };
        let (thread, id) = (first.request.thread, first.request.id);
        let mut client = self.client().await?;
        let locked = client
            .prepare_cached(READ_FOR_REACTION_LOCKED)
            .await
            .map_err(db("prepare"))?;
        let statements = ReactionStatements::prepare(&client).await?;
        let tx = client.transaction().await.map_err(db("begin"))?;
        let Some(row) = tx
            .query_opt(&locked, &[thread.as_uuid(), id.as_uuid()])
            .await
            .map_err(db("react"))?
        else {
            return Ok(jobs.iter().map(|_| Err(Error::NotFound)).collect());
        };
        let mut message = message_from_row(&row, 0)?;
        if let Some(answers) = self.react_in_one_statement(&tx, &message, jobs).await? {
            tx.commit().await.map_err(db("commit"))?;
            // The last change answered holds the message as the group left it.
            let changed = answers.iter().any(|a| matches!(a, Ok(r) if r.changed));
            if let Some(last) = answers.iter().rev().find_map(|a| a.as_ref().ok())
                && changed
            {
                self.recent.remember(&last.message);
            }
            return Ok(answers);
        }
        let mut changed = false;
        let mut answers = Vec::with_capacity(jobs.len());
        for job in jobs {
            let attempt = self
                .try_react(
                    &tx,
                    &statements,
                    &job.request,
                    message.clone(),
                    true,
                    job.event,
                )
                .await;
            match attempt {
                Ok(Attempt::Done(reacted)) => {
                    changed |= reacted.changed;
                    message = reacted.message.clone();
                    answers.push(Ok(reacted));
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
            self.recent.remember(&message);
        }
        Ok(answers)
    }

    /// The group worked out from the holdings read once, then written by `REACT_GROUP`; each
    /// change's answer. `None` when a change takes a listed holder's reaction away (the next
    /// holder must come from the table): nothing was written.
    async fn react_in_one_statement(
        &self,
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
            if adding == held.contains(&pair) {
                outcomes.push(Ok((summary.clone(), events.len() as i64, false)));
                continue;
            }
            let count = if adding {
                match reaction::add_to_summary(
                    &mut summary,
                    &request.emoji,
                    request.user,
                    &request.limits,
                ) {
                    Ok(count) => count,
                    Err(error) => {
                        outcomes.push(Err(error));
                        continue;
                    }
                }
            } else if reaction::listed(&summary, &request.emoji, request.user) {
                return Ok(None);
            } else {
                reaction::remove_from_summary(
                    &mut summary,
                    &request.emoji,
                    request.user,
                    None,
                    &request.limits,
                )
            };
            events.push((job.event)(
                &ReactionEvent {
                    message_id: id,
                    thread_id: thread,
                    user_id: request.user,
                    emoji: request.emoji.clone(),
                    count,
                    reacted_at: request.now,
                },
                request.change,
            ));
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
