//! The statements of the PostgreSQL message store, as plain SQL beside what each one does.
//! Every write bumps the thread's counter as its last step before the commit (see `messages`).
//! A bump is an `INSERT ... ON CONFLICT DO UPDATE` even where the thread's row exists: the
//! conflict is found through the primary key whatever the statistics say, where an `UPDATE` of
//! a table of a few hundred rows gets a cached plan that scans all of them (and their dead
//! versions) on every write.

// Every read begins with the thread's position, 0 for a thread never written, so the rows
// and the position come from one snapshot; a read that finds no row still returns that one
// (its message columns NULL). The message columns are always in the order
// `message_from_row` reads them: thread_id, id, user_id, kind, content, paths, created_at,
// updated_at, seq, rev, reply_to, reactions.

/// The newest page: the position, then up to $2 live messages newest first.
pub(super) const PAGE_NEWEST: &str = r#"
SELECT h.head, m.thread_id, m.id, m.user_id, m.kind, m.content, m.paths, m.created_at,
       m.updated_at, m.seq, m.rev, m.reply_to, m.reactions
FROM (SELECT COALESCE((SELECT head FROM threads WHERE thread_id = $1), 0) AS head) h
LEFT JOIN LATERAL (
    SELECT thread_id, id, user_id, kind, content, paths, created_at, updated_at, seq, rev,
           reply_to, reactions
    FROM messages
    WHERE thread_id = $1 AND deleted_at IS NULL
    ORDER BY seq DESC
    LIMIT $2
) m ON true
"#;

/// The page before `seq` $3, newest first.
pub(super) const PAGE_BEFORE: &str = r#"
SELECT h.head, m.thread_id, m.id, m.user_id, m.kind, m.content, m.paths, m.created_at,
       m.updated_at, m.seq, m.rev, m.reply_to, m.reactions
FROM (SELECT COALESCE((SELECT head FROM threads WHERE thread_id = $1), 0) AS head) h
LEFT JOIN LATERAL (
    SELECT thread_id, id, user_id, kind, content, paths, created_at, updated_at, seq, rev,
           reply_to, reactions
    FROM messages
    WHERE thread_id = $1 AND deleted_at IS NULL AND seq < $3
    ORDER BY seq DESC
    LIMIT $2
) m ON true
"#;

/// The page after `seq` $3, oldest first.
pub(super) const PAGE_AFTER: &str = r#"
SELECT h.head, m.thread_id, m.id, m.user_id, m.kind, m.content, m.paths, m.created_at,
       m.updated_at, m.seq, m.rev, m.reply_to, m.reactions
FROM (SELECT COALESCE((SELECT head FROM threads WHERE thread_id = $1), 0) AS head) h
LEFT JOIN LATERAL (
    SELECT thread_id, id, user_id, kind, content, paths, created_at, updated_at, seq, rev,
           reply_to, reactions
    FROM messages
    WHERE thread_id = $1 AND deleted_at IS NULL AND seq > $3
    ORDER BY seq ASC
    LIMIT $2
) m ON true
"#;

/// One statement: bump the thread's counter, insert the message numbered with it, insert its
/// event with the numbers beside its open body, move the author's read position up to it. A reused idempotency key fails the unique
/// index, which rolls back the whole statement, bump included: a replay takes no number. A
/// reply ($14) whose target the thread does not hold live bumps nothing and returns no row.
pub(super) const CREATE: &str = r#"
WITH target AS (
    SELECT $14::uuid IS NULL OR EXISTS (
        SELECT 1 FROM messages WHERE thread_id = $1 AND id = $14 AND deleted_at IS NULL
    ) AS live
), bump AS (
    INSERT INTO threads AS t (thread_id, head) SELECT $1, 1 FROM target WHERE live
    ON CONFLICT (thread_id) DO UPDATE SET head = t.head + 1
    RETURNING head
), ins AS (
    INSERT INTO messages (thread_id, id, user_id, kind, content, paths, created_at,
                          updated_at, idempotency_key, request_hash, seq, rev, reply_to)
    SELECT $1, $2, $3, $4, $5, $6, $7, $7, $8, $9, head, head, $14 FROM bump
    RETURNING seq
), ob AS (
    INSERT INTO outbox (id, kind, thread_id, time, payload, message_seq, rev)
    SELECT $10, $11, $1, $12, $13, seq, seq FROM ins
), seen AS (
    INSERT INTO read_positions AS r (thread_id, user_id, seq) SELECT $1, $3, seq FROM ins
    ON CONFLICT (thread_id, user_id) DO UPDATE SET seq = GREATEST(r.seq, excluded.seq)
) SELECT seq FROM ins
"#;

