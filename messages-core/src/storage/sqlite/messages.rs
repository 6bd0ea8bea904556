//! The SQLite message store: every write is one closure on the writer, every read one
//! snapshot on a reader.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use super::{COLUMNS, SqliteStore, columns, db, decode, message_from_row, paths_json, timestamp};
use crate::changes::{Change, Changes, ChangesLimit};
use crate::error::{Error, Result};
use crate::history::{History, Replaced};
use crate::message::Emoji;
use crate::message::{
    Message, MessageId, MessagePatch, RequestFingerprint, ThreadId, Timestamp, Tombstone, UserId,
};
use crate::page::{Around, Page, PageQuery, PageSize};
use crate::reaction::{self, Reacted, ReactionChange, ReactionEvent, Reactors};
use crate::read::{ReadMark, ReadState, UnreadMax};
use crate::removal::Removal;
use crate::storage::{
    Created, DeleteEvent, Idempotency, MessageStore, OutboxEvent, ReactionEventBuilder,
    ReactionRequest, UpdateEvent,
};

/// Takes the thread's next number.
fn bump(conn: &Connection, thread: ThreadId) -> Result<i64> {
    conn.prepare_cached(
        "INSERT INTO threads (thread_id, head) VALUES (?1, 1) \
         ON CONFLICT (thread_id) DO UPDATE SET head = head + 1 RETURNING head",
    )
    .and_then(|mut stmt| stmt.query_row([thread.as_uuid()], |row| row.get(0)))
    .map_err(db("number the change"))
}

/// Writes `event`, closed with the change's numbers.
fn push_event(conn: &Connection, event: &OutboxEvent, seq: i64, rev: i64) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO outbox (id, kind, thread_id, time, sequence, payload) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            event.id,
            event.kind,
            event.thread_id.as_uuid(),
            event.time.as_micros(),
            rev,
            event.payload(seq, rev),
        ])
    })
    .map(drop)
    .map_err(db("write event"))
}

/// The thread's position, 0 for a thread never written.
fn head(conn: &Connection, thread: ThreadId) -> Result<i64> {
    conn.prepare_cached("SELECT head FROM threads WHERE thread_id = ?1")
        .and_then(|mut stmt| {
            stmt.query_row([thread.as_uuid()], |row| row.get(0))
                .optional()
        })
        .map(|head| head.unwrap_or(0))
        .map_err(db("read position"))
}

/// Moves `user`'s read position to `seq` or, with `back`, sets it there; never past the head.
fn move_position(
    conn: &Connection,
    thread: ThreadId,
    user: UserId,
    seq: i64,
    back: bool,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO read_positions (thread_id, user_id, seq)          VALUES (?1, ?2, max(0, min(?3, coalesce((SELECT head FROM threads WHERE thread_id = ?1), 0))))          ON CONFLICT (thread_id, user_id) DO UPDATE SET          seq = CASE WHEN ?4 THEN excluded.seq ELSE max(seq, excluded.seq) END",
    )
    .and_then(|mut stmt| stmt.execute(params![thread.as_uuid(), user.as_uuid(), seq, back]))
    .map(drop)
    .map_err(db("move read position"))
}

/// `user`'s read state in `thread`: their position, and the live messages after it that
/// others wrote, counted up to one past `max`.
fn read_state(
    conn: &Connection,
    thread: ThreadId,
    user: UserId,
    max: UnreadMax,
) -> Result<ReadState> {
    const STATE: &str = "SELECT p.seq, count(u.seq), min(u.seq)          FROM (SELECT coalesce((SELECT seq FROM read_positions                                 WHERE thread_id = ?1 AND user_id = ?2), 0) AS seq) p          LEFT JOIN (SELECT seq FROM messages                     WHERE thread_id = ?1 AND deleted_at IS NULL AND user_id <> ?2                       AND seq > coalesce((SELECT seq FROM read_positions                                           WHERE thread_id = ?1 AND user_id = ?2), 0)                     ORDER BY seq LIMIT ?3) u";
    conn.prepare_cached(STATE)
        .and_then(|mut stmt| {
            stmt.query_row(
                params![thread.as_uuid(), user.as_uuid(), max.get() as i64 + 1],
                |row| {
                    let seq: i64 = row.get(0)?;
                    let counted: i64 = row.get(1)?;
                    let first: Option<i64> = row.get(2)?;
                    Ok((seq, counted, first))
                },
            )
        })
        .map_err(db("read state"))
        .map(|(seq, counted, first)| {
            ReadState::from_unread(thread, seq, counted.max(0) as u64, first, max)
        })
}

