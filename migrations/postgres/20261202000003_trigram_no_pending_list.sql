-- The trigram indexes take each new user at once (fastupdate off) rather than in a pending
-- list that every search must read until VACUUM merges it: after a large import that list
-- made a search 10 times slower. Users are added rarely; searches are many.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_indexes WHERE indexname = 'users_username_trigram') THEN
        EXECUTE 'ALTER INDEX users_username_trigram SET (fastupdate = off)';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_indexes WHERE indexname = 'users_name_trigram') THEN
        EXECUTE 'ALTER INDEX users_name_trigram SET (fastupdate = off)';
    END IF;
END
$$;
