-- Indexed subject search: a pg_trgm GIN index over the case-folded subject, used by
-- `subject_folded LIKE '%…%'` (with %, _ and \ escaped) for queries of 3+ characters.
-- The extension lives in `public` (one per database, shared by every schema), so the
-- operator class is named with its schema.
CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;

CREATE INDEX emails_subject_trigrams ON emails USING gin (subject_folded public.gin_trgm_ops);