/// Deletes `message` (live) if `removal` may: numbered, its history and reactions forgotten,
/// its event written.
fn remove(
    conn: &Connection,
    message: &Message,
    removal: &Removal,
    now: Timestamp,
    event: DeleteEvent,
) -> Result<Tombstone> {
    if !removal.may_remove(message.user_id) {
        return Err(Error::Forbidden);
    }
    let (thread, id) = (message.thread_id, message.id);
    let deleted_by = removal.deleted_by(message.user_id);
    let rev = bump(conn, thread)?;
    conn.prepare_cached(
        "UPDATE messages SET deleted_at = ?3, rev = ?4, deleted_by = ?5, delete_reason = ?6 \
         WHERE thread_id = ?1 AND id = ?2",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            thread.as_uuid(),
            id.as_uuid(),
            now.as_micros(),
            rev,
            deleted_by.map(|u| *u.as_uuid()),
            removal.reason(),
        ])
    })
    .map_err(db("delete message"))?;
    for forget in [
        "DELETE FROM message_edits WHERE thread_id = ?1 AND message_id = ?2",
        "DELETE FROM reactions WHERE thread_id = ?1 AND message_id = ?2",
    ] {
        conn.prepare_cached(forget)
            .and_then(|mut stmt| stmt.execute(params![thread.as_uuid(), id.as_uuid()]))
            .map_err(db("delete message"))?;
    }
    let tombstone = Tombstone {
        id,
        thread_id: thread,
        deleted_at: now,
        deleted_by,
        reason: removal.reason().map(str::to_owned),
        seq: message.seq,
        rev,
    };
    push_event(conn, &event(&tombstone), message.seq, rev)?;
    Ok(tombstone)
}

/// A message of the thread, deleted or not, with its deletion time.
fn find(
    conn: &Connection,
    thread: ThreadId,
    id: MessageId,
) -> Result<Option<(Message, Option<i64>)>> {
    const FIND: &str = concat!(
        "SELECT ",
        columns!(),
        ", deleted_at FROM messages WHERE thread_id = ?1 AND id = ?2"
    );
    let mut stmt = conn.prepare_cached(FIND).map_err(db("find message"))?;
    let mut rows = stmt
        .query(params![thread.as_uuid(), id.as_uuid()])
        .map_err(db("find message"))?;
    match rows.next().map_err(db("find message"))? {
        Some(row) => {
            let deleted_at: Option<i64> = row.get(COLUMNS).map_err(decode)?;
            Ok(Some((message_from_row(row, 0)?, deleted_at)))
        }
        None => Ok(None),
    }
}

/// A live message `user` wrote: 404 before 403, so a message of another thread is
/// indistinguishable from a missing one.
fn owned(conn: &Connection, thread: ThreadId, id: MessageId, user: UserId) -> Result<Message> {
    match find(conn, thread, id)? {
        Some((message, None)) if message.user_id == user => Ok(message),
        Some((_, None)) => Err(Error::Forbidden),
        _ => Err(Error::NotFound),
    }
}

/// Live messages by `seq`: `condition` on `seq` (bound as ?3), in `order`, at most ?2.
fn messages(
    conn: &Connection,
    sql: &str,
    thread: ThreadId,
    take: i64,
    seq: i64,
) -> Result<Vec<Message>> {
    let mut stmt = conn.prepare_cached(sql).map_err(db("read messages"))?;
    let mut rows = stmt
        .query(params![thread.as_uuid(), take, seq])
        .map_err(db("read messages"))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(db("read messages"))? {
        out.push(message_from_row(row, 0)?);
    }
    Ok(out)
}

/// Live messages older than ?3, newest first (?3 = i64::MAX for the newest page).
const OLDER: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM messages WHERE thread_id = ?1 AND seq < ?3 AND deleted_at IS NULL \
     ORDER BY seq DESC LIMIT ?2"
);

/// Live messages newer than ?3, oldest first.
const NEWER: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM messages WHERE thread_id = ?1 AND seq > ?3 AND deleted_at IS NULL \
     ORDER BY seq ASC LIMIT ?2"
);

