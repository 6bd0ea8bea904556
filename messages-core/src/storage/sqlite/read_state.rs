//! Readers' positions on SQLite: a move is a write on the writer, the states a read.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use super::command::{Command, Statements, Undo};
use super::error::db;
use super::rows::{columns, message_from_row};
use crate::error::Result;
use crate::message::{Mentions, Message, ThreadId, UserId};
use crate::newest::{NewestCursor, NewestPage};
use crate::page::PageSize;
use crate::read::{ReadState, ThreadList, UnreadMax};
use crate::storage::ReadStateStore;
use crate::write::MarkReadRequest;

#[async_trait]
impl ReadStateStore for SqliteStore {
    async fn mark_read(&self, request: MarkReadRequest) -> Result<ReadState> {
        self.write(request, Command::MarkRead).await
    }

    async fn read_states(
        &self,
        user: UserId,
        threads: &ThreadList,
        max: UnreadMax,
    ) -> Result<Vec<ReadState>> {
        let threads = threads.clone();
        self.read("read states", move |tx| {
            threads
                .as_slice()
                .iter()
                .map(|&thread| read_state(tx, thread, user, max))
                .collect()
        })
        .await
    }

    async fn mentions(
        &self,
        user: UserId,
        threads: &ThreadList,
        after: Option<NewestCursor>,
        size: PageSize,
        unread_only: bool,
    ) -> Result<NewestPage> {
        let threads = threads.clone();
        self.read("mentions", move |tx| {
            let mut found = Vec::new();
            for &thread in threads.as_slice() {
                found.extend(mentions_in(tx, thread, user, after, size, unread_only)?);
            }
            Ok(NewestPage::from_candidates(found, after, size.get()))
        })
        .await
    }
}

/// The live messages of thread $1 others wrote that are filed under the reader's ($2) or the
/// room's ($3) mention key after position $4, newest first from id $5 (when given) on, at most
/// $6: the page's candidates from this thread (the cursor's own thread and id are told apart
/// by the caller).
const MENTIONS: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM messages
    WHERE thread_id = ?1
      AND seq IN (SELECT x.seq FROM mentions x
                  WHERE x.thread_id = ?1 AND x.user_id IN (?2, ?3) AND x.seq > ?4
                    AND x.author <> ?2 AND (?5 IS NULL OR x.id <= ?5)
                  ORDER BY x.id DESC LIMIT ?6)
    ORDER BY id DESC"
);

/// The candidates of a page of `user`'s mentions in `thread`.
fn mentions_in(
    conn: &Connection,
    thread: ThreadId,
    user: UserId,
    after: Option<NewestCursor>,
    size: PageSize,
    unread_only: bool,
) -> Result<Vec<Message>> {
    let from = match unread_only {
        true => position(conn, thread, user)?,
        false => 0,
    };
    let mut stmt = conn.prepare_cached(MENTIONS).map_err(db("mentions"))?;
    let mut rows = stmt
        .query(params![
            thread.as_uuid(),
            user.as_uuid(),
            Mentions::ROOM,
            from,
            after.map(|a| *a.id.as_uuid()),
            // One more for `has_more`, and one for the cursor's own message.
            size.get() as i64 + 2,
        ])
        .map_err(db("mentions"))?;
    let mut found = Vec::new();
    while let Some(row) = rows.next().map_err(db("mentions"))? {
        found.push(message_from_row(row, 0)?);
    }
    Ok(found)
}

/// A reader's position in a thread: 0 when never set.
fn position(conn: &Connection, thread: ThreadId, user: UserId) -> Result<i64> {
    conn.prepare_cached(POSITION)
        .and_then(|mut stmt| {
            stmt.query_row(params![thread.as_uuid(), user.as_uuid()], |r| r.get(0))
                .optional()
        })
        .map(Option::unwrap_or_default)
        .map_err(db("read position"))
}

const POSITION: &str = "SELECT seq FROM read_positions WHERE thread_id = ?1 AND user_id = ?2";

/// A move refuses nothing: no savepoint.
impl Statements for MarkReadRequest {
    type Output = ReadState;
    const WHAT: &'static str = "mark read";
    const UNDO: Undo = Undo::Transaction;

    fn write(self, conn: &Connection) -> Result<ReadState> {
        let (seq, back) = self.mark.as_target();
        move_position(conn, self.thread, self.user, seq, back)?;
        read_state(conn, self.thread, self.user, self.max)
    }
}

/// Moves a reader's position ($2 in thread $1) to $3, clamped to 0..head, only forward unless
/// $4 (which sets it, backwards too).
const MOVE: &str = "
    INSERT INTO read_positions (thread_id, user_id, seq)
    VALUES (?1, ?2, max(0, min(?3, coalesce((SELECT head FROM threads WHERE thread_id = ?1), 0))))
    ON CONFLICT (thread_id, user_id) DO UPDATE
    SET seq = CASE WHEN ?4 THEN excluded.seq ELSE max(seq, excluded.seq) END";

/// A reader's ($2) position in thread $1 (0 when never set), with the number of live messages
/// after it that others wrote, counted up to $3, the first of them, and how many of those
/// counted address the reader (filed under their id or the room's, $4).
const STATE: &str = "
    WITH p AS (SELECT coalesce((SELECT seq FROM read_positions
                                WHERE thread_id = ?1 AND user_id = ?2), 0) AS seq)
    SELECT p.seq, count(u.seq), min(u.seq), count(u.mentioned)
    FROM p
    LEFT JOIN (SELECT m.seq,
                      (SELECT 1 FROM mentions x
                       WHERE x.thread_id = ?1 AND x.user_id IN (?2, ?4) AND x.seq = m.seq
                       LIMIT 1) AS mentioned
               FROM messages m
               WHERE m.thread_id = ?1 AND m.deleted_at IS NULL AND m.user_id <> ?2
                 AND m.seq > (SELECT seq FROM p)
               ORDER BY m.seq LIMIT ?3) u";

/// Moves `user`'s read position to `seq` or, with `back`, sets it there; never past the head.
pub(super) fn move_position(
    conn: &Connection,
    thread: ThreadId,
    user: UserId,
    seq: i64,
    back: bool,
) -> Result<()> {
    conn.prepare_cached(MOVE)
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
    conn.prepare_cached(STATE)
        .and_then(|mut stmt| {
            stmt.query_row(
                params![
                    thread.as_uuid(),
                    user.as_uuid(),
                    max.get() as i64 + 1,
                    Mentions::ROOM
                ],
                |row| {
                    let seq: i64 = row.get(0)?;
                    let counted: i64 = row.get(1)?;
                    let first: Option<i64> = row.get(2)?;
                    let mentions: i64 = row.get(3)?;
                    Ok((seq, counted, first, mentions))
                },
            )
        })
        .map_err(db("read state"))
        .map(|(seq, counted, first, mentions)| {
            let (counted, mentions) = (counted.max(0) as u64, mentions.max(0) as u64);
            ReadState::from_unread(thread, seq, counted, first, mentions, max)
        })
}
