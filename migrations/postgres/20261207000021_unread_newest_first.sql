-- `is:unread` pages (`q=is:unread from:x`): unread, untrashed mail newest first, so a page
-- walks only those emails. The queries write both tests as literals (`NOT processed AND
-- NOT trashed`), which is what lets the planner prove the index's predicate. The sender
-- is not in the index: B-tree entries are bounded and senders are not (see
-- `emails_by_sender_digest`). Its cost: one entry per unread email, written on ingest
-- and on each read/unread change.
CREATE INDEX emails_unread_newest_first
    ON emails (received_at DESC, id DESC)
    WHERE NOT processed AND NOT trashed;
CREATE INDEX mailbox_emails_unread_newest_first
    ON mailbox_emails (mailbox, received_at DESC, email_id DESC)
    WHERE NOT is_read AND NOT trashed;
