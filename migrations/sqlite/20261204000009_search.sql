-- Full-text search (DESIGN §7). Every statement is O(1) or works on empty tables; the
-- emails stored before it get their search columns from the background filing pass,
-- which starts over for them here (its rows are idempotent).

ALTER TABLE emails ADD COLUMN sender_folded TEXT;       -- `from:`: name and address
ALTER TABLE emails ADD COLUMN recipients_folded TEXT;   -- `to:`: to and cc
ALTER TABLE emails ADD COLUMN attachment_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE emails ADD COLUMN size_bytes INTEGER NOT NULL DEFAULT 0;

-- The words of each email (search/text.rs), ` w1 w2 … `, and their FTS5 index. Like the
-- subject index, it is filled in bulk up to `subject_index_progress.indexed_up_to`, and
-- searches test the newer emails' words directly.
CREATE TABLE email_words (
    email_rowid INTEGER PRIMARY KEY,  -- the email's rowid
    words       TEXT    NOT NULL
);
CREATE VIRTUAL TABLE emails_words USING fts5(
    words,
    content = 'email_words',
    content_rowid = 'email_rowid',
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER email_words_follow_emails AFTER DELETE ON emails BEGIN
    DELETE FROM email_words WHERE email_rowid = old.rowid;
END;
CREATE TRIGGER email_words_unindex AFTER DELETE ON email_words
WHEN old.email_rowid <= (SELECT indexed_up_to FROM subject_index_progress) BEGIN
    INSERT INTO emails_words (emails_words, rowid, words) VALUES ('delete', old.email_rowid, old.words);
END;

UPDATE mail_state_backfill SET after_id = '', done = NOT EXISTS (SELECT 1 FROM emails);