/// A group of creates, of any threads (see `batch`): each thread's counter bumped once by its
/// number of creates, in thread id order (two groups never wait on each other in a circle), then
/// each message and its event, numbered per thread in the order they queued, and each author's
/// read position moved up to their last. Answers each thread's head after the group. When a
/// reply's target ($14) is not live in its thread, nothing is written and no row returns: the
/// creates go in one by one.
pub(super) const CREATE_GROUP: &str = r#"
WITH rows AS (
    SELECT r.*, row_number() OVER (PARTITION BY r.thread_id ORDER BY r.n) AS k
    FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[],
                $7::timestamptz[], $8::text[], $9::bytea[], $10::uuid[], $11::text[],
                $12::timestamptz[], $13::bytea[], $14::uuid[]) WITH ORDINALITY
         AS r(thread_id, id, user_id, kind, content, paths, created_at, idempotency_key,
              request_hash, event_id, event_kind, event_time, payload, reply_to, n)
), targets AS (
    SELECT NOT EXISTS (
        SELECT 1 FROM rows r
        WHERE r.reply_to IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM messages m
            WHERE m.thread_id = r.thread_id AND m.id = r.reply_to AND m.deleted_at IS NULL
        )
    ) AS live
), counts AS (
    SELECT thread_id, count(*) AS c FROM rows GROUP BY thread_id
), bump AS (
    INSERT INTO threads AS t (thread_id, head)
    SELECT thread_id, c FROM counts, targets WHERE live ORDER BY thread_id
    ON CONFLICT (thread_id) DO UPDATE SET head = t.head + excluded.head
    RETURNING thread_id, head
), numbered AS (
    SELECT r.*, b.head - c.c + r.k AS seq
    FROM rows r JOIN counts c USING (thread_id) JOIN bump b USING (thread_id)
), ins AS (
    INSERT INTO messages (thread_id, id, user_id, kind, content, paths, created_at,
                          updated_at, idempotency_key, request_hash, seq, rev, reply_to)
    SELECT thread_id, id, user_id, kind, content,
           ARRAY(SELECT json_array_elements_text(paths::json)), created_at, created_at,
           idempotency_key, request_hash, seq, seq, reply_to
    FROM numbered ORDER BY n
), ob AS (
    INSERT INTO outbox (id, kind, thread_id, time, payload, message_seq, rev)
    SELECT event_id, event_kind, thread_id, event_time, payload, seq, seq
    FROM numbered ORDER BY n
), seen AS (
    INSERT INTO read_positions AS r (thread_id, user_id, seq)
    SELECT thread_id, user_id, max(seq) FROM numbered
    GROUP BY thread_id, user_id ORDER BY thread_id, user_id
    ON CONFLICT (thread_id, user_id) DO UPDATE SET seq = GREATEST(r.seq, excluded.seq)
) SELECT thread_id, head FROM bump
"#;

/// The message a key created, and the fingerprint of the request that created it.
pub(super) const ORIGINAL: &str = r#"
SELECT thread_id, id, user_id, kind, content, paths, created_at, updated_at, seq, rev,
       reply_to, reactions, request_hash
FROM messages
WHERE thread_id = $1 AND user_id = $2 AND idempotency_key = $3
"#;

/// One live message.
pub(super) const GET: &str = r#"
SELECT thread_id, id, user_id, kind, content, paths, created_at, updated_at, seq, rev,
       reply_to, reactions
FROM messages
WHERE thread_id = $1 AND id = $2 AND deleted_at IS NULL
"#;

/// An edit, first step: lock the live message (a concurrent edit, delete or reaction waits)
/// and read it as it is, for the service's patch and the version it replaces.
pub(super) const LOCK: &str = r#"
SELECT thread_id, id, user_id, kind, content, paths, created_at, updated_at, seq, rev,
       reply_to, reactions
FROM messages
WHERE thread_id = $1 AND id = $2 AND deleted_at IS NULL
FOR UPDATE
"#;

