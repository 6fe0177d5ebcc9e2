-- Groups of users and their rights per table (the permission matrix). A user's rights on a
-- table are the union of their groups' grants; see daicho_domain::access.
CREATE TABLE user_groups (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    description  TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    CONSTRAINT user_groups_name_unique UNIQUE (tenant_id, name)
);

CREATE TABLE group_members (
    group_id  TEXT NOT NULL REFERENCES user_groups(id) ON DELETE CASCADE,
    user_id   TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user ON group_members (user_id);

CREATE TABLE table_grants (
    group_id  TEXT NOT NULL REFERENCES user_groups(id) ON DELETE CASCADE,
    table_id  TEXT NOT NULL REFERENCES user_tables(id) ON DELETE CASCADE,
    rights    BIGINT NOT NULL,   -- bit mask of daicho_domain::access::TableRight
    rows      TEXT NOT NULL,     -- RowRule as JSON
    fields    TEXT NOT NULL,     -- field id -> "hidden" | "read_only", as JSON
    PRIMARY KEY (group_id, table_id)
);
CREATE INDEX table_grants_table ON table_grants (table_id);
