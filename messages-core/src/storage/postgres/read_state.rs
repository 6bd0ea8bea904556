//! Readers' positions on PostgreSQL: a move and its count in one statement, a sidebar's states
//! in one statement, unread counts this process made reused while their thread and position
//! stay (`counts`).

use async_trait::async_trait;
use tokio_postgres::Row;

use super::counts::Counted;
use super::rows::message_from_row;
use super::{PostgresStore, db, decode};
use crate::error::{Error, Result};
use crate::message::{Mentions, ThreadId, UserId};
use crate::newest::{NewestCursor, NewestPage};
use crate::page::PageSize;
use crate::read::{ReadState, ThreadList, UnreadMax};
use crate::storage::ReadStateStore;
use crate::write::MarkReadRequest;

/// Moves a reader's position ($2 in thread $1) to $3 (clamped to 0..head), only forward
/// unless $4, then counts what is unread after it: the live messages others wrote, at most $5,
/// and those of them whose mention keys hold the reader's or the room's ($6), in the same pass.
/// No number of the sequence is taken and no event written.
const MARK_READ: &str = r#"
WITH moved AS (
    INSERT INTO read_positions AS r (thread_id, user_id, seq)
    VALUES ($1, $2, GREATEST(0, LEAST($3, COALESCE(
        (SELECT head FROM threads WHERE thread_id = $1), 0))))
    ON CONFLICT (thread_id, user_id) DO UPDATE
    SET seq = CASE WHEN $4 THEN excluded.seq ELSE GREATEST(r.seq, excluded.seq) END
    RETURNING seq
)
SELECT moved.seq, u.n, u.first, u.mentions
FROM moved, LATERAL (
    SELECT count(*) AS n, min(s.seq) AS first,
           count(*) FILTER (WHERE s.keys && ARRAY[$2, $6]::uuid[]) AS mentions
    FROM (
        SELECT m.seq, m.mention_keys AS keys FROM messages m
        WHERE m.thread_id = $1 AND m.deleted_at IS NULL AND m.seq > moved.seq
          AND m.user_id <> $2
        ORDER BY m.seq
        LIMIT $5
    ) s
) u
"#;

/// A reader's ($2) state in each thread of $1, in that order: the position (0 when never
/// set), the thread's head, and the live messages after the position that others wrote, at
/// most $3 of them, with those of them whose mention keys hold the reader's or the room's ($6),
/// counted in the same pass: `[count, first seq, mentions]`, or NULL where the head and the position are still
/// $4 and $5, the ones a count this process kept was made at (-1 where it keeps none; see
/// `counts`). One statement, so a whole sidebar is one round trip and one snapshot. The
/// positions and heads are joins, not a subquery per thread, so the plan looks each up by its
/// key or reads a small table once, whatever its statistics say.
const READ_STATES: &str = r#"
SELECT t.thread_id, COALESCE(r.seq, 0), COALESCE(h.head, 0),
       CASE WHEN COALESCE(h.head, 0) = t.known_head AND COALESCE(r.seq, 0) = t.known_seq
            THEN NULL
            ELSE (SELECT ARRAY[count(*), min(s.seq),
                               count(*) FILTER (WHERE s.keys && ARRAY[$2, $6]::uuid[])] FROM (
                      SELECT m.seq, m.mention_keys AS keys FROM messages m
                      WHERE m.thread_id = t.thread_id AND m.deleted_at IS NULL
                        AND m.seq > COALESCE(r.seq, 0) AND m.user_id <> $2
                      ORDER BY m.seq
                      LIMIT $3
                  ) s)
       END
FROM unnest($1::uuid[], $4::int8[], $5::int8[]) WITH ORDINALITY
     AS t(thread_id, known_head, known_seq, ord)
LEFT JOIN read_positions r ON r.thread_id = t.thread_id AND r.user_id = $2
LEFT JOIN threads h ON h.thread_id = t.thread_id
ORDER BY t.ord
"#;