/// An edit, last step before the commit: bump the counter, write the new content numbered
/// with it, keep the replaced version ($6, $7, $8), write the event.
pub(super) const NUMBER_EDIT: &str = r#"
WITH bump AS (
    INSERT INTO threads AS t (thread_id, head) VALUES ($1, 1)
    ON CONFLICT (thread_id) DO UPDATE SET head = t.head + 1
    RETURNING head
), upd AS (
    UPDATE messages m SET content = $3, paths = $4, updated_at = $5, rev = bump.head FROM bump
    WHERE m.thread_id = $1 AND m.id = $2 RETURNING m.seq, m.rev
), old AS (
    INSERT INTO message_edits (thread_id, message_id, replaced_by, content, paths, made_at)
    SELECT $1, $2, rev, $6, $7, $8 FROM upd
), ob AS (
    INSERT INTO outbox (id, kind, thread_id, time, payload, message_seq, rev)
    SELECT $9, $10, $1, $11, $12, seq, rev FROM upd
) SELECT rev FROM upd
"#;

/// A reaction, first step: the live message as it is. No lock: the second step applies only
/// if the message's `rev` is still the one read here.
pub(super) const READ_FOR_REACTION: &str = r#"
SELECT thread_id, id, user_id, kind, content, paths, created_at, updated_at, seq, rev,
       reply_to, reactions
FROM messages
WHERE thread_id = $1 AND id = $2 AND deleted_at IS NULL
"#;

/// The first step read locked, inside a transaction, when optimism keeps losing: the
/// message's other changes wait until the reaction commits.
pub(super) const READ_FOR_REACTION_LOCKED: &str = r#"
SELECT thread_id, id, user_id, kind, content, paths, created_at, updated_at, seq, rev,
       reply_to, reactions
FROM messages
WHERE thread_id = $1 AND id = $2 AND deleted_at IS NULL
FOR UPDATE
"#;

/// The earliest holder of an emoji that the summary does not list ($4). `position IS NOT
/// NULL` (always true) is the predicate of the partial index `reactions_by_position`, which
/// only a statement that states it may use.
pub(super) const NEXT_HOLDER: &str = r#"
SELECT user_id FROM reactions
WHERE thread_id = $1 AND message_id = $2 AND emoji = $3 AND user_id <> ALL($4)
  AND position IS NOT NULL
ORDER BY position
LIMIT 1
"#;

/// A reaction, second step, one statement: if the live message is still at `rev` $3 (locked
/// now, so nothing changes it until the statement ends), add ($6 true) or remove the caller's
/// row, and when that changed it, bump the counter, write the summary $7 numbered with it and
/// the event. Answers one row: the new `rev` (NULL when nothing was written) and whether the
/// message was still live at $3. NULL and true: the caller's row was already as asked (every
/// reaction change moves `rev`, so the holders then are the holders now); false: the message
/// moved or was deleted since the first step. Whether the caller holds the reaction is learnt
/// here, from the insert's conflict or the delete's count, both on the primary key, rather than
/// by a lookup whose plan the statistics of a young table could turn into a scan.
pub(super) const REACT: &str = r#"
WITH cur AS (
    SELECT seq FROM messages
    WHERE thread_id = $1 AND id = $2 AND deleted_at IS NULL AND rev = $3
    FOR UPDATE
), added AS (
    INSERT INTO reactions (thread_id, message_id, emoji, user_id)
    SELECT $1, $2, $4, $5 FROM cur WHERE $6
    ON CONFLICT DO NOTHING RETURNING 1
), removed AS (
    DELETE FROM reactions
    WHERE thread_id = $1 AND message_id = $2 AND emoji = $4 AND user_id = $5 AND NOT $6
      AND EXISTS (SELECT 1 FROM cur)
    RETURNING 1
), bump AS (
    INSERT INTO threads AS t (thread_id, head)
    SELECT $1, 1 WHERE EXISTS (SELECT 1 FROM added) OR EXISTS (SELECT 1 FROM removed)
    ON CONFLICT (thread_id) DO UPDATE SET head = t.head + 1
    RETURNING head
), upd AS (
    UPDATE messages m SET reactions = $7, rev = bump.head FROM bump
    WHERE m.thread_id = $1 AND m.id = $2 RETURNING m.seq, m.rev
), ob AS (
    INSERT INTO outbox (id, kind, thread_id, time, payload, message_seq, rev)
    SELECT $8, $9, $1, $10, $11, seq, rev FROM upd
) SELECT (SELECT rev FROM upd), EXISTS (SELECT 1 FROM cur)
"#;

