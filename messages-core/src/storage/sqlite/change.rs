//! Edits and removals on SQLite: each a write on the writer, decided by the core's rules.

use async_trait::async_trait;
use rusqlite::{Connection, params};

use super::SqliteStore;
use super::command::{Command, Statements, Undo};
use super::error::db;
use super::replies::recount_roots;
use super::rows::{
    bump, file_mentions, find_live, mentions_column, paths_json, push_event, unfile_mentions,
};
use crate::error::Result;
use crate::message::{Message, MessageId, ThreadId, Tombstone};
use crate::rules::{self, Removed};
use crate::storage::ChangeStore;
use crate::write::{BulkDeleteRequest, DeleteRequest, EditRequest};

#[async_trait]
impl ChangeStore for SqliteStore {
    async fn edit(&self, request: EditRequest) -> Result<Message> {
        self.write(request, Command::Edit).await
    }

    async fn delete(&self, request: DeleteRequest) -> Result<Tombstone> {
        self.write(request, Command::Delete).await
    }

    async fn delete_many(&self, request: BulkDeleteRequest) -> Result<Vec<Tombstone>> {
        self.write(request, Command::DeleteMany).await
    }
}

/// The edit: the new content numbered, the replaced version kept.
const EDIT: &str = "UPDATE messages SET content = ?3, paths = ?4, updated_at = ?5, rev = ?6, \
     mentions = ?7 WHERE thread_id = ?1 AND id = ?2";
const KEEP_REPLACED: &str = "INSERT INTO message_edits \
     (thread_id, message_id, replaced_by, content, paths, made_at, mentions) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

/// An edit reads what could refuse it before it writes: no savepoint.
impl Statements for EditRequest {
    type Output = Message;
    const WHAT: &'static str = "update";
    const UNDO: Undo = Undo::Transaction;

    fn write(self, conn: &Connection) -> Result<Message> {
        let current = find_live(conn, self.thread, self.id)?;
        let mut edit = rules::edit(current.as_ref(), &self)?;
        let rev = bump(conn, self.thread)?;
        edit.number(rev);
        let (message, replaced) = (&edit.message, &edit.replaced);
        let (thread, id) = (self.thread.as_uuid(), self.id.as_uuid());
        conn.prepare_cached(EDIT)
            .and_then(|mut stmt| {
                stmt.execute(params![
                    thread,
                    id,
                    message.content,
                    paths_json(&message.paths),
                    message.updated_at.as_micros(),
                    rev,
                    mentions_column(message.mentions.as_ref()),
                ])
            })
            .map_err(db("update message"))?;
        conn.prepare_cached(KEEP_REPLACED)
            .and_then(|mut stmt| {
                stmt.execute(params![
                    thread,
                    id,
                    rev,
                    replaced.content,
                    paths_json(&replaced.paths),
                    replaced.made_at.as_micros(),
                    mentions_column(replaced.mentions.as_ref()),
                ])
            })
            .map_err(db("keep the replaced version"))?;
        if message.mentions != replaced.mentions {
            file_mentions(conn, message, message.seq)?;
        }
        push_event(conn, &edit.event, message.seq, rev)?;
        Ok(edit.message)
    }
}

/// A removal reads what could refuse it before it writes: no savepoint.
impl Statements for DeleteRequest {
    type Output = Tombstone;
    const WHAT: &'static str = "delete";
    const UNDO: Undo = Undo::Transaction;

    fn write(self, conn: &Connection) -> Result<Tombstone> {
        let found = find_live(conn, self.thread, self.id)?;
        let removed = rules::remove(
            self.thread,
            self.id,
            found.as_ref().map(|m| m.user_id),
            &self.removal,
            self.at,
        )?;
        let (seq, root) = found.map_or((0, None), |m| (m.seq, m.root_id));
        let tombstone = write_removal(conn, &removed, seq)?;
        recount_roots(conn, self.thread, root, self.participants, self.at)?;
        Ok(tombstone)
    }
}

/// A bulk removal reads every message before it writes any, and so needs no savepoint either;
/// it has one all the same, so a failure past the first write can never leave half of it.
impl Statements for BulkDeleteRequest {
    type Output = Vec<Tombstone>;
    const WHAT: &'static str = "delete many";
    const UNDO: Undo = Undo::Savepoint;

    fn write(self, conn: &Connection) -> Result<Vec<Tombstone>> {
        let mut found = Vec::with_capacity(self.ids.as_slice().len());
        let mut seqs = Vec::with_capacity(found.capacity());
        let mut roots = Vec::new();
        for &id in self.ids.as_slice() {
            let live = find_live(conn, self.thread, id)?;
            seqs.push(live.as_ref().map_or(0, |m| m.seq));
            roots.extend(live.as_ref().and_then(|m| m.root_id));
            found.push((id, live.map(|m| m.user_id)));
        }
        rules::may_remove_all(&found, &self.removal)?;
        let tombstones = found
            .iter()
            .zip(seqs)
            .map(|(&(id, author), seq)| {
                let removed = rules::remove(self.thread, id, author, &self.removal, self.at)?;
                write_removal(conn, &removed, seq)
            })
            .collect::<Result<Vec<_>>>()?;
        recount_roots(conn, self.thread, roots, self.participants, self.at)?;
        Ok(tombstones)
    }
}

/// Writes a removal the rules allowed, of a live message numbered `seq`: numbered, its
/// history, reactions and mentions forgotten, its event written.
fn write_removal(conn: &Connection, removed: &Removed, seq: i64) -> Result<Tombstone> {
    let (thread, id): (ThreadId, MessageId) = (removed.thread, removed.id);
    let rev = bump(conn, thread)?;
    let deletion = &removed.deletion;
    conn.prepare_cached(
        "UPDATE messages SET deleted_at = ?3, rev = ?4, deleted_by = ?5, delete_reason = ?6 \
         WHERE thread_id = ?1 AND id = ?2",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            thread.as_uuid(),
            id.as_uuid(),
            deletion.at.as_micros(),
            rev,
            deletion.by.map(|u| *u.as_uuid()),
            deletion.reason,
        ])
    })
    .map_err(db("delete message"))?;
    unfile_mentions(conn, thread, seq)?;
    for forget in [
        "DELETE FROM message_edits WHERE thread_id = ?1 AND message_id = ?2",
        "DELETE FROM reactions WHERE thread_id = ?1 AND message_id = ?2",
    ] {
        conn.prepare_cached(forget)
            .and_then(|mut stmt| stmt.execute(params![thread.as_uuid(), id.as_uuid()]))
            .map_err(db("delete message"))?;
    }
    push_event(conn, &removed.event, seq, rev)?;
    Ok(removed.tombstone(seq, rev))
}
