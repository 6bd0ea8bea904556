-- The per-thread sequence. Every write of a thread takes the next number of its thread's row
-- here, in the write's own transaction: the row lock orders the writes of one thread, so the
-- numbers become visible in the order they were taken (a reader that saw N saw every change
-- up to N). Writes of different threads do not wait for each other.
CREATE TABLE threads (
    thread_id uuid   PRIMARY KEY,
    head      bigint NOT NULL
) WITH (fillfactor = 70);  -- room for HOT updates: a busy thread's row is rewritten per write

-- seq: the number a message's creation took; rev: the number of its latest change. Existing
-- rows are numbered in created_at order within their thread; their latest change is taken to
-- be their creation (rev = seq), since the order of past edits and deletions is not known.
ALTER TABLE messages ADD COLUMN seq bigint, ADD COLUMN rev bigint;

-- Pages no longer read by (created_at, id); dropped first so numbering the rows does not
-- maintain it.
DROP INDEX messages_live_keyset;

UPDATE messages m
SET seq = numbered.n, rev = numbered.n
FROM (
    SELECT thread_id, id, row_number() OVER (PARTITION BY thread_id ORDER BY created_at, id) AS n
    FROM messages
) numbered
WHERE m.thread_id = numbered.thread_id AND m.id = numbered.id;

INSERT INTO threads (thread_id, head)
SELECT thread_id, max(seq) FROM messages GROUP BY thread_id;

ALTER TABLE messages ALTER COLUMN seq SET NOT NULL, ALTER COLUMN rev SET NOT NULL;

-- Pages (newest, before_seq, after_seq, around) read live messages by seq.
CREATE INDEX messages_live_seq ON messages (thread_id, seq) WHERE deleted_at IS NULL;

-- The changes feed reads every message by rev; one message holds a rev at a time.
CREATE UNIQUE INDEX messages_rev ON messages (thread_id, rev);

-- Events keep the body open and the change's numbers beside it (outbox.seq is the outbox's
-- own position): a write numbers its change and writes its event in one statement, so the
-- body is closed when the relay reads it. Events written before this migration have complete
-- bodies and no numbers.
ALTER TABLE outbox ADD COLUMN message_seq bigint, ADD COLUMN rev bigint;