/// Which of the (emoji $3, user $4) pairs of a group of reaction changes hold their reaction
/// now, on a message the transaction holds: one lookup on the primary key per pair. Run
/// unprepared (`query_typed`), so it is planned for the message at hand: a generic plan
/// estimates one reaction per message. (It once took the position index, reading every holder
/// of the emoji of a popular message for each pair; that index is now partial, see
/// `V7__reactions_by_position_partial.sql`.)
pub(super) const HOLDINGS: &str = r#"
SELECT p.emoji, p.user_id
FROM unnest($3::text[], $4::uuid[]) AS p(emoji, user_id)
CROSS JOIN LATERAL (
    SELECT 1 FROM reactions r
    WHERE r.thread_id = $1 AND r.message_id = $2 AND r.emoji = p.emoji AND r.user_id = p.user_id
    LIMIT 1
) held
"#;

/// The reactions a group of changes takes away (emoji $3, user $4), of a message the
/// transaction holds; run unprepared, like `HOLDINGS`.
pub(super) const REMOVE_HELD: &str = r#"
DELETE FROM reactions
WHERE ctid = ANY (ARRAY(
    SELECT found.ctid
    FROM unnest($3::text[], $4::uuid[]) AS d(emoji, user_id)
    CROSS JOIN LATERAL (
        SELECT r.ctid FROM reactions r
        WHERE r.thread_id = $1 AND r.message_id = $2
          AND r.emoji = d.emoji AND r.user_id = d.user_id
        LIMIT 1
    ) found
))
"#;

/// A group of reaction changes of one message the transaction holds (see `reactions`), worked
/// out beforehand, after `REMOVE_HELD` took away the reactions it removes: the rows it adds
/// ($3, $4, in the order of their last change), one bump by its number of changes ($5), the
/// summary after the last ($6), and one event per change ($7..$10), numbered in order up to
/// the new head. Answers the message's new `rev`.
pub(super) const REACT_GROUP: &str = r#"
WITH added AS (
    INSERT INTO reactions (thread_id, message_id, emoji, user_id)
    SELECT $1, $2, a.emoji, a.user_id
    FROM unnest($3::text[], $4::uuid[]) WITH ORDINALITY AS a(emoji, user_id, n)
    ORDER BY a.n
), bump AS (
    INSERT INTO threads AS t (thread_id, head) SELECT $1, $5
    ON CONFLICT (thread_id) DO UPDATE SET head = t.head + $5
    RETURNING head
), upd AS (
    UPDATE messages m SET reactions = $6, rev = bump.head FROM bump
    WHERE m.thread_id = $1 AND m.id = $2 RETURNING m.seq, m.rev
), ob AS (
    INSERT INTO outbox (id, kind, thread_id, time, payload, message_seq, rev)
    SELECT e.id, e.kind, $1, e.time, e.payload, upd.seq, upd.rev - $5 + e.n
    FROM upd, unnest($7::uuid[], $8::text[], $9::timestamptz[], $10::bytea[])
         WITH ORDINALITY AS e(id, kind, time, payload, n)
    ORDER BY e.n
) SELECT rev FROM upd
"#;

