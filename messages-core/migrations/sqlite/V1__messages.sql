-- The embedded store's schema: the same model as PostgreSQL's, laid out for SQLite. Ids are
-- 16-byte blobs, times are microseconds since the Unix epoch, paths a JSON array of strings.

-- The per-thread sequence: the number of each thread's latest change. One writer connection
-- takes the numbers, so they become visible in the order they were taken.
CREATE TABLE threads (
    thread_id BLOB    PRIMARY KEY,
    head      INTEGER NOT NULL
) WITHOUT ROWID;

-- Messages clustered by (thread, seq): a page is one range of the primary key. Deleted
-- messages keep their row, for the changes feed and for cursors that name them.
CREATE TABLE messages (
    thread_id       BLOB    NOT NULL,
    seq             INTEGER NOT NULL,
    id              BLOB    NOT NULL,
    user_id         BLOB    NOT NULL,
    kind            TEXT    NOT NULL CHECK (kind IN ('text', 'audio', 'file')),
    content         TEXT    NOT NULL,
    paths           TEXT    NOT NULL DEFAULT '[]',
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    deleted_at      INTEGER,
    rev             INTEGER NOT NULL,
    idempotency_key TEXT,
    request_hash    BLOB,
    PRIMARY KEY (thread_id, seq)
) WITHOUT ROWID;

-- A message by its id (get, edit, delete, around, locate).
CREATE UNIQUE INDEX messages_id ON messages (thread_id, id);

-- The changes feed reads every message by rev; one message holds a rev at a time.
CREATE UNIQUE INDEX messages_rev ON messages (thread_id, rev);

-- A retried create finds the original, even after a restart.
CREATE UNIQUE INDEX messages_idempotency
    ON messages (thread_id, user_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- Events written in the same transaction as the change they announce, with their body
-- complete; the relay deletes each once it is delivered. AUTOINCREMENT: a position is never
-- reused, so an acknowledgement can only ever name its own event.
CREATE TABLE outbox (
    position      INTEGER PRIMARY KEY AUTOINCREMENT,
    id            BLOB    NOT NULL UNIQUE,
    kind          TEXT    NOT NULL,
    thread_id     BLOB    NOT NULL,
    time          INTEGER NOT NULL,
    sequence      INTEGER NOT NULL,
    payload       BLOB    NOT NULL,
    claimed_until INTEGER
);
