-- Trash retention (TRASH_RETENTION_DAYS): when each email went to the trash in every one
-- of its mailboxes; NULL while it is not there. Emails in the trash today start their
-- period now. The index holds only trashed emails, so it stays small.
ALTER TABLE emails ADD COLUMN trashed_at BIGINT;
UPDATE emails SET trashed_at = (extract(epoch FROM now()) * 1000000)::BIGINT WHERE trashed;
CREATE INDEX emails_trashed_at ON emails (trashed_at) WHERE trashed_at IS NOT NULL;
