-- Inbound mail. Instants are microseconds since the Unix epoch (UTC).
CREATE TABLE emails (
    id             TEXT    PRIMARY KEY,           -- 24-hex ObjectId-style
    dedup_key      TEXT    NOT NULL UNIQUE,       -- Message-ID + recipients + content hash
    received_at    BIGINT  NOT NULL,              -- server receive time: the sort key
    processed      BOOLEAN NOT NULL DEFAULT FALSE,
    from_email     TEXT,                          -- lower-cased sender, for the filter
    subject_folded TEXT,                          -- case-folded subject, for literal search
    document       TEXT    NOT NULL               -- the email as JSON text (jsonb cannot hold U+0000)
);

CREATE INDEX emails_newest_first ON emails (received_at DESC, id DESC);
CREATE INDEX emails_by_sender ON emails (from_email, received_at DESC, id DESC);

-- Attachment and inline bytes, stored once per content hash.
CREATE TABLE blobs (
    sha256 TEXT   PRIMARY KEY,
    size   BIGINT NOT NULL,
    data   BYTEA  NOT NULL
);
