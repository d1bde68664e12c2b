-- SQLite now indexes subjects in bulk (see its migration 5). PostgreSQL's pg_trgm index
-- is kept current by each insert, which batches nothing; nothing changes here.
SELECT 1;
