-- `is:unread` pages (`q=is:unread from:x`): unread mail newest first, so a page walks
-- only unread emails. Outside a mailbox the index carries the columns the page tests
-- (trashed, the sender), so the walk reads no email row until the page is chosen.
-- Its cost: one entry per unread email, written on ingest and on each read/unread change.
CREATE INDEX emails_unread_newest_first
    ON emails (received_at DESC, id DESC, trashed, sender_folded, from_email)
    WHERE NOT processed;
CREATE INDEX mailbox_emails_unread_newest_first
    ON mailbox_emails (mailbox, received_at DESC, email_id DESC, trashed)
    WHERE NOT is_read;
