-- User search without a scan of `users` (GitLab's rules: terms of three characters or more
-- match part of a username or name, shorter ones match exactly, e-mail addresses exactly).
-- Partial matches: pg_trgm GIN indexes, as GitLab has them. Creating the extension needs a
-- privilege the database user may lack: then search still answers, by scanning, and the
-- server says at every start how to add them (see Store::search_index_status).
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'pg_trgm is not installed and this user may not install it; user search will scan';
END
$$;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        EXECUTE 'CREATE INDEX IF NOT EXISTS users_username_trigram ON users USING gin (lower(username) gin_trgm_ops)';
        EXECUTE 'CREATE INDEX IF NOT EXISTS users_name_trigram ON users USING gin (lower(name) gin_trgm_ops)';
    END IF;
END
$$;

CREATE INDEX users_name_lower ON users (lower(name));
