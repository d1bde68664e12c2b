-- Trash retention (TRASH_RETENTION_DAYS): when each email went to the trash in every one
-- of its mailboxes; NULL while it is not there. Emails in the trash today start their
-- period now. The index holds only trashed emails, so it stays small.
ALTER TABLE emails ADD COLUMN trashed_at INTEGER;
UPDATE emails SET trashed_at = CAST(strftime('%s', 'now') AS INTEGER) * 1000000 WHERE trashed;
CREATE INDEX emails_trashed_at ON emails (trashed_at) WHERE trashed_at IS NOT NULL;
