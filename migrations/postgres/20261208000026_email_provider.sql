-- Which provider delivered each email, so its original is read back in that format.
-- Every email stored before this was ImprovMX's.
ALTER TABLE emails ADD COLUMN provider TEXT NOT NULL DEFAULT 'improvmx';
