-- PostgreSQL's B-tree entries are bounded, so its sender index moved to a digest (see
-- its migration 6). SQLite's index entries spill to overflow pages and hold any length;
-- nothing changes here.
SELECT 1;
