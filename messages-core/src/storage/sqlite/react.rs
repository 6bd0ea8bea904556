//! Reactions on SQLite: a change is a write on the writer, decided by `reaction::plan`; each
//! holder's row is kept with the number of the change that added it, so the next holder is
//! the earliest.

use async_trait::async_trait;
use rusqlite::{Connection, params};

use super::SqliteStore;
use super::command::{Command, Statements, Undo};
use super::error::db;
use super::rows::{bump, decode, find_live, push_event};
use crate::error::{Error, Result};
use crate::message::{Emoji, Message, MessageId, ThreadId, UserId};
use crate::reaction::{
    self, ClearRequest, Plan, Reacted, ReactionChange, ReactionRequest, Reactors, ReactorsLimit,
};
use crate::storage::ReactionStore;

#[async_trait]
impl ReactionStore for SqliteStore {
    async fn react(&self, request: ReactionRequest) -> Result<Reacted> {
        self.write(request, Command::React).await
    }

    async fn clear_reactions(&self, request: ClearRequest) -> Result<Reacted> {
        self.write(request, Command::Clear).await
    }

    async fn reactors(
        &self,
        thread: ThreadId,
        id: MessageId,
        emoji: &Emoji,
        after: Option<UserId>,
        limit: ReactorsLimit,
    ) -> Result<Reactors> {
        let emoji = emoji.clone();
        self.read("reactors", move |tx| {
            let message = find_live(tx, thread, id)?.ok_or(Error::NotFound)?;
            let count = reaction::count(&message.reactions, &emoji);
            let take = (limit.get() + 1) as i64;
            let (t, m, e) = (thread.as_uuid(), id.as_uuid(), emoji.as_str());
            let users = match after {
                None => holders(tx, HOLDERS_FIRST, params![t, m, e, take])?,
                Some(after) => holders(tx, HOLDERS_AFTER, params![t, m, e, take, after.as_uuid()])?,
            };
            Ok(Reactors::from_overfetch(emoji, count, users, limit))
        })
        .await
    }
}

/// The holders of an emoji ($3) of a message, by user id, at most $4.
const HOLDERS_FIRST: &str = "SELECT user_id FROM reactions \
     WHERE thread_id = ?1 AND message_id = ?2 AND emoji = ?3 ORDER BY user_id LIMIT ?4";
/// The same, after a user id ($5).
const HOLDERS_AFTER: &str = "SELECT user_id FROM reactions \
     WHERE thread_id = ?1 AND message_id = ?2 AND emoji = ?3 AND user_id > ?5 \
     ORDER BY user_id LIMIT ?4";

fn holders(conn: &Connection, sql: &str, params: &[&dyn rusqlite::ToSql]) -> Result<Vec<UserId>> {
    let mut stmt = conn.prepare_cached(sql).map_err(db("reactors"))?;
    let users = stmt
        .query_map(params, |row| row.get::<_, uuid::Uuid>(0))
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(db("reactors"))?;
    Ok(users.into_iter().map(UserId::from_uuid).collect())
}

/// Whether the user holds the emoji on the message.
const HOLDS: &str = "SELECT 1 FROM reactions \
     WHERE thread_id = ?1 AND message_id = ?2 AND emoji = ?3 AND user_id = ?4";
/// Every holder of an emoji, earliest first.
const HOLDERS_IN_ORDER: &str = "SELECT user_id FROM reactions \
     WHERE thread_id = ?1 AND message_id = ?2 AND emoji = ?3 ORDER BY rev";
const ADD: &str = "INSERT INTO reactions (thread_id, message_id, emoji, user_id, rev) \
     VALUES (?1, ?2, ?3, ?4, ?5)";
const REMOVE: &str = "DELETE FROM reactions \
     WHERE thread_id = ?1 AND message_id = ?2 AND emoji = ?3 AND user_id = ?4";
const SUMMARY: &str =
    "UPDATE messages SET reactions = ?3, rev = ?4 WHERE thread_id = ?1 AND id = ?2";

/// A reaction change reads what could refuse it before it writes: no savepoint.
impl Statements for ReactionRequest {
    type Output = Reacted;
    const WHAT: &'static str = "react";
    const UNDO: Undo = Undo::Transaction;

    fn write(self, conn: &Connection) -> Result<Reacted> {
        let (thread, id, user) = (self.thread, self.id, self.user);
        let mut message = find_live(conn, thread, id)?.ok_or(Error::NotFound)?;
        let key = params![
            thread.as_uuid(),
            id.as_uuid(),
            self.emoji.as_str(),
            user.as_uuid()
        ];
        let holds = conn
            .prepare_cached(HOLDS)
            .and_then(|mut stmt| stmt.exists(key))
            .map_err(db("react"))?;
        let next = if reaction::needs_next_holder(&message.reactions, &self) {
            next_holder(conn, &message, &self.emoji, user)?
        } else {
            None
        };
        let Plan::Changed { summary, event, .. } =
            reaction::plan(&message.reactions, holds, next, &self)?
        else {
            return Ok(Reacted {
                message,
                changed: false,
            });
        };
        let rev = bump(conn, thread)?;
        let holder = match self.change {
            ReactionChange::Add => conn.prepare_cached(ADD).and_then(|mut stmt| {
                let (t, m, u) = (thread.as_uuid(), id.as_uuid(), user.as_uuid());
                stmt.execute(params![t, m, self.emoji.as_str(), u, rev])
            }),
            ReactionChange::Remove => conn
                .prepare_cached(REMOVE)
                .and_then(|mut stmt| stmt.execute(key)),
        };
        holder.map_err(db("react"))?;
        conn.prepare_cached(SUMMARY)
            .and_then(|mut stmt| {
                stmt.execute(params![
                    thread.as_uuid(),
                    id.as_uuid(),
                    reaction::summary_to_json(&summary),
                    rev
                ])
            })
            .map_err(db("react"))?;
        push_event(conn, &event, message.seq, rev)?;
        message.reactions = summary;
        message.rev = rev;
        Ok(Reacted {
            message,
            changed: true,
        })
    }
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
    let mut stmt = conn.prepare_cached(HOLDERS_IN_ORDER).map_err(db("react"))?;
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

/// Clearing reads what could refuse it before it writes: no savepoint.
impl Statements for ClearRequest {
    type Output = Reacted;
    const WHAT: &'static str = "clear reactions";
    const UNDO: Undo = Undo::Transaction;

    fn write(self, conn: &Connection) -> Result<Reacted> {
        let (thread, id) = (self.thread.as_uuid(), self.id.as_uuid());
        let mut message = find_live(conn, self.thread, self.id)?.ok_or(Error::NotFound)?;
        let Some(event) = reaction::plan_clear(&message, &self) else {
            return Ok(Reacted {
                message,
                changed: false,
            });
        };
        let rev = bump(conn, self.thread)?;
        conn.prepare_cached(
            "UPDATE messages SET reactions = '[]', rev = ?3 WHERE thread_id = ?1 AND id = ?2",
        )
        .and_then(|mut stmt| stmt.execute(params![thread, id, rev]))
        .map_err(db("clear reactions"))?;
        conn.prepare_cached("DELETE FROM reactions WHERE thread_id = ?1 AND message_id = ?2")
            .and_then(|mut stmt| stmt.execute(params![thread, id]))
            .map_err(db("clear reactions"))?;
        push_event(conn, &event, message.seq, rev)?;
        message.reactions.clear();
        message.rev = rev;
        Ok(Reacted {
            message,
            changed: true,
        })
    }
}
