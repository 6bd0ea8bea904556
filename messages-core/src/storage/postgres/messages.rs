//! The PostgreSQL message store: create and delete are one statement each, an edit is one
//! short transaction; edits and deletes that queue on one thread share one (see `edits`).
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
//! and why creates that arrive together, whatever their threads, are inserted by one statement
//! with one bump per thread and one commit (see `batch`), and a storm of reactions on one
//! message is applied a group per transaction (see `reactions`).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use tokio::sync::oneshot;
use tokio_postgres::Row;

use super::batch::{self, Job};
use super::counts::Counted;
use super::sql::*;
use super::{COLUMNS, PostgresStore, db, decode, message_from_row};
use crate::changes::{Change, Changes, ChangesLimit};
use crate::error::{Error, Result};
use crate::history::{History, Replaced};
use crate::message::Emoji;
use crate::message::{Message, MessageId, MessagePatch, ThreadId, Timestamp, Tombstone, UserId};
use crate::page::{Around, Page, PageQuery, PageSize};
use crate::reaction::{self, Reacted, ReactionChange, ReactionEvent, Reactors};
use crate::read::{ReadMark, ReadState, UnreadMax};
use crate::removal::Removal;
use crate::storage::{
    Created, DeleteEvent, Idempotency, MessageStore, OutboxEvent, ReactionEventBuilder,
    ReactionRequest, UpdateEvent,
};

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

/// A read state from a row's `position, count, first unread` columns from `at`.
fn read_state_from_row(
    thread: ThreadId,
    row: &Row,
    at: usize,
    max: UnreadMax,
) -> Result<ReadState> {
    let seq: i64 = row.try_get(at).map_err(decode)?;
    let counted: i64 = row.try_get(at + 1).map_err(decode)?;
    let first: Option<i64> = row.try_get(at + 2).map_err(decode)?;
    Ok(ReadState::from_unread(
        thread,
        seq,
        counted.max(0) as u64,
        first,
        max,
    ))
}

/// Runs `DELETE` for one live message `author` wrote; its tombstone, or `None` when the
/// message was not live (or not `author`'s).
#[allow(clippy::too_many_arguments)]
async fn run_delete<C: GenericClient + Sync>(
    client: &C,
    stmt: &tokio_postgres::Statement,
    thread: ThreadId,
    id: MessageId,
    author: UserId,
    removal: &Removal,
    now: Timestamp,
    event: DeleteEvent,
) -> Result<Option<Tombstone>> {
    let mut tombstone = Tombstone {
        id,
        thread_id: thread,
        deleted_at: now,
        deleted_by: removal.deleted_by(author),
        reason: removal.reason().map(str::to_owned),
        seq: 0,
        rev: 0,
    };
    let event = event(&tombstone);
    let now_dt = now.to_datetime();
    let time = event.time.to_datetime();
    let deleted_by = tombstone.deleted_by.map(|u| *u.as_uuid());
    let row = client
        .query_opt(
            stmt,
            &[
                thread.as_uuid(),
                id.as_uuid(),
                author.as_uuid(),
                &now_dt,
                &event.id,
                &event.kind,
                &time,
                &event.open_payload,
                &deleted_by,
                &tombstone.reason,
            ],
        )
        .await
        .map_err(db("delete message"))?;
    match row {
        Some(row) => {
            tombstone.seq = row.try_get(0).map_err(decode)?;
            tombstone.rev = row.try_get(1).map_err(decode)?;
            Ok(Some(tombstone))
        }
        None => Ok(None),
    }
}

