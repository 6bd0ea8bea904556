//! Reactions on PostgreSQL. Changes queue per message (`queue`): alone, a change is one
//! optimistic attempt or a few (`react_one`); many at once on one popular message, they commit
//! a group per transaction (`react_group`). Clearing is one short transaction; the page of
//! holders one statement.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::oneshot;

use super::queue::{self, ReactionJob};
use super::react_group::react_together;
use super::react_one::{react_alone, read_locked};
use super::{PostgresStore, db, decode};
use crate::error::{Error, Result};
use crate::message::{Emoji, MessageId, ThreadId, UserId};
use crate::reaction::{self, ClearRequest, Reacted, ReactionRequest, Reactors, ReactorsLimit};
use crate::storage::ReactionStore;

/// Every reaction of a message the transaction holds, cleared as one change: the holders'
/// rows deleted, the summary emptied and numbered, the event ($3..$6) written. Answers the new
/// `rev`.
const CLEAR_REACTIONS: &str = r#"
WITH gone AS (
    DELETE FROM reactions WHERE thread_id = $1 AND message_id = $2
), bump AS (
    INSERT INTO threads AS t (thread_id, head) VALUES ($1, 1)
    ON CONFLICT (thread_id) DO UPDATE SET head = t.head + 1
    RETURNING head
), upd AS (
    UPDATE messages m SET reactions = '[]', rev = bump.head FROM bump
    WHERE m.thread_id = $1 AND m.id = $2 RETURNING m.seq, m.rev
), ob AS (
    INSERT INTO outbox (id, kind, thread_id, time, payload, message_seq, rev)
    SELECT $3, $4, $1, $5, $6, seq, rev FROM upd
) SELECT rev FROM upd
"#;

/// The holders of an emoji, by id, at most $4, beside the message's summary; no row for a
/// message that is not live.
const REACTORS_FIRST: &str = r#"
SELECT m.reactions, r.user_id
FROM messages m
LEFT JOIN LATERAL (
    SELECT user_id FROM reactions
    WHERE thread_id = $1 AND message_id = $2 AND emoji = $3
    ORDER BY user_id
    LIMIT $4
) r ON true
WHERE m.thread_id = $1 AND m.id = $2 AND m.deleted_at IS NULL
"#;

/// The same after a user id ($5).
const REACTORS_AFTER: &str = r#"
SELECT m.reactions, r.user_id
FROM messages m
LEFT JOIN LATERAL (
    SELECT user_id FROM reactions
    WHERE thread_id = $1 AND message_id = $2 AND emoji = $3 AND user_id > $5
    ORDER BY user_id
    LIMIT $4
) r ON true
WHERE m.thread_id = $1 AND m.id = $2 AND m.deleted_at IS NULL
"#;

#[async_trait]
impl ReactionStore for PostgresStore {
    /// Queued per message: alone, optimistic; many at once on one message, a group per
    /// transaction.
    async fn react(&self, request: ReactionRequest) -> Result<Reacted> {
        self.timed("react", async {
            let key = (request.thread, request.id);
            let (reply, outcome) = oneshot::channel();
            if self.reactions.push(key, ReactionJob { request, reply }) {
                let store = self.clone();
                tokio::spawn(async move {
                    let reactions = Arc::clone(&store.reactions);
                    queue::drain(&reactions, key, |jobs| apply_group(&store, jobs)).await;
                });
            }
            outcome
                .await
                .map_err(|_| Error::unavailable("react", "the group's task ended"))?
        })
        .await
    }

    /// The message held, the rule asked, the clear written and the message answered, in one
    /// transaction: what is answered is what the clear left, whatever commits after it.
    async fn clear_reactions(&self, request: ClearRequest) -> Result<Reacted> {
        let request = &request;
        let attempt = || async move {
            let (thread, id) = (request.thread, request.id);
            let mut client = self.client().await?;
            let clear = client
                .prepare_cached(CLEAR_REACTIONS)
                .await
                .map_err(db("prepare"))?;
            let tx = client.transaction().await.map_err(db("begin"))?;
            let mut message = read_locked(&tx, thread, id).await?.ok_or(Error::NotFound)?;
            let Some(event) = reaction::plan_clear(&message, request) else {
                return Ok(Reacted {
                    message,
                    changed: false,
                });
            };
            let row = tx
                .query_one(
                    &clear,
                    &[
                        thread.as_uuid(),
                        id.as_uuid(),
                        &event.id,
                        &event.kind,
                        &event.time.to_datetime(),
                        &event.open_payload,
                    ],
                )
                .await
                .map_err(db("clear reactions"))?;
            let rev: i64 = row.try_get(0).map_err(decode)?;
            tx.commit().await.map_err(db("commit"))?;
            self.recent.forget(thread, id);
            message.reactions.clear();
            message.rev = rev;
            Ok(Reacted {
                message,
                changed: true,
            })
        };
        self.timed(
            "clear reactions",
            super::rerun_lost_races("clear reactions", attempt),
        )
        .await
    }

    async fn reactors(
        &self,
        thread: ThreadId,
        id: MessageId,
        emoji: &Emoji,
        after: Option<UserId>,
        limit: ReactorsLimit,
    ) -> Result<Reactors> {
        self.timed("reactors", async {
            let client = self.client().await?;
            let take = (limit.get() + 1) as i64;
            let (t, m, e) = (thread.as_uuid(), id.as_uuid(), emoji.as_str());
            let rows = match after {
                None => {
                    let stmt = client
                        .prepare_cached(REACTORS_FIRST)
                        .await
                        .map_err(db("prepare"))?;
                    client.query(&stmt, &[t, m, &e, &take]).await
                }
                Some(after) => {
                    let stmt = client
                        .prepare_cached(REACTORS_AFTER)
                        .await
                        .map_err(db("prepare"))?;
                    client
                        .query(&stmt, &[t, m, &e, &take, after.as_uuid()])
                        .await
                }
            }
            .map_err(db("reactors"))?;
            let first = rows.first().ok_or(Error::NotFound)?;
            let summary = reaction::summary_from_json(first.try_get(0).map_err(decode)?)?;
            let count = reaction::count(&summary, emoji);
            let mut users = Vec::with_capacity(rows.len());
            for row in &rows {
                if let Some(user) = row.try_get::<_, Option<uuid::Uuid>>(1).map_err(decode)? {
                    users.push(UserId::from_uuid(user));
                }
            }
            Ok(Reactors::from_overfetch(emoji.clone(), count, users, limit))
        })
        .await
    }
}

/// Applies a group of one message's reaction changes and answers each: alone when it is
/// one; else in one transaction, or each alone when that transaction fails for anything
/// but the database being unavailable (each then answers as it would alone).
async fn apply_group(store: &PostgresStore, jobs: Vec<ReactionJob>) {
    if jobs.len() > 1 {
        let together = super::rerun_lost_races("react", || react_together(store, &jobs));
        let together = tokio::time::timeout(store.operation_timeout, together)
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
        let request = &job.request;
        let alone = super::rerun_lost_races("react", || react_alone(store, request.clone()));
        let reacted = tokio::time::timeout(store.operation_timeout, alone)
            .await
            .unwrap_or_else(|_| Err(Error::unavailable("react", "timed out")));
        let _ = job.reply.send(reacted);
    }
}
