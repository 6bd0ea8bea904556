//! Reply conversations on SQLite: following and positions are writes on the writer, the
//! inbox a read. A reply's follows are written by the create (`follow_on_reply`).

use async_trait::async_trait;
use rusqlite::{Connection, params};

use super::SqliteStore;
use super::command::{Command, Statements, Undo};
use super::error::db;
use super::rows::{columns, decode, find_live, head, message_from_row};
use crate::conversation::{
    self, Conversation, FollowRequest, Inbox, InboxCursor, InboxEntry, RepliesReadRequest, Unread,
};
use crate::error::{Error, Result};
use crate::message::{Mentions, Message, MessageId, ThreadId, UserId};
use crate::page::PageSize;
use crate::read::{ThreadList, UnreadMax};
use crate::storage::ConversationStore;

#[async_trait]
impl ConversationStore for SqliteStore {
    async fn follow(&self, request: FollowRequest) -> Result<Conversation> {
        self.write(request, Command::Follow).await
    }

    async fn mark_replies_read(&self, request: RepliesReadRequest) -> Result<Conversation> {
        self.write(request, Command::RepliesRead).await
    }

    async fn inbox(
        &self,
        user: UserId,
        threads: &ThreadList,
        after: Option<InboxCursor>,
        size: PageSize,
        max: UnreadMax,
    ) -> Result<Inbox> {
        let threads = threads.clone();
        self.read("inbox", move |tx| {
            let mut roots = Vec::new();
            for &thread in threads.as_slice() {
                roots.extend(followed(tx, thread, user)?);
            }
            let items = Inbox::page_roots(roots, after, size.get())
                .into_iter()
                .map(|root| {
                    let conversation = state(tx, root.thread_id, root.id, user, max)?;
                    Ok(InboxEntry { root, conversation })
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(Inbox::from_overfetch(items, size.get()))
        })
        .await
    }
}

/// Follows or unfollows as asked, the rest of the row kept.
const FOLLOW: &str = "INSERT INTO reply_follows (thread_id, root_id, user_id, following) \
     VALUES (?1, ?2, ?3, ?4) \
     ON CONFLICT (thread_id, root_id, user_id) DO UPDATE SET following = excluded.following";

/// Moves a position forward to ?4, following kept (not following for a new row).
const MOVE: &str = "INSERT INTO reply_follows (thread_id, root_id, user_id, following, seq) \
     VALUES (?1, ?2, ?3, 0, ?4) \
     ON CONFLICT (thread_id, root_id, user_id) DO UPDATE SET seq = max(seq, excluded.seq)";

/// A reply's author follows with their reply read.
const REPLIER: &str = "INSERT INTO reply_follows (thread_id, root_id, user_id, following, seq) \
     VALUES (?1, ?2, ?3, 1, ?4) \
     ON CONFLICT (thread_id, root_id, user_id) DO UPDATE \
     SET following = 1, seq = max(seq, excluded.seq)";

/// A root's author follows, unless a row says otherwise already.
const ROOT_AUTHOR: &str = "INSERT INTO reply_follows (thread_id, root_id, user_id, following, seq) \
     VALUES (?1, ?2, ?3, 1, 0) ON CONFLICT (thread_id, root_id, user_id) DO NOTHING";

/// A user's row of a conversation: following and position.
const ROW: &str = "SELECT following, seq FROM reply_follows \
     WHERE thread_id = ?1 AND root_id = ?2 AND user_id = ?3";

/// The live replies of root ?2 after ?3 that others than ?4 wrote, counted up to ?5, the
/// first of them, and how many of those counted are filed under ?4's or the room's (?6)
/// mention key.
const UNREAD: &str = "SELECT count(*), min(seq), count(mentioned) \
     FROM (SELECT m.seq, (SELECT 1 FROM mentions x \
                          WHERE x.thread_id = ?1 AND x.user_id IN (?4, ?6) AND x.seq = m.seq \
                          LIMIT 1) AS mentioned \
           FROM messages m \
           WHERE m.thread_id = ?1 AND m.root_id = ?2 AND m.deleted_at IS NULL AND m.seq > ?3 \
             AND m.user_id <> ?4 \
           ORDER BY m.seq LIMIT ?5)";

/// The live roots with live replies that user ?2 follows in thread ?1.
const FOLLOWED: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM messages WHERE thread_id = ?1 AND deleted_at IS NULL AND reply_count > 0 \
     AND id IN (SELECT root_id FROM reply_follows \
                WHERE user_id = ?2 AND thread_id = ?1 AND following = 1)"
);

/// After a reply to the live `root`: its author follows with the reply read, the root's
/// author follows unless they chose not to.
pub(super) fn follow_on_reply(conn: &Connection, root: &Message, reply: &Message) -> Result<()> {
    let (thread, id) = (root.thread_id.as_uuid(), root.id.as_uuid());
    conn.prepare_cached(REPLIER)
        .and_then(|mut s| s.execute(params![thread, id, reply.user_id.as_uuid(), reply.seq]))
        .map_err(db("follow"))?;
    conn.prepare_cached(ROOT_AUTHOR)
        .and_then(|mut s| s.execute(params![thread, id, root.user_id.as_uuid()]))
        .map_err(db("follow"))?;
    Ok(())
}

/// The live root `id` of the thread, or `NotFound` (a reply is no root).
fn live_root(conn: &Connection, thread: ThreadId, id: MessageId) -> Result<Message> {
    find_live(conn, thread, id)?
        .filter(|m| m.reply_to.is_none())
        .ok_or(Error::NotFound)
}

/// `user`'s state in the conversation of `root`.
fn state(
    conn: &Connection,
    thread: ThreadId,
    root: MessageId,
    user: UserId,
    max: UnreadMax,
) -> Result<Conversation> {
    let (t, r, u) = (thread.as_uuid(), root.as_uuid(), user.as_uuid());
    let mut stmt = conn.prepare_cached(ROW).map_err(db("conversation"))?;
    let mut rows = stmt.query(params![t, r, u]).map_err(db("conversation"))?;
    let (following, seq) = match rows.next().map_err(db("conversation"))? {
        Some(row) => (
            row.get::<_, bool>(0).map_err(decode)?,
            row.get::<_, i64>(1).map_err(decode)?,
        ),
        None => (false, 0),
    };
    let take = (max.get() + 1) as i64;
    let (counted, first, mentions): (i64, Option<i64>, i64) = conn
        .prepare_cached(UNREAD)
        .and_then(|mut s| {
            s.query_row(params![t, r, seq, u, take, Mentions::ROOM], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
        })
        .map_err(db("unread replies"))?;
    Ok(Conversation::from_unread(
        thread,
        root,
        following,
        seq,
        Unread::new(counted.max(0) as u64, first, mentions.max(0) as u64),
        max,
    ))
}

/// The live roots with live replies `user` follows in `thread`.
fn followed(conn: &Connection, thread: ThreadId, user: UserId) -> Result<Vec<Message>> {
    let mut stmt = conn.prepare_cached(FOLLOWED).map_err(db("inbox"))?;
    let mut rows = stmt
        .query(params![thread.as_uuid(), user.as_uuid()])
        .map_err(db("inbox"))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(db("inbox"))? {
        out.push(message_from_row(row, 0)?);
    }
    Ok(out)
}

/// A follow refuses before it writes: no savepoint.
impl Statements for FollowRequest {
    type Output = Conversation;
    const WHAT: &'static str = "follow";
    const UNDO: Undo = Undo::Transaction;

    fn write(self, conn: &Connection) -> Result<Conversation> {
        live_root(conn, self.thread, self.root)?;
        conn.prepare_cached(FOLLOW)
            .and_then(|mut s| {
                s.execute(params![
                    self.thread.as_uuid(),
                    self.root.as_uuid(),
                    self.user.as_uuid(),
                    self.follow
                ])
            })
            .map_err(db("follow"))?;
        state(conn, self.thread, self.root, self.user, self.max)
    }
}

/// A move refuses before it writes: no savepoint.
impl Statements for RepliesReadRequest {
    type Output = Conversation;
    const WHAT: &'static str = "mark replies read";
    const UNDO: Undo = Undo::Transaction;

    fn write(self, conn: &Connection) -> Result<Conversation> {
        live_root(conn, self.thread, self.root)?;
        let seq = conversation::advance(0, self.seq, head(conn, self.thread)?);
        conn.prepare_cached(MOVE)
            .and_then(|mut s| {
                s.execute(params![
                    self.thread.as_uuid(),
                    self.root.as_uuid(),
                    self.user.as_uuid(),
                    seq
                ])
            })
            .map_err(db("mark replies read"))?;
        state(conn, self.thread, self.root, self.user, self.max)
    }
}
