-- A CSV file kept between the import page's two steps: uploaded, then its columns mapped to
-- the table's fields by the user who uploaded it. Only that user reads it back, for that
-- table, within an hour; the import removes it, and the "imports.purge" job removes the rest.
-- Kept in the database, not in a node's memory, so that the second step may reach any node.
CREATE TABLE staged_imports (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    table_id   TEXT NOT NULL REFERENCES user_tables(id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    body       BLOB NOT NULL
);
CREATE INDEX staged_imports_created ON staged_imports (created_at);
