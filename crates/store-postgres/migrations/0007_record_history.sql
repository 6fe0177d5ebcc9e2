-- Each change to a record: who, when, and each field's value before and after (as stored).
-- Creation is the record's own created_at/created_by; deletion is in the operation history.
CREATE TABLE record_history (
    id           BIGSERIAL PRIMARY KEY,
    table_id     TEXT NOT NULL REFERENCES user_tables(id) ON DELETE CASCADE,
    record_id    BIGINT NOT NULL,
    version      BIGINT NOT NULL,
    at           BIGINT NOT NULL,
    actor_id     TEXT,
    actor_login  TEXT NOT NULL,
    changes      TEXT NOT NULL   -- [[field id, before, after], ...] as JSON
);
CREATE INDEX record_history_record ON record_history (table_id, record_id, id);
