-- Webmail sessions (DESIGN §8): server-side, so several instances share them. The
-- cookie holds a random 256-bit id; only its SHA-256 is kept, so a copy of the
-- database opens no session.
CREATE TABLE webmail_sessions (
    id_digest    TEXT   PRIMARY KEY,                  -- SHA-256 of the cookie's id, hex
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token   TEXT   NOT NULL,                     -- sent back with every POST
    created_at   BIGINT NOT NULL,                     -- for the absolute expiry
    last_seen_at BIGINT NOT NULL                      -- for the idle expiry
);
CREATE INDEX webmail_sessions_by_user ON webmail_sessions (user_id);

-- Senders whose remote images a user always shows ("always show images from …").
CREATE TABLE webmail_image_senders (
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    sender  TEXT   NOT NULL,                          -- lower-cased address
    PRIMARY KEY (user_id, sender)
);

-- The key that signs the short-lived URLs of email bodies and their inline parts
-- (a sandboxed frame's requests carry no cookie); one row, made at first use.
CREATE TABLE webmail_signing_key (
    only_row INTEGER PRIMARY KEY CHECK (only_row = 1),
    secret   TEXT    NOT NULL                         -- 32 random bytes, hex
);
