//! The statements of the PostgreSQL message store, as plain SQL beside what each one does.
//! Every write bumps the thread's counter as its last step before the commit (see `messages`).

// Every read begins with the thread's position, 0 for a thread never written, so the rows
// and the position come from one snapshot; a read that finds no row still returns that one
// (its message columns NULL). The message columns are always in the order
// `message_from_row` reads them: thread_id, id, user_id, kind, content, paths, created_at,
// updated_at, seq, rev.

/// The newest page: the position, then up to $2 live messages newest first.
pub(super) const PAGE_NEWEST: &str = r#"
SELECT h.head, m.thread_id, m.id, m.user_id, m.kind, m.content, m.paths, m.created_at,
       m.updated_at, m.seq, m.rev
FROM (SELECT COALESCE((SELECT head FROM threads WHERE thread_id = $1), 0) AS head) h
LEFT JOIN LATERAL (
    SELECT thread_id, id, user_id, kind, content, paths, created_at, updated_at, seq, rev
    FROM messages
    WHERE thread_id = $1 AND deleted_at IS NULL
    ORDER BY seq DESC
    LIMIT $2
) m ON true
"#;

/// The page before `seq` $3, newest first.
pub(super) const PAGE_BEFORE: &str = r#"
SELECT h.head, m.thread_id, m.id, m.user_id, m.kind, m.content, m.paths, m.created_at,
       m.updated_at, m.seq, m.rev
FROM (SELECT COALESCE((SELECT head FROM threads WHERE thread_id = $1), 0) AS head) h
LEFT JOIN LATERAL (
    SELECT thread_id, id, user_id, kind, content, paths, created_at, updated_at, seq, rev
    FROM messages
    WHERE thread_id = $1 AND deleted_at IS NULL AND seq < $3
    ORDER BY seq DESC
    LIMIT $2
) m ON true
"#;

/// The page after `seq` $3, oldest first.
pub(super) const PAGE_AFTER: &str = r#"
SELECT h.head, m.thread_id, m.id, m.user_id, m.kind, m.content, m.paths, m.created_at,
       m.updated_at, m.seq, m.rev
FROM (SELECT COALESCE((SELECT head FROM threads WHERE thread_id = $1), 0) AS head) h
LEFT JOIN LATERAL (
    SELECT thread_id, id, user_id, kind, content, paths, created_at, updated_at, seq, rev
    FROM messages
    WHERE thread_id = $1 AND deleted_at IS NULL AND seq > $3
    ORDER BY seq ASC
    LIMIT $2
) m ON true
"#;

/// One statement: bump the thread's counter, insert the message numbered with it, insert its
/// event with the numbers beside its open body. A reused idempotency key fails the unique
/// index, which rolls back the whole statement, bump included: a replay takes no number.
pub(super) const CREATE: &str = r#"
WITH bump AS (
    INSERT INTO threads AS t (thread_id, head) VALUES ($1, 1)
    ON CONFLICT (thread_id) DO UPDATE SET head = t.head + 1
    RETURNING head
), ins AS (
    INSERT INTO messages (thread_id, id, user_id, kind, content, paths, created_at,
                          updated_at, idempotency_key, request_hash, seq, rev)
    SELECT $1, $2, $3, $4, $5, $6, $7, $7, $8, $9, head, head FROM bump
    RETURNING seq
), ob AS (
    INSERT INTO outbox (id, kind, thread_id, time, payload, message_seq, rev)
    SELECT $10, $11, $1, $12, $13, seq, seq FROM ins
) SELECT seq FROM ins
"#;

/// A batch of creates of one thread (see `batch`): one bump by their number, then each message
/// and its event, numbered in the order they queued.
pub(super) const CREATE_MANY: &str = r#"
WITH bump AS (
    INSERT INTO threads AS t (thread_id, head) VALUES ($1, $2)
    ON CONFLICT (thread_id) DO UPDATE SET head = t.head + $2
    RETURNING head
), rows AS (
    SELECT r.*, (SELECT head FROM bump) - $2 + r.n AS seq
    FROM unnest($3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::text[],
                $8::timestamptz[], $9::text[], $10::bytea[], $11::uuid[], $12::text[],
                $13::timestamptz[], $14::bytea[]) WITH ORDINALITY
         AS r(id, user_id, kind, content, paths, created_at, idempotency_key,
              request_hash, event_id, event_kind, event_time, payload, n)
), ins AS (
    INSERT INTO messages (thread_id, id, user_id, kind, content, paths, created_at,
                          updated_at, idempotency_key, request_hash, seq, rev)
    SELECT $1, id, user_id, kind, content,
           ARRAY(SELECT json_array_elements_text(paths::json)), created_at, created_at,
           idempotency_key, request_hash, seq, seq
    FROM rows ORDER BY n
), ob AS (
    INSERT INTO outbox (id, kind, thread_id, time, payload, message_seq, rev)
    SELECT event_id, event_kind, $1, event_time, payload, seq, seq FROM rows ORDER BY n
) SELECT head FROM bump
"#;