/// A page's candidates: in each thread of $1 (each once), the live messages others wrote
/// that are filed under the reader's ($2) or the room's ($3) mention key, from id $4 (when
/// given) on; with $6 only those after the reader's position there; the newest $5 of all of
/// them chosen by id from the mention rows, and only those messages read. The caller tells the
/// cursor's own message apart (`NewestPage`).
const MENTIONS: &str = r#"
SELECT m.thread_id, m.id, m.user_id, m.kind, m.content, m.paths, m.created_at, m.updated_at,
       m.seq, m.rev, m.reply_to, m.reactions, m.root_id, m.reply_count, m.last_reply_at,
       m.last_reply_id, m.reply_users, m.mentions
FROM (
    SELECT x.thread_id, x.seq, x.id
    FROM (SELECT DISTINCT unnest($1::uuid[]) AS thread_id) t
    CROSS JOIN LATERAL (
        SELECT x.thread_id, x.seq, x.id FROM mentions x
        WHERE x.thread_id = t.thread_id AND x.user_id IN ($2, $3) AND x.author <> $2
          AND ($4::uuid IS NULL OR x.id <= $4)
          AND x.seq > CASE WHEN $6 THEN COALESCE(
              (SELECT r.seq FROM read_positions r
               WHERE r.thread_id = t.thread_id AND r.user_id = $2), 0) ELSE 0 END
    ) x
    ORDER BY x.id DESC, x.thread_id DESC
    LIMIT $5
) c
CROSS JOIN LATERAL (
    SELECT * FROM messages m WHERE m.thread_id = c.thread_id AND m.id = c.id OFFSET 0
) m
ORDER BY m.id DESC, m.thread_id DESC
"#;

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
    let mentions: i64 = row.try_get(at + 3).map_err(decode)?;
    Ok(ReadState::from_unread(
        thread,
        seq,
        counted.max(0) as u64,
        first,
        mentions.max(0) as u64,
        max,
    ))
}

#[async_trait]
impl ReadStateStore for PostgresStore {
    async fn mark_read(&self, request: MarkReadRequest) -> Result<ReadState> {
        let MarkReadRequest {
            thread,
            user,
            mark,
            max,
        } = request;
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
                    &[
                        thread.as_uuid(),
                        user.as_uuid(),
                        &seq,
                        &back,
                        &limit,
                        &Mentions::ROOM,
                    ],
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
        threads: &ThreadList,
        max: UnreadMax,
    ) -> Result<Vec<ReadState>> {
        let threads = threads.as_slice();
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
                    &[
                        &ids,
                        user.as_uuid(),
                        &limit,
                        &known_heads,
                        &known_seqs,
                        &Mentions::ROOM,
                    ],
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
                            mentions: pair.get(2).copied().flatten().unwrap_or(0),
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
                    counted.mentions.max(0) as u64,
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

    async fn mentions(
        &self,
        user: UserId,
        threads: &ThreadList,
        after: Option<NewestCursor>,
        size: PageSize,
        unread_only: bool,
    ) -> Result<NewestPage> {
        self.timed("mentions", async {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(MENTIONS)
                .await
                .map_err(db("prepare"))?;
            let ids: Vec<uuid::Uuid> = threads.as_slice().iter().map(|t| *t.as_uuid()).collect();
            let cursor = after.map(|a| *a.id.as_uuid());
            // One more for `has_more`, and one for the cursor's own message.
            let take = size.get() as i64 + 2;
            let rows = client
                .query(
                    &stmt,
                    &[
                        &ids,
                        user.as_uuid(),
                        &Mentions::ROOM,
                        &cursor,
                        &take,
                        &unread_only,
                    ],
                )
                .await
                .map_err(db("mentions"))?;
            let mut found = Vec::with_capacity(rows.len());
            for row in &rows {
                found.push(message_from_row(row, 0)?);
            }
            Ok(NewestPage::from_candidates(found, after, size.get()))
        })
        .await
    }
}
