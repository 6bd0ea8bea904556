-- Who removed a deleted message when it was not its author (a moderator), and why; the
-- tombstone in the changes feed carries both.
ALTER TABLE messages ADD COLUMN deleted_by BLOB;
ALTER TABLE messages ADD COLUMN delete_reason TEXT;
