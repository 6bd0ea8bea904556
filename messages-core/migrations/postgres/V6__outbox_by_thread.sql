-- The outbox keyed by thread like every other table, so that all of them can be distributed
-- by thread_id and co-located (Citus: a primary key or unique index must hold the
-- distribution column). The relay still claims and deletes by seq, through an index of its
-- own: its claims are the one statement that spans threads, besides GET /unread.
ALTER TABLE outbox DROP CONSTRAINT outbox_pkey;
ALTER TABLE outbox DROP CONSTRAINT outbox_id_key;
ALTER TABLE outbox ADD PRIMARY KEY (thread_id, seq);
CREATE UNIQUE INDEX outbox_id ON outbox (thread_id, id);
CREATE INDEX outbox_by_seq ON outbox (seq);
