-- Each mailbox's counts, kept by a trigger in the same transaction as every change to
-- `mailbox_emails`, so that `GET /mailboxes` and the webmail read a few rows instead of
-- counting them all. Trashed mail is not counted. The first count runs once, here.
-- Writers insert mailbox rows in mailbox order (see the writer), so that two
-- transactions take these rows' locks in the same order.
CREATE TABLE mailbox_counts (
    mailbox TEXT   PRIMARY KEY NOT NULL,
    total   BIGINT NOT NULL,  -- not trashed
    unread  BIGINT NOT NULL   -- of those, not read
);
INSERT INTO mailbox_counts (mailbox, total, unread)
    SELECT mailbox, count(*), sum(CASE WHEN is_read THEN 0 ELSE 1 END)
    FROM mailbox_emails WHERE NOT trashed GROUP BY mailbox;

CREATE FUNCTION mailbox_counts_follow() RETURNS trigger AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') AND NOT OLD.trashed THEN
        UPDATE mailbox_counts
            SET total = total - 1, unread = unread - CASE WHEN OLD.is_read THEN 0 ELSE 1 END
            WHERE mailbox = OLD.mailbox;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NOT NEW.trashed THEN
        INSERT INTO mailbox_counts (mailbox, total, unread)
            VALUES (NEW.mailbox, 1, CASE WHEN NEW.is_read THEN 0 ELSE 1 END)
            ON CONFLICT (mailbox) DO UPDATE
            SET total = mailbox_counts.total + 1, unread = mailbox_counts.unread + EXCLUDED.unread;
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER mailbox_counts_follow
    AFTER INSERT OR DELETE OR UPDATE OF is_read, trashed ON mailbox_emails
    FOR EACH ROW EXECUTE FUNCTION mailbox_counts_follow();
