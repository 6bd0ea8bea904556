-- Search: each message's text as search compares it (`messages_core::search::fold`: lower
-- case, every run of white space one space), kept by PostgreSQL beside the text as it changes,
-- in the transaction of the change. Lower case is ICU's (the collation `und-x-icu`), which is
-- Unicode's, as the service's own folding is, whatever the database's locale.
ALTER TABLE messages ADD COLUMN search_text text GENERATED ALWAYS AS (
    btrim(regexp_replace(lower(content COLLATE "und-x-icu"), '\s+', ' ', 'g'))
) STORED;

-- The live messages' folded text by its trigrams, keyed by thread first: a term of three
-- characters or more is found anywhere in a word through the index (`LIKE '%term%'`), in one
-- thread's part of it, thread by thread of those asked. pg_trgm for the trigrams, btree_gin
-- for the thread beside them; both ship with PostgreSQL (contrib) and are trusted (the
-- database's owner may create them). An extension lives in one schema of the database, made
-- in `public` here unless it is there already (an administrator may have made it in a schema
-- of their own); the index names the operator class in whichever schema holds it.
CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public;
CREATE EXTENSION IF NOT EXISTS btree_gin SCHEMA public;
DO $$
DECLARE
    trgm name := (SELECT n.nspname FROM pg_extension e
                  JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm');
BEGIN
    EXECUTE format('CREATE INDEX messages_search ON messages
                    USING gin (thread_id, search_text %I.gin_trgm_ops) WHERE deleted_at IS NULL',
                   trgm);
END
$$;