/// Every reaction of a live message that has some, cleared as one change: the holders'
/// rows deleted, the summary emptied and numbered, the event ($3..$6) written. No row when
/// the message is not live or has no reaction.
pub(super) const CLEAR_REACTIONS: &str = r#"
WITH cur AS (
    SELECT seq FROM messages
    WHERE thread_id = $1 AND id = $2 AND deleted_at IS NULL AND reactions <> '[]'
    FOR UPDATE
), gone AS (
    DELETE FROM reactions
    WHERE thread_id = $1 AND message_id = $2 AND EXISTS (SELECT 1 FROM cur)
), bump AS (
    INSERT INTO threads AS t (thread_id, head) SELECT $1, 1 WHERE EXISTS (SELECT 1 FROM cur)
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

/// The holders of an emoji after a user id ($4), by id, at most $5, beside the message's
/// summary; no row for a message that is not live.
pub(super) const REACTORS: &str = r#"
SELECT m.reactions, r.user_id
FROM messages m
LEFT JOIN LATERAL (
    SELECT user_id FROM reactions
    WHERE thread_id = $1 AND message_id = $2 AND emoji = $3 AND user_id > $4
    ORDER BY user_id
    LIMIT $5
) r ON true
WHERE m.thread_id = $1 AND m.id = $2 AND m.deleted_at IS NULL
"#;

/// A live message and the versions its edits replaced (their columns NULL when none).
pub(super) const HISTORY: &str = r#"
SELECT m.thread_id, m.id, m.user_id, m.kind, m.content, m.paths, m.created_at, m.updated_at,
       m.seq, m.rev, m.reply_to, m.reactions, e.replaced_by, e.content, e.paths, e.made_at
FROM messages m
LEFT JOIN message_edits e ON e.thread_id = m.thread_id AND e.message_id = m.id
WHERE m.thread_id = $1 AND m.id = $2 AND m.deleted_at IS NULL
ORDER BY e.replaced_by
"#;

/// One statement: lock the live message written by $3 (a concurrent delete waits, then finds
/// it gone), bump the counter, mark the message deleted with the new number, who removed it
/// when not its author ($9) and why ($10), forget its edit history and reactions, write the
/// event. A moderator's removal names the author it read first as $3.
pub(super) const DELETE: &str = r#"
WITH target AS (
    SELECT id FROM messages
    WHERE thread_id = $1 AND id = $2 AND user_id = $3 AND deleted_at IS NULL FOR UPDATE
), bump AS (
    INSERT INTO threads AS t (thread_id, head) SELECT $1, 1 WHERE EXISTS (SELECT 1 FROM target)
    ON CONFLICT (thread_id) DO UPDATE SET head = t.head + 1
    RETURNING head
), del AS (
    UPDATE messages m
    SET deleted_at = $4, rev = bump.head, deleted_by = $9, delete_reason = $10 FROM bump
    WHERE m.thread_id = $1 AND m.id = $2 AND m.deleted_at IS NULL RETURNING m.seq, m.rev
), edits AS (
    DELETE FROM message_edits
    WHERE thread_id = $1 AND message_id = $2 AND EXISTS (SELECT 1 FROM del)
), holders AS (
    DELETE FROM reactions
    WHERE thread_id = $1 AND message_id = $2 AND EXISTS (SELECT 1 FROM del)
), ob AS (
    INSERT INTO outbox (id, kind, thread_id, time, payload, message_seq, rev)
    SELECT $5, $6, $1, $7, $8, seq, rev FROM del
) SELECT seq, rev FROM del
"#;

/// The anchor's part (2; its columns NULL when it is deleted), the older messages (0) and the
/// newer ones (1), with the position, in one snapshot.
pub(super) const AROUND: &str = r#"
WITH a AS (SELECT seq FROM messages WHERE thread_id = $1 AND id = $2)
SELECT 0::int2 AS part, h.head, m.thread_id, m.id, m.user_id, m.kind, m.content, m.paths,
       m.created_at, m.updated_at, m.seq, m.rev, m.reply_to, m.reactions
FROM (SELECT COALESCE((SELECT head FROM threads WHERE thread_id = $1), 0) AS head) h
CROSS JOIN a
CROSS JOIN LATERAL (
    SELECT thread_id, id, user_id, kind, content, paths, created_at, updated_at, seq, rev,
           reply_to, reactions
    FROM messages
    WHERE thread_id = $1 AND deleted_at IS NULL AND seq < a.seq
    ORDER BY seq DESC
    LIMIT $3
) m
UNION ALL
SELECT 1::int2, h.head, m.thread_id, m.id, m.user_id, m.kind, m.content, m.paths,
       m.created_at, m.updated_at, m.seq, m.rev, m.reply_to, m.reactions
FROM (SELECT COALESCE((SELECT head FROM threads WHERE thread_id = $1), 0) AS head) h
CROSS JOIN a
CROSS JOIN LATERAL (
    SELECT thread_id, id, user_id, kind, content, paths, created_at, updated_at, seq, rev,
           reply_to, reactions
    FROM messages
    WHERE thread_id = $1 AND deleted_at IS NULL AND seq > a.seq
    ORDER BY seq ASC
    LIMIT $3
) m
UNION ALL
SELECT 2::int2, h.head, m.thread_id, m.id, m.user_id, m.kind, m.content, m.paths,
       m.created_at, m.updated_at, m.seq, m.rev, m.reply_to, m.reactions
FROM (SELECT COALESCE((SELECT head FROM threads WHERE thread_id = $1), 0) AS head) h
CROSS JOIN a
LEFT JOIN messages m ON m.thread_id = $1 AND m.seq = a.seq AND m.deleted_at IS NULL
"#;

/// The changes feed: the position, then up to $3 messages whose `rev` is past $2, in `rev`
/// order, deleted ones too (`deleted_at` last).
pub(super) const CHANGES: &str = r#"
SELECT h.head, m.thread_id, m.id, m.user_id, m.kind, m.content, m.paths, m.created_at,
       m.updated_at, m.seq, m.rev, m.reply_to, m.reactions, m.deleted_at, m.deleted_by,
       m.delete_reason
FROM (SELECT COALESCE((SELECT head FROM threads WHERE thread_id = $1), 0) AS head) h
LEFT JOIN LATERAL (
    SELECT thread_id, id, user_id, kind, content, paths, created_at, updated_at, seq, rev,
           reply_to, reactions, deleted_at, deleted_by, delete_reason
    FROM messages
    WHERE thread_id = $1 AND rev > $2
    ORDER BY rev
    LIMIT $3
) m ON true
"#;

/// The author of a live message.
pub(super) const AUTHOR: &str = r#"
SELECT user_id FROM messages WHERE thread_id = $1 AND id = $2 AND deleted_at IS NULL
"#;

/// The live messages of thread $1 among the ids $2, with their authors, locked in id order.
pub(super) const LOCK_LIVE_MANY: &str = r#"
SELECT id, user_id FROM messages
WHERE thread_id = $1 AND id = ANY($2) AND deleted_at IS NULL
ORDER BY id
FOR UPDATE
"#;

pub(super) const LOCATE: &str = "SELECT seq FROM messages WHERE thread_id = $1 AND id = $2";

pub(super) const HEAD: &str = "SELECT head FROM threads WHERE thread_id = $1";

/// Moves a reader's position ($2 in thread $1) to $3 (clamped to 0..head), only forward
/// unless $4, then counts what is unread after it: the live messages others wrote, at most $5.
/// No number of the sequence is taken and no event written.
pub(super) const MARK_READ: &str = r#"
WITH moved AS (
    INSERT INTO read_positions AS r (thread_id, user_id, seq)
    VALUES ($1, $2, GREATEST(0, LEAST($3, COALESCE(
        (SELECT head FROM threads WHERE thread_id = $1), 0))))
    ON CONFLICT (thread_id, user_id) DO UPDATE
    SET seq = CASE WHEN $4 THEN excluded.seq ELSE GREATEST(r.seq, excluded.seq) END
    RETURNING seq
)
SELECT moved.seq, u.n, u.first
FROM moved, LATERAL (
    SELECT count(*) AS n, min(s.seq) AS first FROM (
        SELECT m.seq FROM messages m
        WHERE m.thread_id = $1 AND m.deleted_at IS NULL AND m.seq > moved.seq
          AND m.user_id <> $2
        ORDER BY m.seq
        LIMIT $5
    ) s
) u
"#;

/// A reader's ($2) state in each thread of $1, in that order: the position (0 when never
/// set), the thread's head, and the live messages after the position that others wrote, at
/// most $3 of them: `[count, first seq]`, or NULL where the head and the position are still
/// $4 and $5, the ones a count this process kept was made at (-1 where it keeps none; see
/// `counts`). One statement, so a whole sidebar is one round trip and one snapshot. The
/// positions and heads are joins, not a subquery per thread, so the plan looks each up by its
/// key or reads a small table once, whatever its statistics say.
pub(super) const READ_STATES: &str = r#"
SELECT t.thread_id, COALESCE(r.seq, 0), COALESCE(h.head, 0),
       CASE WHEN COALESCE(h.head, 0) = t.known_head AND COALESCE(r.seq, 0) = t.known_seq
            THEN NULL
            ELSE (SELECT ARRAY[count(*), min(s.seq)] FROM (
                      SELECT m.seq FROM messages m
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
