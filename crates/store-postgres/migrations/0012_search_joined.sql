-- Keyword text joins its words: whitespace (the newline between fields included) and common
-- punctuation are stored as U+01C1, a letter to pg_trgm, so that a phrase's trigrams span its
-- words and the index finds the phrase itself rather than every row holding its words (see
-- SEARCH_SEPARATORS in src/lib.rs, which must list the same characters; a test checks it).
-- Tables in the trash keep their storage until purged, so they are rewritten too.
DO $$
DECLARE
    r RECORD;
    t TEXT;
BEGIN
    FOR r IN SELECT id FROM user_tables LOOP
        t := 't_' || replace(r.id, '-', '');
        IF to_regclass(t) IS NOT NULL THEN
            EXECUTE format('UPDATE %I SET search_text = translate(search_text, E'' \t\n\r　 !"#$&()*+,-./:;<=>?@[]^`{|}~、。・「」『』（）【】〜～：；！？＆＠－，．／'', E''ǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁ'') '
                'WHERE search_text <> translate(search_text, E'' \t\n\r　 !"#$&()*+,-./:;<=>?@[]^`{|}~、。・「」『』（）【】〜～：；！？＆＠－，．／'', E''ǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁǁ'')', t);
        END IF;
    END LOOP;
END
$$;
