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

use tokio::sync::oneshot;

use super::batch::{self, Queued, Queues};
use super::messages::{Attempt, ReactionStatements};
use super::sql::*;
use super::{PostgresStore, db, message_from_row};
use crate::error::{Error, Result};
use crate::message::{MessageId, ThreadId};
use crate::reaction::Reacted;
use crate::storage::{ReactionEventBuilder, ReactionRequest};

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
        let statements = ReactionStatements {
            react: client.prepare_cached(REACT).await.map_err(db("prepare"))?,
            next_holder: client
                .prepare_cached(NEXT_HOLDER)
                .await
                .map_err(db("prepare"))?,
        };
        let tx = client.transaction().await.map_err(db("begin"))?;
        let Some(row) = tx
            .query_opt(&locked, &[thread.as_uuid(), id.as_uuid()])
            .await
            .map_err(db("react"))?
        else {
            return Ok(jobs.iter().map(|_| Err(Error::NotFound)).collect());
        };
        let mut message = message_from_row(&row, 0)?;
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
}
