-- Webmail accounts (DESIGN §8). A user is an email address or a bare name, with an
-- argon2id password hash, a role, and the addresses whose mail it may read.
CREATE TABLE users (
    id                  BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- never reused
    login               TEXT    NOT NULL UNIQUE,            -- lower-cased, at most 320 bytes
    password_hash       TEXT    NOT NULL,                   -- argon2id, PHC string
    role                TEXT    NOT NULL,                   -- admin | user
    created_at          BIGINT  NOT NULL,
    password_changed_at BIGINT  NOT NULL                    -- sessions older than this are void
);

-- What a user may read: its own address, aliases, or a catch-all `*@domain`.
CREATE TABLE user_addresses (
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    address TEXT   NOT NULL,                                -- lower-cased, at most 320 bytes
    PRIMARY KEY (user_id, address)
);