/// A reaction change on the writer: the holder's row, the summary, the number and the event.
fn react(
    conn: &Connection,
    request: &ReactionRequest,
    event: ReactionEventBuilder,
) -> Result<Reacted> {
    let ReactionRequest {
        thread,
        id,
        user,
        emoji,
        change,
        now,
        limits,
    } = request;
    let (thread, id, user) = (*thread, *id, *user);
    let mut message = match find(conn, thread, id)? {
        Some((message, None)) => message,
        _ => return Err(Error::NotFound),
    };
    let key = params![
        thread.as_uuid(),
        id.as_uuid(),
        emoji.as_str(),
        user.as_uuid()
    ];
    let holds = conn
        .prepare_cached(
            "SELECT 1 FROM reactions \
             WHERE thread_id = ?1 AND message_id = ?2 AND emoji = ?3 AND user_id = ?4",
        )
        .and_then(|mut stmt| stmt.exists(key))
        .map_err(db("react"))?;
    let count = match (change, holds) {
        (ReactionChange::Add, true) | (ReactionChange::Remove, false) => {
            return Ok(Reacted {
                message,
                changed: false,
            });
        }
        (ReactionChange::Add, false) => {
            reaction::add_to_summary(&mut message.reactions, emoji, user, limits)?
        }
        (ReactionChange::Remove, true) => {
            let next = if reaction::listed(&message.reactions, emoji, user) {
                next_holder(conn, &message, emoji, user)?
            } else {
                None
            };
            reaction::remove_from_summary(&mut message.reactions, emoji, user, next, limits)
        }
    };
    let rev = bump(conn, thread)?;
    message.rev = rev;
    let holder = match change {
        ReactionChange::Add => conn
            .prepare_cached(
                "INSERT INTO reactions (thread_id, message_id, emoji, user_id, rev) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut stmt| {
                let (t, m, u) = (thread.as_uuid(), id.as_uuid(), user.as_uuid());
                stmt.execute(params![t, m, emoji.as_str(), u, rev])
            }),
        ReactionChange::Remove => conn
            .prepare_cached(
                "DELETE FROM reactions \
                 WHERE thread_id = ?1 AND message_id = ?2 AND emoji = ?3 AND user_id = ?4",
            )
            .and_then(|mut stmt| stmt.execute(key)),
    };
    holder.map_err(db("react"))?;
    conn.prepare_cached(
        "UPDATE messages SET reactions = ?3, rev = ?4 WHERE thread_id = ?1 AND id = ?2",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            thread.as_uuid(),
            id.as_uuid(),
            reaction::summary_to_json(&message.reactions),
            rev
        ])
    })
    .map_err(db("react"))?;
    let built = event(
        &ReactionEvent {
            message_id: id,
            thread_id: thread,
            user_id: user,
            emoji: emoji.clone(),
            count,
            reacted_at: *now,
        },
        *change,
    );
    push_event(conn, &built, message.seq, rev)?;
    Ok(Reacted {
        message,
        changed: true,
    })
}

/// The earliest holder of `emoji` on `message` that its summary does not list, other than
/// `leaving`.
fn next_holder(
    conn: &Connection,
    message: &Message,
    emoji: &Emoji,
    leaving: UserId,
) -> Result<Option<UserId>> {
    let shown = reaction::shown(&message.reactions, emoji);
    let mut stmt = conn
        .prepare_cached(
            "SELECT user_id FROM reactions \
             WHERE thread_id = ?1 AND message_id = ?2 AND emoji = ?3 ORDER BY rev",
        )
        .map_err(db("react"))?;
    let mut rows = stmt
        .query(params![
            message.thread_id.as_uuid(),
            message.id.as_uuid(),
            emoji.as_str()
        ])
        .map_err(db("react"))?;
    while let Some(row) = rows.next().map_err(db("react"))? {
        let user = UserId::from_uuid(row.get(0).map_err(decode)?);
        if user != leaving && !shown.contains(&user) {
            return Ok(Some(user));
        }
    }
    Ok(None)
}

