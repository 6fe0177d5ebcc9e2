-- The trash: a deleted table or field keeps its data (and, for a field, its column) until it is
-- restored or purged. While in the trash its name is replaced by a placeholder no user name can
-- take (so the name is free for a new table or field) and kept in trashed_name.
ALTER TABLE user_tables ADD COLUMN deleted_at INTEGER;
ALTER TABLE user_tables ADD COLUMN deleted_by TEXT;
ALTER TABLE user_tables ADD COLUMN trashed_name TEXT;
ALTER TABLE user_fields ADD COLUMN deleted_at INTEGER;
ALTER TABLE user_fields ADD COLUMN deleted_by TEXT;
ALTER TABLE user_fields ADD COLUMN trashed_name TEXT;
