-- Conversations (DESIGN §8): each email's thread key (inbound/search_fields.rs), a
-- bounded digest, so the index holds any Message-ID. Emails stored before this get it
-- from the background filing pass, which starts over here (its rows are idempotent).
ALTER TABLE emails ADD COLUMN thread_key TEXT;
CREATE INDEX emails_by_thread ON emails (thread_key, received_at) WHERE thread_key IS NOT NULL;
UPDATE mail_state_backfill SET after_id = '', done = NOT EXISTS (SELECT 1 FROM emails);