/// The message a key created, and the fingerprint of the request that created it.
pub(super) const ORIGINAL: &str = r#"
SELECT thread_id, id, user_id, kind, content, paths, created_at, updated_at, seq, rev,
       request_hash
FROM messages
WHERE thread_id = $1 AND user_id = $2 AND idempotency_key = $3
"#;

/// One live message.
pub(super) const GET: &str = r#"
SELECT thread_id, id, user_id, kind, content, paths, created_at, updated_at, seq, rev
FROM messages
WHERE thread_id = $1 AND id = $2 AND deleted_at IS NULL
"#;

/// An edit, first step: the new content, without a number yet.
pub(super) const EDIT: &str = r#"
UPDATE messages
SET content = COALESCE($4, content), paths = COALESCE($5, paths), updated_at = $6
WHERE thread_id = $1 AND id = $2 AND user_id = $3 AND deleted_at IS NULL
RETURNING thread_id, id, user_id, kind, content, paths, created_at, updated_at, seq, rev
"#;

/// An edit, last step before the commit: bump the counter, number the edit, write its event.
pub(super) const NUMBER_EDIT: &str = r#"
WITH bump AS (
    UPDATE threads SET head = head + 1 WHERE thread_id = $1 RETURNING head
), upd AS (
    UPDATE messages m SET rev = bump.head FROM bump
    WHERE m.thread_id = $1 AND m.id = $2 RETURNING m.seq, m.rev
), ob AS (
    INSERT INTO outbox (id, kind, thread_id, time, payload, message_seq, rev)
    SELECT $3, $4, $1, $5, $6, seq, rev FROM upd
) SELECT rev FROM upd
"#;

/// One statement: lock the live message (a concurrent delete waits, then finds it gone), bump
/// the counter, mark the message deleted with the new number, write the event.
pub(super) const DELETE: &str = r#"
WITH target AS (
    SELECT id FROM messages
    WHERE thread_id = $1 AND id = $2 AND user_id = $3 AND deleted_at IS NULL FOR UPDATE
), bump AS (
    UPDATE threads SET head = head + 1
    WHERE thread_id = $1 AND EXISTS (SELECT 1 FROM target) RETURNING head
), del AS (
    UPDATE messages m SET deleted_at = $4, rev = bump.head FROM bump
    WHERE m.thread_id = $1 AND m.id = $2 AND m.deleted_at IS NULL RETURNING m.seq, m.rev
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
       m.created_at, m.updated_at, m.seq, m.rev
FROM (SELECT COALESCE((SELECT head FROM threads WHERE thread_id = $1), 0) AS head) h
CROSS JOIN a
CROSS JOIN LATERAL (
    SELECT thread_id, id, user_id, kind, content, paths, created_at, updated_at, seq, rev
    FROM messages
    WHERE thread_id = $1 AND deleted_at IS NULL AND seq < a.seq
    ORDER BY seq DESC
    LIMIT $3
) m
UNION ALL
SELECT 1::int2, h.head, m.thread_id, m.id, m.user_id, m.kind, m.content, m.paths,
       m.created_at, m.updated_at, m.seq, m.rev
FROM (SELECT COALESCE((SELECT head FROM threads WHERE thread_id = $1), 0) AS head) h
CROSS JOIN a
CROSS JOIN LATERAL (
    SELECT thread_id, id, user_id, kind, content, paths, created_at, updated_at, seq, rev
    FROM messages
    WHERE thread_id = $1 AND deleted_at IS NULL AND seq > a.seq
    ORDER BY seq ASC
    LIMIT $3
) m
UNION ALL
SELECT 2::int2, h.head, m.thread_id, m.id, m.user_id, m.kind, m.content, m.paths,
       m.created_at, m.updated_at, m.seq, m.rev
FROM (SELECT COALESCE((SELECT head FROM threads WHERE thread_id = $1), 0) AS head) h
CROSS JOIN a
LEFT JOIN messages m ON m.thread_id = $1 AND m.seq = a.seq AND m.deleted_at IS NULL
"#;

/// The changes feed: the position, then up to $3 messages whose `rev` is past $2, in `rev`
/// order, deleted ones too (`deleted_at` last).
pub(super) const CHANGES: &str = r#"
SELECT h.head, m.thread_id, m.id, m.user_id, m.kind, m.content, m.paths, m.created_at,
       m.updated_at, m.seq, m.rev, m.deleted_at
FROM (SELECT COALESCE((SELECT head FROM threads WHERE thread_id = $1), 0) AS head) h
LEFT JOIN LATERAL (
    SELECT thread_id, id, user_id, kind, content, paths, created_at, updated_at, seq, rev,
           deleted_at
    FROM messages
    WHERE thread_id = $1 AND rev > $2
    ORDER BY rev
    LIMIT $3
) m ON true
"#;

pub(super) const LOCATE: &str = "SELECT seq FROM messages WHERE thread_id = $1 AND id = $2";

pub(super) const HEAD: &str = "SELECT head FROM threads WHERE thread_id = $1";
