-- Trigram indexes for keyword search in user tables (trusted extension: a database owner may
-- create it; managed services allow it).
CREATE EXTENSION IF NOT EXISTS pg_trgm;
