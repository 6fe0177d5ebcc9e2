-- The keyword text of every user table is kept in lower case from now on, so that a keyword
-- search is `search_text LIKE lower(pattern)` (what ILIKE finds, without lowering each row
-- it checks). Tables in the trash keep their storage until purged, so they are rewritten too.
DO $$
DECLARE
    r RECORD;
    t TEXT;
BEGIN
    FOR r IN SELECT id FROM user_tables LOOP
        t := 't_' || replace(r.id, '-', '');
        IF to_regclass(t) IS NOT NULL THEN
            EXECUTE format('UPDATE %I SET search_text = lower(search_text) WHERE search_text <> lower(search_text)', t);
        END IF;
    END LOOP;
END
$$;
