-- Tenants, users, sessions and the operation history (PostgreSQL).
-- Times are UTC milliseconds since the Unix epoch, as in the SQLite store, so that
-- `daicho migrate-store` copies values unchanged.

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    code        TEXT NOT NULL CONSTRAINT tenants_code_key UNIQUE,
    name        TEXT NOT NULL,
    policy      TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE users (
    id                    TEXT PRIMARY KEY,
    tenant_id             TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    login_id              TEXT NOT NULL,
    display_name          TEXT NOT NULL,
    email                 TEXT NOT NULL,
    role                  TEXT NOT NULL CHECK (role IN ('tenant_admin', 'member')),
    status                TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    language              TEXT NOT NULL CHECK (language IN ('auto', 'en', 'ja')),
    password_hash         TEXT NOT NULL,
    must_change_password  BOOLEAN NOT NULL,
    password_changed_at   BIGINT NOT NULL,
    failed_logins         BIGINT NOT NULL DEFAULT 0,
    locked_until          BIGINT,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    CONSTRAINT users_login_unique UNIQUE (tenant_id, login_id)
);

CREATE TABLE password_history (
    id             BIGSERIAL PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    password_hash  TEXT NOT NULL,
    replaced_at    BIGINT NOT NULL
);
CREATE INDEX password_history_user ON password_history (user_id, replaced_at);

CREATE TABLE sessions (
    id            TEXT PRIMARY KEY,
    token_hash    TEXT NOT NULL UNIQUE,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    csrf_token    TEXT NOT NULL,
    ip            TEXT NOT NULL,
    user_agent    TEXT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE audit_events (
    seq          BIGSERIAL PRIMARY KEY,
    chain        TEXT NOT NULL,
    at           BIGINT NOT NULL,
    tenant_id    TEXT,
    actor_id     TEXT,
    actor_login  TEXT NOT NULL,
    ip           TEXT NOT NULL,
    user_agent   TEXT NOT NULL,
    action       TEXT NOT NULL,
    target       TEXT NOT NULL,
    outcome      TEXT NOT NULL,
    details      TEXT NOT NULL,
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL
);
CREATE INDEX audit_chain_seq ON audit_events (chain, seq);
CREATE INDEX audit_ip_action_at ON audit_events (ip, action, at);
CREATE INDEX audit_chain_login ON audit_events (chain, actor_login, seq);
CREATE INDEX audit_chain_action ON audit_events (chain, action, seq);
CREATE INDEX audit_chain_at ON audit_events (chain, at);

-- Append-only: the application never changes or removes an event; the hash chain detects
-- anyone who bypasses this.
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only';
END
$$;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();
