-- Saved views of a user table: personal (owner_id set) or shared (owner_id NULL). The spec is
-- daicho_domain::view::ViewSpec as JSON; a view is only a query, run under the reader's rights.
CREATE TABLE saved_views (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    table_id    TEXT NOT NULL REFERENCES user_tables(id) ON DELETE CASCADE,
    owner_id    TEXT REFERENCES users(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    spec        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    created_by  TEXT NOT NULL
);
CREATE INDEX saved_views_table ON saved_views (table_id, owner_id);