#[async_trait]
impl MessageStore for SqliteStore {
    async fn create(
        &self,
        message: &Message,
        idempotency: Option<Idempotency<'_>>,
        event: OutboxEvent,
    ) -> Result<Created> {
        let mut message = message.clone();
        let idempotency = idempotency.map(|i| (i.key.as_str().to_owned(), i.fingerprint));
        self.write_checked("create", move |conn| {
            if let Some((key, fingerprint)) = &idempotency {
                const ORIGINAL: &str = concat!(
                    "SELECT ",
                    columns!(),
                    ", request_hash FROM messages \
                     WHERE thread_id = ?1 AND user_id = ?2 AND idempotency_key = ?3"
                );
                let mut stmt = conn
                    .prepare_cached(ORIGINAL)
                    .map_err(db("idempotent replay"))?;
                let mut rows = stmt
                    .query(params![
                        message.thread_id.as_uuid(),
                        message.user_id.as_uuid(),
                        key
                    ])
                    .map_err(db("idempotent replay"))?;
                if let Some(row) = rows.next().map_err(db("idempotent replay"))? {
                    let stored: Vec<u8> = row.get(COLUMNS).map_err(decode)?;
                    let stored: [u8; 32] = stored
                        .try_into()
                        .map_err(|_| decode("bad request_hash length"))?;
                    if RequestFingerprint::from_bytes(stored) != *fingerprint {
                        return Err(Error::IdempotencyConflict);
                    }
                    return Ok(Created::Replayed(message_from_row(row, 0)?));
                }
            }
            if let Some(target) = message.reply_to {
                match find(conn, message.thread_id, target)? {
                    Some((_, None)) => {}
                    _ => return Err(Error::InvalidReplyTo),
                }
            }
            let seq = bump(conn, message.thread_id)?;
            message.seq = seq;
            message.rev = seq;
            let (key, hash) = match &idempotency {
                Some((key, fingerprint)) => {
                    (Some(key.as_str()), Some(fingerprint.as_bytes().as_slice()))
                }
                None => (None, None),
            };
            conn.prepare_cached(
                "INSERT INTO messages (thread_id, seq, id, user_id, kind, content, paths, \
                 created_at, updated_at, rev, idempotency_key, request_hash, reply_to) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?2, ?9, ?10, ?11)",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    message.thread_id.as_uuid(),
                    seq,
                    message.id.as_uuid(),
                    message.user_id.as_uuid(),
                    message.kind.as_str(),
                    message.content,
                    paths_json(&message.paths),
                    message.created_at.as_micros(),
                    key,
                    hash,
                    message.reply_to.map(|id| *id.as_uuid()),
                ])
            })
            .map_err(db("insert message"))?;
            push_event(conn, &event, seq, seq)?;
            move_position(conn, message.thread_id, message.user_id, seq, false)?;
            Ok(Created::New(message))
        })
        .await
    }

    async fn get(&self, thread: ThreadId, id: MessageId) -> Result<Message> {
        self.read("get", move |tx| match find(tx, thread, id)? {
            Some((message, None)) => Ok(message),
            _ => Err(Error::NotFound),
        })
        .await
    }

    async fn update(
        &self,
        thread: ThreadId,
        id: MessageId,
        user: UserId,
        patch: &MessagePatch,
        now: Timestamp,
        event: UpdateEvent,
    ) -> Result<Message> {
        let patch = patch.clone();
        self.write_checked("update", move |conn| {
            let mut edited = owned(conn, thread, id, user)?;
            let old = edited.clone();
            patch.apply(&mut edited, now)?;
            let e = event(&edited);
            let rev = bump(conn, thread)?;
            edited.rev = rev;
            conn.prepare_cached(
                "UPDATE messages SET content = ?3, paths = ?4, updated_at = ?5, rev = ?6 \
                 WHERE thread_id = ?1 AND id = ?2",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    thread.as_uuid(),
                    id.as_uuid(),
                    edited.content,
                    paths_json(&edited.paths),
                    edited.updated_at.as_micros(),
                    rev,
                ])
            })
            .map_err(db("update message"))?;
            conn.prepare_cached(
                "INSERT INTO message_edits (thread_id, message_id, replaced_by, content, paths, \
                 made_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    thread.as_uuid(),
                    id.as_uuid(),
                    rev,
                    old.content,
                    paths_json(&old.paths),
                    old.updated_at.as_micros(),
                ])
            })
            .map_err(db("keep the replaced version"))?;
            push_event(conn, &e, edited.seq, rev)?;
            Ok(edited)
        })
        .await
    }

    async fn delete(
        &self,
        thread: ThreadId,
        id: MessageId,
        removal: &Removal,
        now: Timestamp,
        event: DeleteEvent,
    ) -> Result<Tombstone> {
        let removal = removal.clone();
        self.write_checked("delete", move |conn| {
            let message = match find(conn, thread, id)? {
                Some((message, None)) => message,
                _ => return Err(Error::NotFound),
            };
            remove(conn, &message, &removal, now, event)
        })
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
        let removal = removal.clone();
        let ids = ids.to_vec();
        // One closure on the writer, in a savepoint of its own: an error undoes every
        // deletion it made.
        self.write("delete many", move |conn| {
            let mut messages = Vec::with_capacity(ids.len());
            for &id in &ids {
                match find(conn, thread, id)? {
                    Some((message, None)) => messages.push(message),
                    _ => {
                        return Err(Error::RefusedId {
                            id: *id.as_uuid(),
                            why: "is not a live message of this thread",
                        });
                    }
                }
            }
            messages
                .iter()
                .map(|message| remove(conn, message, &removal, now, event))
                .collect()
        })
        .await
    }

    async fn react(
        &self,
        request: ReactionRequest,
        event: ReactionEventBuilder,
    ) -> Result<Reacted> {
        self.write_checked("react", move |conn| react(conn, &request, event))
            .await
    }

    async fn clear_reactions(
        &self,
        thread: ThreadId,
        id: MessageId,
        event: OutboxEvent,
    ) -> Result<Reacted> {
        self.write_checked("clear reactions", move |conn| {
            let mut message = match find(conn, thread, id)? {
                Some((message, None)) => message,
                _ => return Err(Error::NotFound),
            };
            if message.reactions.is_empty() {
                return Ok(Reacted {
                    message,
                    changed: false,
                });
            }
            let rev = bump(conn, thread)?;
            conn.prepare_cached(
                "UPDATE messages SET reactions = '[]', rev = ?3 WHERE thread_id = ?1 AND id = ?2",
            )
            .and_then(|mut stmt| stmt.execute(params![thread.as_uuid(), id.as_uuid(), rev]))
            .map_err(db("clear reactions"))?;
            conn.prepare_cached("DELETE FROM reactions WHERE thread_id = ?1 AND message_id = ?2")
                .and_then(|mut stmt| stmt.execute(params![thread.as_uuid(), id.as_uuid()]))
                .map_err(db("clear reactions"))?;
            push_event(conn, &event, message.seq, rev)?;
            message.reactions.clear();
            message.rev = rev;
            Ok(Reacted {
                message,
                changed: true,
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
        let emoji = emoji.clone();
        self.read("reactors", move |tx| {
            let message = match find(tx, thread, id)? {
                Some((message, None)) => message,
                _ => return Err(Error::NotFound),
            };
            let count = reaction::count(&message.reactions, &emoji);
            let mut stmt = tx
                .prepare_cached(
                    "SELECT user_id FROM reactions \
                     WHERE thread_id = ?1 AND message_id = ?2 AND emoji = ?3 AND user_id > ?4 \
                     ORDER BY user_id LIMIT ?5",
                )
                .map_err(db("reactors"))?;
            let after = after.map_or(uuid::Uuid::nil(), |u| *u.as_uuid());
            let users = stmt
                .query_map(
                    params![
                        thread.as_uuid(),
                        id.as_uuid(),
                        emoji.as_str(),
                        after,
                        (limit + 1) as i64
                    ],
                    |row| row.get::<_, uuid::Uuid>(0),
                )
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(db("reactors"))?;
            let users = users.into_iter().map(UserId::from_uuid).collect();
            Ok(Reactors::from_overfetch(emoji, count, users, limit))
        })
        .await
    }

    async fn history(&self, thread: ThreadId, id: MessageId) -> Result<History> {
        self.read("history", move |tx| {
            let message = match find(tx, thread, id)? {
                Some((message, None)) => message,
                _ => return Err(Error::NotFound),
            };
            let mut stmt = tx
                .prepare_cached(
                    "SELECT replaced_by, content, paths, made_at FROM message_edits \
                     WHERE thread_id = ?1 AND message_id = ?2 ORDER BY replaced_by",
                )
                .map_err(db("history"))?;
            let mut rows = stmt
                .query(params![thread.as_uuid(), id.as_uuid()])
                .map_err(db("history"))?;
            let mut replaced = Vec::new();
            while let Some(row) = rows.next().map_err(db("history"))? {
                let paths: String = row.get(2).map_err(decode)?;
                replaced.push(Replaced {
                    replaced_by: row.get(0).map_err(decode)?,
                    content: row.get(1).map_err(decode)?,
                    paths: serde_json::from_str(&paths).map_err(decode)?,
                    made_at: timestamp(row.get(3).map_err(decode)?)?,
                });
            }
            Ok(History::new(&message, replaced))
        })
        .await
    }

    async fn mark_read(
        &self,
        thread: ThreadId,
        user: UserId,
        mark: ReadMark,
        max: UnreadMax,
    ) -> Result<ReadState> {
        self.write_checked("mark read", move |conn| {
            let (seq, back) = mark.as_target();
            move_position(conn, thread, user, seq, back)?;
            read_state(conn, thread, user, max)
        })
        .await
    }

    async fn read_states(
        &self,
        user: UserId,
        threads: &[ThreadId],
        max: UnreadMax,
    ) -> Result<Vec<ReadState>> {
        let threads = threads.to_vec();
        self.read("read states", move |tx| {
            threads
                .iter()
                .map(|&thread| read_state(tx, thread, user, max))
                .collect()
        })
        .await
    }

    async fn page(&self, thread: ThreadId, query: PageQuery, size: PageSize) -> Result<Page> {
        let take = (size.get() + 1) as i64;
        self.read("page", move |tx| {
            let position = head(tx, thread)?;
            let rows = match query {
                PageQuery::Newest => messages(tx, OLDER, thread, take, i64::MAX)?,
                PageQuery::Before(seq) => messages(tx, OLDER, thread, take, seq)?,
                PageQuery::After(seq) => messages(tx, NEWER, thread, take, seq)?,
            };
            Ok(Page::from_overfetch(rows, size, position))
        })
        .await
    }

    async fn around(&self, thread: ThreadId, id: MessageId, half: usize) -> Result<Around> {
        let take = (half + 1) as i64;
        self.read("around", move |tx| {
            let position = head(tx, thread)?;
            let (anchor, deleted_at) = find(tx, thread, id)?.ok_or(Error::NotFound)?;
            let before = messages(tx, OLDER, thread, take, anchor.seq)?;
            let after = messages(tx, NEWER, thread, take, anchor.seq)?;
            let anchor = deleted_at.is_none().then_some(anchor);
            Ok(Around::from_overfetch(
                before, anchor, after, half, position,
            ))
        })
        .await
    }

    async fn changes(&self, thread: ThreadId, since: i64, limit: ChangesLimit) -> Result<Changes> {
        let take = (limit.get() + 1) as i64;
        self.read("changes", move |tx| {
            let position = head(tx, thread)?;
            const CHANGES: &str = concat!(
                "SELECT ",
                columns!(),
                ", deleted_at, deleted_by, delete_reason FROM messages \
                 WHERE thread_id = ?1 AND rev > ?2 ORDER BY rev LIMIT ?3"
            );
            let mut stmt = tx.prepare_cached(CHANGES).map_err(db("changes"))?;
            let mut rows = stmt
                .query(params![thread.as_uuid(), since, take])
                .map_err(db("changes"))?;
            let mut changes = Vec::new();
            while let Some(row) = rows.next().map_err(db("changes"))? {
                let message = message_from_row(row, 0)?;
                let deleted_at: Option<i64> = row.get(COLUMNS).map_err(decode)?;
                changes.push(match deleted_at {
                    None => Change::Message(message),
                    Some(at) => Change::Deleted(Tombstone {
                        id: message.id,
                        thread_id: message.thread_id,
                        deleted_at: timestamp(at)?,
                        deleted_by: row
                            .get::<_, Option<uuid::Uuid>>(COLUMNS + 1)
                            .map_err(decode)?
                            .map(UserId::from_uuid),
                        reason: row.get(COLUMNS + 2).map_err(decode)?,
                        seq: message.seq,
                        rev: message.rev,
                    }),
                });
            }
            Ok(Changes::from_overfetch(
                changes,
                since,
                position,
                limit.get(),
            ))
        })
        .await
    }

    async fn locate(&self, thread: ThreadId, id: MessageId) -> Result<Option<i64>> {
        self.read("locate", move |tx| {
            tx.prepare_cached("SELECT seq FROM messages WHERE thread_id = ?1 AND id = ?2")
                .and_then(|mut stmt| {
                    stmt.query_row(params![thread.as_uuid(), id.as_uuid()], |row| row.get(0))
                        .optional()
                })
                .map_err(db("locate"))
        })
        .await
    }

    async fn head(&self, thread: ThreadId) -> Result<i64> {
        self.read("head", move |tx| head(tx, thread)).await
    }

    async fn ping(&self) -> Result<()> {
        self.read("ping", |tx| {
            tx.query_row("SELECT 1", [], |_| Ok(())).map_err(db("ping"))
        })
        .await
    }
}
