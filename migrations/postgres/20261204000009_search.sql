-- Full-text search (DESIGN §7). Every statement is O(1); the emails stored before it get
-- their search columns from the background filing pass, which starts over for them here
-- (its rows are idempotent). The index on `words` is built after the migrations, in
-- the background and concurrently (store/postgres.rs), so deliveries go on meanwhile.

ALTER TABLE emails ADD COLUMN sender_folded TEXT;       -- `from:`: name and address
ALTER TABLE emails ADD COLUMN recipients_folded TEXT;   -- `to:`: to and cc
ALTER TABLE emails ADD COLUMN attachment_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE emails ADD COLUMN size_bytes BIGINT NOT NULL DEFAULT 0;
-- to_tsvector('simple', …) of the words of search/text.rs (already folded and split).
ALTER TABLE emails ADD COLUMN words tsvector;

UPDATE mail_state_backfill SET after_id = '', done = NOT EXISTS (SELECT 1 FROM emails);