/// Edits `id` in `thread` as `user` on `client`, inside a transaction (or a savepoint) the
/// caller commits: the message held, the patch applied, the edit numbered with its event.
#[allow(clippy::too_many_arguments)]
pub(super) async fn edit_in<C: GenericClient + Sync>(
    client: &C,
    thread: ThreadId,
    id: MessageId,
    user: UserId,
    patch: &MessagePatch,
    now: Timestamp,
    event: UpdateEvent,
) -> Result<Message> {
    let lock = client.prepare_cached(LOCK).await.map_err(db("prepare"))?;
    let number = client
        .prepare_cached(NUMBER_EDIT)
        .await
        .map_err(db("prepare"))?;
    let row = client
        .query_opt(&lock, &[thread.as_uuid(), id.as_uuid()])
        .await
        .map_err(db("update message"))?
        .ok_or(Error::NotFound)?;
    let old = message_from_row(&row, 0)?;
    if old.user_id != user {
        return Err(Error::Forbidden);
    }
    let mut edited = old.clone();
    patch.apply(&mut edited, now)?;
    let e = event(&edited);
    let time = e.time.to_datetime();
    let row = client
        .query_one(
            &number,
            &[
                thread.as_uuid(),
                id.as_uuid(),
                &edited.content,
                &edited.paths,
                &edited.updated_at.to_datetime(),
                &old.content,
                &old.paths,
                &old.updated_at.to_datetime(),
                &e.id,
                &e.kind,
                &time,
                &e.open_payload,
            ],
        )
        .await
        .map_err(db("number edit"))?;
    edited.rev = row.try_get(0).map_err(decode)?;
    Ok(edited)
}

/// Deletes `id` in `thread` on `client` as `removal` may: one statement, so on a connection
/// it commits by itself, and in a transaction (or a savepoint) with it.
pub(super) async fn delete_in<C: GenericClient + Sync>(
    client: &C,
    thread: ThreadId,
    id: MessageId,
    removal: &Removal,
    now: Timestamp,
    event: DeleteEvent,
) -> Result<Tombstone> {
    // A moderator may remove anyone's message: whose it is decides what the tombstone and
    // its event say, so it is read first and then required by the statement.
    let author = if removal.is_moderator() {
        let stmt = client.prepare_cached(AUTHOR).await.map_err(db("prepare"))?;
        let row = client
            .query_opt(&stmt, &[thread.as_uuid(), id.as_uuid()])
            .await
            .map_err(db("delete message"))?
            .ok_or(Error::NotFound)?;
        UserId::from_uuid(row.try_get(0).map_err(decode)?)
    } else {
        removal.by()
    };
    let stmt = client.prepare_cached(DELETE).await.map_err(db("prepare"))?;
    match run_delete(client, &stmt, thread, id, author, removal, now, event).await? {
        Some(tombstone) => Ok(tombstone),
        None => Err(super::diagnose(client, thread, id).await),
    }
}

/// What a reaction attempt came to.
pub(super) enum Attempt {
    /// Written (the new state, to remember once committed), or already as asked.
    Done(Reacted),
    /// The message moved since it was read; nothing written.
    Moved,
}

/// How many times a reaction tries optimistically before it holds the message instead: an
/// attempt loses only to another change of the same message that committed meanwhile, which
/// on a message many people react to at once is most attempts.
const OPTIMISTIC_ATTEMPTS: usize = 3;

