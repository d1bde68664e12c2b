-- The per-IP rate limits and the lockouts, shared by every instance on this database
-- (README, "Several instances"). Instants are microseconds since the epoch, from the
-- instances' clocks. Rows whose windows have all ended are deleted in the background.

-- One row per rate-limit policy and client (an IP, or an IPv6 /64): the policy's fixed
-- windows, in the order they are configured, each with its start and count. A request
-- is counted by one INSERT … ON CONFLICT DO UPDATE, which holds the row's lock, so
-- concurrent requests on any instance never overshoot.
CREATE TABLE rate_limit_windows (
    policy     TEXT      NOT NULL,
    client     TEXT      NOT NULL,
    starts     BIGINT[]  NOT NULL,                 -- each window's start
    counts     INTEGER[] NOT NULL,                 -- requests counted in each window
    counted    BOOLEAN   NOT NULL,                 -- whether the latest request was counted
    expires_at BIGINT    NOT NULL,                 -- when the last window ends
    PRIMARY KEY (policy, client)
);
CREATE INDEX rate_limit_windows_by_expiry ON rate_limit_windows (expires_at);

-- Failed authentications per scope ('api' keys, 'webmail' logins: counted apart) and
-- client, and the lockout they led to.
CREATE TABLE lockouts (
    scope        TEXT     NOT NULL,
    client       TEXT     NOT NULL,
    failures     BIGINT[] NOT NULL,                -- within the window, oldest first
    locked_until BIGINT,                           -- NULL: not locked out
    locked_now   BOOLEAN  NOT NULL,                -- whether the latest failure locked it
    expires_at   BIGINT   NOT NULL,                -- when nothing is left to remember
    PRIMARY KEY (scope, client)
);
CREATE INDEX lockouts_by_expiry ON lockouts (expires_at);
