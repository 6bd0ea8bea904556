-- Replies, reactions and edit history.

-- The message a message replies to (NULL for none); it stays when that message is deleted.
ALTER TABLE messages ADD COLUMN reply_to BLOB;

-- The reaction summary a message carries (each emoji, its count, its first users), as JSON,
-- kept in the reaction's transaction so a page reads no other table.
ALTER TABLE messages ADD COLUMN reactions TEXT NOT NULL DEFAULT '[]';

-- Who holds which reaction: one row per (message, emoji, user); rev is the number of the
-- change that added it, so the first holders are the lowest.
CREATE TABLE reactions (
    thread_id  BLOB    NOT NULL,
    message_id BLOB    NOT NULL,
    emoji      TEXT    NOT NULL,
    user_id    BLOB    NOT NULL,
    rev        INTEGER NOT NULL,
    PRIMARY KEY (thread_id, message_id, emoji, user_id)
) WITHOUT ROWID;

-- The next holder to list when a listed one leaves.
CREATE INDEX reactions_by_rev ON reactions (thread_id, message_id, emoji, rev);

-- The versions edits replaced: one row per edit, keyed by the edit's number.
CREATE TABLE message_edits (
    thread_id   BLOB    NOT NULL,
    message_id  BLOB    NOT NULL,
    replaced_by INTEGER NOT NULL,
    content     TEXT    NOT NULL,
    paths       TEXT    NOT NULL,
    made_at     INTEGER NOT NULL,
    PRIMARY KEY (thread_id, message_id, replaced_by)
) WITHOUT ROWID;