impl PostgresStore {
    /// One reaction attempt on `message` as read at its `rev` (`read_now`: just read, not the
    /// state this process kept): when the summary shows the change is already made, answer
    /// that; else work the new summary out and run `REACT`.
    pub(super) async fn try_react<C: GenericClient + Sync>(
        &self,
        client: &C,
        statements: &ReactionStatements,
        request: &ReactionRequest,
        mut message: Message,
        read_now: bool,
        event: ReactionEventBuilder,
    ) -> Result<Attempt> {
        let ReactionRequest {
            emoji,
            user,
            change,
            limits,
            ..
        } = request;
        let adding = *change == ReactionChange::Add;
        let listed = reaction::listed(&message.reactions, emoji, *user);
        if !read_now && listed {
            // The state kept says the caller holds it: trust only what is read.
            return Ok(Attempt::Moved);
        }
        let nobody_holds = !message.reactions.iter().any(|r| &r.emoji == emoji);
        if read_now && ((adding && listed) || (!adding && nobody_holds)) {
            // Already as asked, by the summary just read.
            return Ok(Attempt::Done(Reacted {
                message,
                changed: false,
            }));
        }
        let mut summary = message.reactions.clone();
        let count = if adding {
            reaction::add_to_summary(&mut summary, emoji, *user, limits)?
        } else {
            let next = if listed {
                next_holder(client, &statements.next_holder, &message, emoji).await?
            } else {
                None
            };
            reaction::remove_from_summary(&mut summary, emoji, *user, next, limits)
        };
        let e = event(
            &ReactionEvent {
                message_id: request.id,
                thread_id: request.thread,
                user_id: *user,
                emoji: emoji.clone(),
                count,
                reacted_at: request.now,
            },
            *change,
        );
        let row = client
            .query_one(
                &statements.react,
                &[
                    request.thread.as_uuid(),
                    request.id.as_uuid(),
                    &message.rev,
                    &emoji.as_str(),
                    user.as_uuid(),
                    &adding,
                    &reaction::summary_to_json(&summary),
                    &e.id,
                    &e.kind,
                    &e.time.to_datetime(),
                    &e.open_payload,
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
                Attempt::Done(Reacted {
                    message,
                    changed: true,
                })
            }
            // The caller's row was already as asked (the summary lists only some holders).
            None if unmoved && read_now => Attempt::Done(Reacted {
                message,
                changed: false,
            }),
            None => Attempt::Moved,
        })
    }

    /// Optimistic first: read the message, work out the summary here, then apply it in one
    /// statement only if the message has not moved since (see `REACT`); when it has, read
    /// again. Two round trips and no lock held between them, so reactions of different
    /// messages never wait for each other. A message that keeps moving (many people reacting
    /// at once) is then read locked, in a transaction, so the reaction cannot lose again.
    pub(super) async fn react_alone(
        &self,
        request: ReactionRequest,
        event: ReactionEventBuilder,
    ) -> Result<Reacted> {
        let (thread, id) = (request.thread, request.id);
        let mut client = self.client().await?;
        let read = client
            .prepare_cached(READ_FOR_REACTION)
            .await
            .map_err(db("prepare"))?;
        let statements = ReactionStatements::prepare(&client).await?;
        // A reaction added to a message this process wrote last: try it on that state
        // first, one round trip when no one changed the message since.
        let mut kept = match request.change {
            ReactionChange::Add => self.recent.get(thread, id),
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
            let attempt = self
                .try_react(&client, &statements, &request, message, read_now, event)
                .await?;
            if let Attempt::Done(reacted) = attempt {
                if reacted.changed {
                    self.recent.remember(&reacted.message);
                }
                return Ok(reacted);
            }
        }
        let locked = client
            .prepare_cached(READ_FOR_REACTION_LOCKED)
            .await
            .map_err(db("prepare"))?;
        let tx = client.transaction().await.map_err(db("begin"))?;
        let row = tx
            .query_opt(&locked, &[thread.as_uuid(), id.as_uuid()])
            .await
            .map_err(db("react"))?
            .ok_or(Error::NotFound)?;
        let message = message_from_row(&row, 0)?;
        match self
            .try_react(&tx, &statements, &request, message, true, event)
            .await?
        {
            Attempt::Done(reacted) => {
                tx.commit().await.map_err(db("commit"))?;
                if reacted.changed {
                    self.recent.remember(&reacted.message);
                }
                Ok(reacted)
            }
            Attempt::Moved => Err(Error::internal(
                "react",
                "a message held by this transaction moved",
            )),
        }
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
            let job = Job {
                message: message.clone(),
                idempotency: idempotency.map(|i| (i.key.as_str().to_owned(), i.fingerprint)),
                event,
                reply,
            };
            if let Some(lane) = self.creates.push(job) {
                let store = self.clone();
                tokio::spawn(async move {
                    let creates = Arc::clone(&store.creates);
                    batch::drain(creates.queues(), lane, |jobs| store.insert_group(jobs)).await;
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

    /// Queued per thread with the thread's deletes (see `edits`): alone, one short
    /// transaction; many at once on one thread, a group per transaction.
    async fn update(
        &self,
        thread: ThreadId,
        id: MessageId,
        user: UserId,
        patch: &MessagePatch,
        now: Timestamp,
        event: UpdateEvent,
    ) -> Result<Message> {
        self.timed(
            "update",
            self.queue_edit(thread, id, user, patch.clone(), now, event),
        )
        .await
    }

    /// Queued per message (see `reactions`): alone, optimistic; many at once on one message,
    /// a group per transaction.
    async fn react(
        &self,
        request: ReactionRequest,
        event: ReactionEventBuilder,
    ) -> Result<Reacted> {
        self.timed("react", self.queue_reaction(request, event))
            .await
    }

    async fn mark_read(
        &self,
        thread: ThreadId,
        user: UserId,
        mark: ReadMark,
        max: UnreadMax,
    ) -> Result<ReadState> {
        self.timed("mark read", async {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(MARK_READ)
                .await
                .map_err(db("prepare"))?;
            let (seq, back) = mark.as_target();
            let limit = max.get() as i64 + 1;
            let row = client
                .query_one(
                    &stmt,
                    &[thread.as_uuid(), user.as_uuid(), &seq, &back, &limit],
                )
                .await
                .map_err(db("mark read"))?;
            read_state_from_row(thread, &row, 0, max)
        })
        .await
    }

    async fn read_states(
        &self,
        user: UserId,
        threads: &[ThreadId],
        max: UnreadMax,
    ) -> Result<Vec<ReadState>> {
        self.timed("read states", async {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(READ_STATES)
                .await
                .map_err(db("prepare"))?;
            let ids: Vec<uuid::Uuid> = threads.iter().map(|t| *t.as_uuid()).collect();
            let limit = max.get() as i64 + 1;
            let kept = self.counts.get(threads, user);
            let usable = |c: &Option<Counted>| c.filter(|c| c.limit == limit);
            let known_heads: Vec<i64> = kept
                .iter()
                .map(|c| usable(c).map_or(-1, |c| c.head))
                .collect();
            let known_seqs: Vec<i64> = kept
                .iter()
                .map(|c| usable(c).map_or(-1, |c| c.seq))
                .collect();
            let rows = client
                .query(
                    &stmt,
                    &[&ids, user.as_uuid(), &limit, &known_heads, &known_seqs],
                )
                .await
                .map_err(db("read states"))?;
            let mut states = Vec::with_capacity(rows.len());
            let mut fresh = Vec::new();
            for (row, kept) in rows.iter().zip(&kept) {
                let thread = ThreadId::from_uuid(row.try_get(0).map_err(decode)?);
                let seq: i64 = row.try_get(1).map_err(decode)?;
                let head: i64 = row.try_get(2).map_err(decode)?;
                let counted: Option<Vec<Option<i64>>> = row.try_get(3).map_err(decode)?;
                let counted = match (counted, usable(kept)) {
                    (Some(pair), _) => {
                        let counted = Counted {
                            head,
                            seq,
                            limit,
                            counted: pair.first().copied().flatten().unwrap_or(0),
                            first: pair.get(1).copied().flatten(),
                        };
                        fresh.push((thread, counted));
                        counted
                    }
                    // Not counted again: the head and the position are the kept count's.
                    (None, Some(kept)) => kept,
                    (None, None) => {
                        return Err(Error::internal(
                            "read states",
                            "no count for a thread this process had not counted",
                        ));
                    }
                };
                states.push(ReadState::from_unread(
                    thread,
                    seq,
                    counted.counted.max(0) as u64,
                    counted.first,
                    max,
                ));
            }
            if rows.len() != threads.len() {
                return Err(Error::internal("read states", "a state per thread asked"));
            }
            self.counts.keep(user, fresh);
            Ok(states)
        })
        .await
    }

    async fn clear_reactions(
        &self,
        thread: ThreadId,
        id: MessageId,
        event: OutboxEvent,
    ) -> Result<Reacted> {
        self.timed("clear reactions", async {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(CLEAR_REACTIONS)
                .await
                .map_err(db("prepare"))?;
            let time = event.time.to_datetime();
            let cleared = client
                .query_opt(
                    &stmt,
                    &[
                        thread.as_uuid(),
                        id.as_uuid(),
                        &event.id,
                        &event.kind,
                        &time,
                        &event.open_payload,
                    ],
                )
                .await
                .map_err(db("clear reactions"))?;
            // The message as it is now: cleared by this statement, or as it was (none to
            // clear); a message gone is a 404.
            let get = client.prepare_cached(GET).await.map_err(db("prepare"))?;
            let row = client
                .query_opt(&get, &[thread.as_uuid(), id.as_uuid()])
                .await
                .map_err(db("clear reactions"))?
                .ok_or(Error::NotFound)?;
            let message = message_from_row(&row, 0)?;
            self.recent.forget(thread, id);
            Ok(Reacted {
                message,
                changed: cleared.is_some(),
            })
        })
        .await
    }

    async fn reactors(
        &self,
        thread: ThreadId,
        id: MessageId,
        emoji: &Emoji,
        after: Option<UserId>,
        limit: usize,
    ) -> Result<Reactors> {
        self.timed("reactors", async {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(REACTORS)
                .await
                .map_err(db("prepare"))?;
            let after = after.map_or(uuid::Uuid::nil(), |u| *u.as_uuid());
            let rows = client
                .query(
                    &stmt,
                    &[
                        thread.as_uuid(),
                        id.as_uuid(),
                        &emoji.as_str(),
                        &after,
                        &((limit + 1) as i64),
                    ],
                )
                .await
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

    async fn history(&self, thread: ThreadId, id: MessageId) -> Result<History> {
        self.timed("history", async {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(HISTORY)
                .await
                .map_err(db("prepare"))?;
            let rows = client
                .query(&stmt, &[thread.as_uuid(), id.as_uuid()])
                .await
                .map_err(db("history"))?;
            let message = message_from_row(rows.first().ok_or(Error::NotFound)?, 0)?;
            let mut replaced = Vec::with_capacity(rows.len());
            for row in &rows {
                let Some(replaced_by) = row.try_get(COLUMNS).map_err(decode)? else {
                    continue;
                };
                let made_at: DateTime<Utc> = row.try_get(COLUMNS + 3).map_err(decode)?;
                replaced.push(Replaced {
                    replaced_by,
                    content: row.try_get(COLUMNS + 1).map_err(decode)?,
                    paths: row.try_get(COLUMNS + 2).map_err(decode)?,
                    made_at: Timestamp::from(made_at),
                });
            }
            Ok(History::new(&message, replaced))
        })
        .await
    }

    /// Queued per thread with the thread's edits (see `edits`).
    async fn delete(
        &self,
        thread: ThreadId,
        id: MessageId,
        removal: &Removal,
        now: Timestamp,
        event: DeleteEvent,
    ) -> Result<Tombstone> {
        self.timed(
            "delete",
            self.queue_delete(thread, id, removal.clone(), now, event),
        )
        .await
    }

    async fn delete_many(
        &self,
        thread: ThreadId,
        ids: &[MessageId],
        removal: &Removal,
        now: Timestamp,
        event: DeleteEvent,
    ) -> Result<Vec<Tombstone>> {
        self.timed("delete many", async {
            let mut client = self.client().await?;
            let lock = client
                .prepare_cached(LOCK_LIVE_MANY)
                .await
                .map_err(db("prepare"))?;
            let stmt = client.prepare_cached(DELETE).await.map_err(db("prepare"))?;
            let tx = client.transaction().await.map_err(db("begin"))?;
            let wanted: Vec<uuid::Uuid> = ids.iter().map(|id| *id.as_uuid()).collect();
            // The live ones, locked in id order (two removals of overlapping sets take their
            // locks in one order), before any change: all of them or none.
            let rows = tx
                .query(&lock, &[thread.as_uuid(), &wanted])
                .await
                .map_err(db("delete many"))?;
            let mut authors = std::collections::HashMap::with_capacity(rows.len());
            for row in &rows {
                let id: uuid::Uuid = row.try_get(0).map_err(decode)?;
                let author: uuid::Uuid = row.try_get(1).map_err(decode)?;
                authors.insert(id, UserId::from_uuid(author));
            }
            let mut tombstones = Vec::with_capacity(ids.len());
            for &id in ids {
                let author = *authors.get(id.as_uuid()).ok_or(Error::RefusedId {
                    id: *id.as_uuid(),
                    why: "is not a live message of this thread",
                })?;
                if !removal.may_remove(author) {
                    return Err(Error::Forbidden);
                }
                let tombstone = run_delete(&tx, &stmt, thread, id, author, removal, now, event)
                    .await?
                    .ok_or_else(|| Error::internal("delete many", "a locked message went away"))?;
                tombstones.push(tombstone);
            }
            tx.commit().await.map_err(db("commit"))?;
            for id in ids {
                self.recent.forget(thread, *id);
            }
            Ok(tombstones)
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
                let deleted_at: Option<DateTime<Utc>> = row.try_get(1 + COLUMNS).map_err(decode)?;
                changes.push(match deleted_at {
                    None => Change::Message(message),
                    Some(at) => Change::Deleted(Tombstone {
                        id: message.id,
                        thread_id: message.thread_id,
                        deleted_at: Timestamp::from(at),
                        deleted_by: row
                            .try_get::<_, Option<uuid::Uuid>>(2 + COLUMNS)
                            .map_err(decode)?
                            .map(UserId::from_uuid),
                        reason: row.try_get(3 + COLUMNS).map_err(decode)?,
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
