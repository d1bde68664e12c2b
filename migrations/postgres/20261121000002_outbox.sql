-- Outbound mail accepted by the send API, with its delivery state (the sent folder too).
-- Instants are microseconds since the Unix epoch (UTC).
CREATE TABLE outbox (
    id              TEXT    PRIMARY KEY,           -- 24-hex ObjectId-style
    status          TEXT    NOT NULL,              -- queued | sending | sent | retrying | failed
    client_ip       TEXT    NOT NULL,              -- who asked, for the per-IP limits
    accepted_at     BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    next_attempt_at BIGINT  NOT NULL,              -- when queued/retrying rows are due
    claimed_at      BIGINT,                        -- when the current `sending` began
    attempts        BIGINT  NOT NULL DEFAULT 0,
    sender          TEXT    NOT NULL,              -- envelope sender
    recipients      TEXT    NOT NULL,              -- envelope recipients, JSON array
    recipient_count BIGINT  NOT NULL,              -- for SMTP_DAILY_QUOTA
    subject         TEXT    NOT NULL,
    summary         TEXT    NOT NULL,              -- what the API shows, JSON
    raw             BYTEA   NOT NULL,              -- the RFC 5322 message as sent
    last_error      TEXT,
    smtp_reply      TEXT,                          -- the relay's reply when sent
    sent_at         BIGINT
);

CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_by_client ON outbox (client_ip, accepted_at);
CREATE INDEX outbox_newest_first ON outbox (accepted_at DESC, id DESC);
