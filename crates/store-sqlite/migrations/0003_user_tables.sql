-- The catalogue of user tables. Each table also exists as a real SQL table named t_<table id
-- in hex> with one typed column f_<field id in hex> per field; names users type live only here.
CREATE TABLE user_tables (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    description  TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    CONSTRAINT user_tables_name_unique UNIQUE (tenant_id, name)
) STRICT;

CREATE TABLE user_fields (
    id          TEXT PRIMARY KEY,
    table_id    TEXT NOT NULL REFERENCES user_tables(id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,   -- FieldKind as JSON
    rules       TEXT NOT NULL,   -- FieldRules as JSON
    created_at  INTEGER NOT NULL,
    CONSTRAINT user_fields_name_unique UNIQUE (table_id, name)
) STRICT;
