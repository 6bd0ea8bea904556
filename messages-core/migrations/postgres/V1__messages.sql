-- Messages, keyed by thread: every query names thread_id, so the table can be distributed
-- (Citus) or hash-partitioned on it without changing a query.
CREATE TABLE messages (
    thread_id       uuid        NOT NULL,
    id              uuid        NOT NULL,
    user_id         uuid        NOT NULL,
    kind            text        NOT NULL CHECK (kind IN ('text', 'audio', 'file')),
    content         text        NOT NULL,
    paths           text[]      NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    deleted_at      timestamptz,
    idempotency_key text,
    request_hash    bytea,
    PRIMARY KEY (thread_id, id)
);

-- Serves the newest page and both keyset directions for live messages.
CREATE INDEX messages_live_keyset
    ON messages (thread_id, created_at, id)
    WHERE deleted_at IS NULL;

-- A retried create finds the original, even after a restart.
CREATE UNIQUE INDEX messages_idempotency
    ON messages (thread_id, user_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- Events written in the same transaction as the change they announce; the relay deletes
-- each once the broker has confirmed it.
CREATE TABLE outbox (
    seq           bigserial   PRIMARY KEY,
    id            uuid        NOT NULL UNIQUE,
    kind          text        NOT NULL,
    thread_id     uuid        NOT NULL,
    time          timestamptz NOT NULL,
    payload       bytea       NOT NULL,
    claimed_until timestamptz
);
