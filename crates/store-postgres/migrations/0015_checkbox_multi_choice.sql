-- A checkbox is never empty: records made before the field (or by someone who could not set
-- it) read as unticked, and the column defaults to unticked. A multiple choice has no index:
-- a value of many long choices is larger than a B-tree entry can hold.
DO $$
DECLARE
    f RECORD;
    t TEXT;
    c TEXT;
BEGIN
    FOR f IN SELECT id, table_id, kind::jsonb ->> 'type' AS type FROM user_fields
             WHERE kind::jsonb ->> 'type' IN ('checkbox', 'multi_choice') LOOP
        t := 't_' || replace(f.table_id, '-', '');
        c := 'f_' || replace(f.id, '-', '');
        IF to_regclass(quote_ident(t)) IS NULL THEN
            CONTINUE;
        END IF;
        IF f.type = 'checkbox' THEN
            EXECUTE format('UPDATE %I SET %I = false WHERE %I IS NULL', t, c, c);
            EXECUTE format('ALTER TABLE %I ALTER COLUMN %I SET DEFAULT false', t, c);
        ELSE
            EXECUTE format('DROP INDEX IF EXISTS %I', 'i_' || replace(f.id, '-', ''));
        END IF;
    END LOOP;
END
$$;
