-- Every outbox row is updated once, when a relay claims it (claimed_until), then deleted. An
-- update that finds no room on the row's page writes the new version to another page, with a
-- new entry in each of the outbox's three indexes, and logs the whole row again; one that
-- finds room is a heap-only update: no index entry, and only the changed bytes logged. Pages
-- filled to the brim by the creates left room for one claim in five. Filled to half, each page
-- keeps room for its rows' claims. Pages written before this keep their rows as they are.
ALTER TABLE outbox SET (fillfactor = 50);
