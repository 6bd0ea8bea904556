-- Replies, reactions and edit history. Every new table is keyed by thread first, like
-- messages, so it distributes by thread_id the same way.

-- The message a message replies to (NULL for none); it stays when that message is deleted.
-- The reaction summary a message carries (each emoji, its count, its first users), as JSON,
-- kept in the reaction's transaction so a page reads no other table. Both are instant on
-- PostgreSQL 11+ (a constant default rewrites no row).
ALTER TABLE messages ADD COLUMN reply_to uuid,
                     ADD COLUMN reactions text NOT NULL DEFAULT '[]';

-- Who holds which reaction: one row per (message, emoji, user). `position` orders a message's
-- holders by when they reacted (the changes of one message are serialised on its row, so
-- the order of insertion is the order of commit), so the first holders are the lowest.
CREATE TABLE reactions (
    thread_id  uuid   NOT NULL,
    message_id uuid   NOT NULL,
    emoji      text   NOT NULL,
    user_id    uuid   NOT NULL,
    position   bigint GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (thread_id, message_id, emoji, user_id)
);

-- The next holder to list when a listed one leaves.
CREATE INDEX reactions_by_position ON reactions (thread_id, message_id, emoji, position);

-- The versions edits replaced: one row per edit, keyed by the edit's number.
CREATE TABLE message_edits (
    thread_id   uuid        NOT NULL,
    message_id  uuid        NOT NULL,
    replaced_by bigint      NOT NULL,
    content     text        NOT NULL,
    paths       text[]      NOT NULL,
    made_at     timestamptz NOT NULL,
    PRIMARY KEY (thread_id, message_id, replaced_by)
);
