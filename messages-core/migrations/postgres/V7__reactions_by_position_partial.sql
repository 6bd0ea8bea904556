-- The position index serves one statement, the next holder of an emoji to list, and is made
-- partial so the planner considers it only for statements that state its predicate. As a full
-- index it tied with the primary key for a lookup of one (emoji, user) on a message that the
-- statistics, taken before the message turned popular, showed with no reactions: the planner
-- took the smaller position index and filtered every holder of the emoji for the user (7,500
-- rows a lookup on a message with 60,000 reactions, against one probe of the primary key).
-- `position` is an identity column, never NULL, so the index holds every row as before.
DROP INDEX reactions_by_position;
CREATE INDEX reactions_by_position ON reactions (thread_id, message_id, emoji, position)
    WHERE position IS NOT NULL;
