-- Personal API tokens: a token acts as its user, with the user's rights (read-only tokens only
-- read). Only the SHA-256 of a token is stored; its plain value is shown once, at creation.
CREATE TABLE api_tokens (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    token_hash    TEXT NOT NULL UNIQUE,
    read_only     BOOLEAN NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    revoked_at    BIGINT,
    CONSTRAINT api_tokens_name_unique UNIQUE (user_id, name)
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);
