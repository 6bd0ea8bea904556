-- Every write of a follow row takes a number from one sequence, so an inbox worked out before
-- can be told still exact: while the threads' heads and the user's follow rows in them (how
-- many, and the sum of their numbers) are what they were, nothing it shows has moved. A row's
-- number only grows (an update takes its number after the row's lock, so after the number of
-- the write before it), and rows are never deleted: the count and the sum move with every
-- committed write.
CREATE SEQUENCE reply_follow_changes;
ALTER TABLE reply_follows ADD COLUMN changed bigint NOT NULL DEFAULT 0;
ALTER TABLE reply_follows ALTER COLUMN changed SET DEFAULT nextval('reply_follow_changes');

-- The user's rows in the threads an inbox names, all of them (a row no longer followed counts
-- too), read from the index alone.
CREATE INDEX reply_follows_changes ON reply_follows (user_id, thread_id) INCLUDE (changed);
