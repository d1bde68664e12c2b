-- Mail state (DESIGN §7): mailboxes, per-mailbox flags, parts that a delete can follow.
-- Every statement here is O(1) or works on empty tables, so a large database starts at
-- once; emails stored before this migration get their rows from a background pass
-- (inbound/backfill.rs), which `mail_state_backfill` tracks.

-- Summaries of the per-mailbox flags, kept in step by every flag change, so that
-- `GET /emails` filters without a join: `processed` (read in every mailbox), `starred`
-- (in any), `trashed` (in every). An email in no mailbox keeps its flags here alone.
ALTER TABLE emails ADD COLUMN starred BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE emails ADD COLUMN trashed BOOLEAN NOT NULL DEFAULT FALSE;

-- An email in each mailbox of its recipients, with that mailbox's flags.
CREATE TABLE mailbox_emails (
    mailbox     TEXT    NOT NULL,  -- normalised address, at most 320 bytes
    email_id    TEXT    NOT NULL REFERENCES emails (id) ON DELETE CASCADE,
    received_at BIGINT  NOT NULL,  -- the email's, so a mailbox lists from this table alone
    is_read     BOOLEAN NOT NULL DEFAULT FALSE,
    starred     BOOLEAN NOT NULL DEFAULT FALSE,
    trashed     BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (mailbox, email_id)
);
CREATE INDEX mailbox_emails_newest_first ON mailbox_emails (mailbox, received_at DESC, email_id DESC);
CREATE INDEX mailbox_emails_by_email ON mailbox_emails (email_id);

-- Which blobs an email's parts use: a delete drops the blobs no other email uses.
CREATE TABLE email_parts (
    email_id TEXT    NOT NULL REFERENCES emails (id) ON DELETE CASCADE,
    kind     TEXT    NOT NULL,  -- attachments | inlines
    position BIGINT  NOT NULL,  -- index in that list
    blob     TEXT    NOT NULL REFERENCES blobs (blake3),
    PRIMARY KEY (email_id, kind, position)
);
CREATE INDEX email_parts_by_blob ON email_parts (blob);

-- How far the background pass has come (emails by id); blobs are only ever deleted once
-- it is done, because until then a blob may be used by an email not yet in `email_parts`.
CREATE TABLE mail_state_backfill (
    only_row INTEGER PRIMARY KEY CHECK (only_row = 1),
    after_id TEXT    NOT NULL,  -- every email with an id up to this has its rows
    done     BOOLEAN NOT NULL
);
INSERT INTO mail_state_backfill VALUES (1, '', NOT EXISTS (SELECT 1 FROM emails));
