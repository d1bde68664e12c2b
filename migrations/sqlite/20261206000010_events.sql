-- The change log (DESIGN §7): every new email, flag change and delete, in commit order,
-- so that event streams resume from `Last-Event-ID` and reach every instance. Sequence
-- numbers are never reused (AUTOINCREMENT), so a resumed stream never skips an event.
CREATE TABLE mail_events (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    at        INTEGER NOT NULL,  -- microseconds since the epoch
    kind      TEXT    NOT NULL,  -- email | flags | deleted
    email_id  TEXT    NOT NULL,
    mailboxes TEXT    NOT NULL,  -- JSON array: the mailboxes the event concerns
    data      TEXT    NOT NULL   -- JSON object: the event's own fields
);
CREATE INDEX mail_events_by_time ON mail_events (at);
