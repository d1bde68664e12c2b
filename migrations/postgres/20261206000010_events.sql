-- The change log (DESIGN §7): every new email, flag change and delete, in commit order,
-- so that event streams resume from `Last-Event-ID` and reach every instance. Writers
-- take an advisory lock just before they add rows here and hold it to their commit, so
-- sequence numbers become visible in order and a reader never skips one.
CREATE TABLE mail_events (
    seq       BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at        BIGINT  NOT NULL,  -- microseconds since the epoch
    kind      TEXT    NOT NULL,  -- email | flags | deleted
    email_id  TEXT    NOT NULL,
    mailboxes TEXT    NOT NULL,  -- JSON array: the mailboxes the event concerns
    data      TEXT    NOT NULL   -- JSON object: the event's own fields
);
CREATE INDEX mail_events_by_time ON mail_events (at);
