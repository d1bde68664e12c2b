-- Inbound mail. Instants are microseconds since the Unix epoch (UTC).
CREATE TABLE emails (
    id             TEXT    PRIMARY KEY NOT NULL,  -- 24-hex ObjectId-style
    dedup_key      TEXT    NOT NULL UNIQUE,       -- Message-ID + recipients + content hash
    received_at    INTEGER NOT NULL,              -- server receive time: the sort key
    processed      INTEGER NOT NULL DEFAULT 0,
    from_email     TEXT,                          -- lower-cased sender, for the filter
    subject_folded TEXT,                          -- case-folded subject, for literal search
    document       TEXT    NOT NULL               -- the email as JSON; parts hold metadata
);

CREATE INDEX emails_newest_first ON emails (received_at DESC, id DESC);
CREATE INDEX emails_by_sender ON emails (from_email, received_at DESC, id DESC);

-- Attachment and inline bytes, stored once per content hash.
CREATE TABLE blobs (
    sha256 TEXT    PRIMARY KEY NOT NULL,
    size   INTEGER NOT NULL,
    data   BLOB    NOT NULL
);
