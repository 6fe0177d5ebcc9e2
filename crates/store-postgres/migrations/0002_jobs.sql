-- Scheduled jobs. A node runs a job only while it holds the lease; a node that dies releases it
-- when lease_until passes.
CREATE TABLE jobs (
    name         TEXT PRIMARY KEY,
    next_due_at  BIGINT NOT NULL,
    lease_owner  TEXT,
    lease_until  BIGINT,
    last_run_at  BIGINT,
    last_node    TEXT
);
