-- Every user table indexes its system columns as (column, id), as a field's index: the grid
-- sorts and filters by them ("updated at", newest first), and the row rule "records they
-- created" selects by created_by (see ut::system_indexes, which new tables get).
-- Run outside a transaction and committed table by table: in one transaction every table's
-- and index's lock would be held to the end, and an installation of some thousand user tables
-- would run out of lock slots (max_locks_per_transaction). A rerun after a failure goes on
-- where it stopped (IF NOT EXISTS). One statement only: a DO block may commit only when it is
-- the whole of its query.
DO $$
DECLARE
    r RECORD;
    t TEXT;
    h TEXT;
    c TEXT;
BEGIN
    FOR r IN SELECT id FROM user_tables LOOP
        h := replace(r.id, '-', '');
        t := 't_' || h;
        IF to_regclass(quote_ident(t)) IS NULL THEN
            CONTINUE;
        END IF;
        FOREACH c IN ARRAY ARRAY['created_at', 'created_by', 'updated_at', 'updated_by'] LOOP
            EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I (%I, id)', 'i_' || h || '_' || c, t, c);
        END LOOP;
        COMMIT;
    END LOOP;
END
$$;
