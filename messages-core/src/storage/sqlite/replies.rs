//! Reply threads on SQLite: a root's summary written with its number, the live replies a
//! recount and a page read. The summary itself is decided by the core's `replies` rules.

use rusqlite::{Connection, params};

use super::error::db;
use super::rows::{bump, columns, decode, find_live, message_from_row, push_event, timestamp};
use crate::error::Result;
use crate::message::ReplySummary;
use crate::message::{Message, MessageId, ThreadId, Timestamp, UserId};
use crate::replies::{self, LiveReply, Participants};

/// The root's summary and its number.
const WRITE_SUMMARY: &str = "UPDATE messages SET reply_count = ?3, last_reply_at = ?4, \
     last_reply_id = ?5, reply_users = ?6, rev = ?7 WHERE thread_id = ?1 AND id = ?2";

/// A root's live replies, newest first.
const LIVE_REPLIES: &str = "SELECT id, user_id, created_at FROM messages \
     WHERE thread_id = ?1 AND root_id = ?2 AND deleted_at IS NULL ORDER BY seq DESC";

/// A root's live replies after ?3, oldest first, at most ?4.
pub(super) const PAGE: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM messages WHERE thread_id = ?1 AND root_id = ?2 AND seq > ?3 AND deleted_at IS NULL \
     ORDER BY seq ASC LIMIT ?4"
);

/// Numbers a change of `root`'s replies (a live root): its summary becomes `summary`, the
/// change takes the thread's next number, its event is written.
pub(super) fn write_root(
    conn: &Connection,
    mut root: Message,
    summary: Option<ReplySummary>,
    at: Timestamp,
) -> Result<Message> {
    let rev = bump(conn, root.thread_id)?;
    let event = replies::renumber_root(&mut root, summary, rev, at);
    let replies = root.replies.as_deref();
    conn.prepare_cached(WRITE_SUMMARY)
        .and_then(|mut stmt| {
            stmt.execute(params![
                root.thread_id.as_uuid(),
                root.id.as_uuid(),
                replies.map_or(0, |s| s.count),
                replies.map(|s| s.last_reply_at.as_micros()),
                replies.map(|s| *s.last_reply_id.as_uuid()),
                replies.map_or_else(String::new, |s| replies::participants_to_text(
                    &s.participants
                )),
                rev,
            ])
        })
        .map_err(db("write the root's replies"))?;
    push_event(conn, &event, root.seq, rev)?;
    Ok(root)
}

/// After replies went: each live root among `roots` (once, in the order given) recounted
/// from its live replies and numbered.
pub(super) fn recount_roots(
    conn: &Connection,
    thread: ThreadId,
    roots: impl IntoIterator<Item = MessageId>,
    participants: Participants,
    at: Timestamp,
) -> Result<()> {
    let mut seen = Vec::new();
    for root in roots {
        if seen.contains(&root) {
            continue;
        }
        seen.push(root);
        let Some(message) = find_live(conn, thread, root)? else {
            continue;
        };
        let summary = replies::recount(live_replies(conn, thread, root)?, participants);
        write_root(conn, message, summary, at)?;
    }
    Ok(())
}

/// A root's live replies, newest first.
fn live_replies(conn: &Connection, thread: ThreadId, root: MessageId) -> Result<Vec<LiveReply>> {
    let mut stmt = conn
        .prepare_cached(LIVE_REPLIES)
        .map_err(db("read replies"))?;
    let mut rows = stmt
        .query(params![thread.as_uuid(), root.as_uuid()])
        .map_err(db("read replies"))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(db("read replies"))? {
        out.push(LiveReply {
            id: MessageId::from_uuid(row.get(0).map_err(decode)?),
            user_id: UserId::from_uuid(row.get(1).map_err(decode)?),
            created_at: timestamp(row.get(2).map_err(decode)?)?,
        });
    }
    Ok(out)
}

/// A page of a root's live replies after `after`, at most `take`.
pub(super) fn page(
    conn: &Connection,
    thread: ThreadId,
    root: MessageId,
    after: i64,
    take: i64,
) -> Result<Vec<Message>> {
    let mut stmt = conn.prepare_cached(PAGE).map_err(db("read replies"))?;
    let mut rows = stmt
        .query(params![thread.as_uuid(), root.as_uuid(), after, take])
        .map_err(db("read replies"))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(db("read replies"))? {
        out.push(message_from_row(row, 0)?);
    }
    Ok(out)
}
