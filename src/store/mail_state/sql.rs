//! The SQL of the mail-state use cases: the same on both engines but for the fragments
//! each engine fills in (`{ids}`, `{mailboxes}`), and the late filing of search columns.

use sqlx::{PgConnection, SqliteConnection};

use super::Filed;
use crate::store::postgres::vector::vector_literal;

/// The flag columns `stored_email` reads, for a query on `emails e`.
pub(in crate::store) const SUMMARY_FLAGS: &str = "e.processed, e.starred, e.trashed";
/// The same, for a query through `mailbox_emails m`: that mailbox's flags.
pub(in crate::store) const MAILBOX_FLAGS: &str =
    "m.is_read AS processed, m.starred AS starred, m.trashed AS trashed";

pub(super) const SET_IN_MAILBOXES: &str = "UPDATE mailbox_emails SET is_read = coalesce($2, is_read), \
     starred = coalesce($3, starred), trashed = coalesce($4, trashed) WHERE email_id IN ({ids})";
/// Emails in no mailbox keep their flags on their row alone.
pub(super) const SET_UNFILED: &str = "UPDATE emails SET processed = coalesce($2, processed), \
     starred = coalesce($3, starred), trashed = coalesce($4, trashed) \
     WHERE id IN ({ids}) AND NOT EXISTS (SELECT 1 FROM mailbox_emails m WHERE m.email_id = emails.id)";
/// Read in every mailbox, starred in any, trashed in every.
pub(super) const SUMMARISE: &str = "UPDATE emails SET \
     processed = NOT EXISTS (SELECT 1 FROM mailbox_emails m WHERE m.email_id = emails.id AND NOT m.is_read), \
     starred = EXISTS (SELECT 1 FROM mailbox_emails m WHERE m.email_id = emails.id AND m.starred), \
     trashed = NOT EXISTS (SELECT 1 FROM mailbox_emails m WHERE m.email_id = emails.id AND NOT m.trashed) \
     WHERE id IN ({ids}) AND EXISTS (SELECT 1 FROM mailbox_emails m WHERE m.email_id = emails.id)";
/// A `flags` event for each email changed (in `$4` alone, when given).
pub(super) const FLAG_EVENTS: &str = "INSERT INTO mail_events (at, kind, email_id, mailboxes, data) \
     SELECT $2, 'flags', e.id, {mailboxes}, $3 FROM emails e WHERE e.id IN ({ids}) \
     AND (CAST($4 AS TEXT) IS NULL OR EXISTS \
     (SELECT 1 FROM mailbox_emails m WHERE m.email_id = e.id AND m.mailbox = $4))";
/// The emails a delete will drop, with their mailboxes, for their `deleted` events.
pub(super) const DELETED: &str =
    "SELECT e.id, {mailboxes} AS mailboxes FROM emails e WHERE e.id IN ({ids})";
pub(super) const DELETED_EVENT: &str = "INSERT INTO mail_events (at, kind, email_id, mailboxes, data) \
     VALUES ($1, 'deleted', $2, $3, '{}')";
/// PostgreSQL: the counts rows (migration 13) of the emails' mailboxes, locked in mailbox
/// order before a flag change or a delete updates them through the trigger. Ingest
/// takes them in the same order (its writer sorts mailbox rows), so the two never
/// deadlock.
pub(super) const LOCK_COUNTS: &str = "SELECT mailbox FROM mailbox_counts WHERE mailbox IN \
     (SELECT mailbox FROM mailbox_emails WHERE email_id IN ({ids})) ORDER BY mailbox FOR UPDATE";
/// PostgreSQL: the emails' own rows, in id order, after their counts rows. Mail in a
/// mailbox is serialised by its counts rows already; mail in none (stored before
/// mailboxes, or with no recipient) would otherwise be updated in whatever order each
/// statement meets it, and two changes over the same emails could deadlock.
pub(super) const LOCK_EMAILS: &str =
    "SELECT id FROM emails WHERE id IN ({ids}) ORDER BY id FOR UPDATE";
/// When each email went to the trash in all its mailboxes (`$2`: now), for
/// `TRASH_RETENTION_DAYS`; cleared when it leaves.
pub(super) const TRASH_TIMES: &str = "UPDATE emails SET trashed_at = \
     CASE WHEN trashed THEN coalesce(trashed_at, $2) ELSE NULL END WHERE id IN ({ids})";
pub(super) const BLOBS_OF: &str = "SELECT DISTINCT blob FROM email_parts WHERE email_id IN ({ids})";
pub(super) const DELETE_EMAILS: &str = "DELETE FROM emails WHERE id IN ({ids})";
/// PostgreSQL: an ingest that reuses one of these blobs holds a key-share lock on it
/// (the foreign key of its `email_parts` row) until it commits, so this waits for it;
/// the DELETE that follows is a new statement, which sees that ingest's rows. An ingest
/// that comes after waits for this transaction instead, and retries (see its writer).
pub(super) const LOCK_BLOBS: &str =
    "SELECT blake3 FROM blobs WHERE blake3 IN ({ids}) ORDER BY blake3 FOR UPDATE";
pub(super) const DELETE_UNUSED_BLOBS: &str = "DELETE FROM blobs WHERE blake3 IN ({ids}) \
     AND NOT EXISTS (SELECT 1 FROM email_parts p WHERE p.blob = blobs.blake3)";
/// SQLite: rowids of deleted emails can be handed out again, so the subject index's
/// mark must never stay above the largest rowid, or a new email would be taken as
/// indexed.
pub(super) const LOWER_SUBJECT_MARK: &str = "UPDATE subject_index_progress \
     SET indexed_up_to = min(indexed_up_to, (SELECT coalesce(max(rowid), 0) FROM emails))";
/// Kept by triggers (migration 13), so a few rows rather than a count of every email.
pub(super) const MAILBOX_COUNTS: &str = "SELECT mailbox, total, unread FROM mailbox_counts \
     WHERE total > 0 ORDER BY mailbox";
pub(super) const MAILBOXES_OF: &str = "SELECT mailbox, is_read, starred, trashed FROM mailbox_emails \
     WHERE email_id = $1 ORDER BY mailbox";
pub(super) const FILE_MAILBOX: &str = "INSERT INTO mailbox_emails \
     (mailbox, email_id, received_at, is_read, starred, trashed) \
     SELECT $1, id, received_at, processed, starred, trashed FROM emails WHERE id = $2 \
     ON CONFLICT DO NOTHING";
/// Only parts whose blob is there: a part that never had bytes has nothing to drop.
pub(super) const FILE_PART: &str = "INSERT INTO email_parts (email_id, kind, position, blob) \
     SELECT $1, $2, $3, blake3 FROM blobs WHERE blake3 = $4 ON CONFLICT DO NOTHING";

/// An id list as the JSON array the `{ids}` fragments read.
pub(super) fn json_ids<T: ToString>(ids: &[T]) -> String {
    let texts: Vec<String> = ids.iter().map(ToString::to_string).collect();
    serde_json::to_string(&texts).expect("strings serialize")
}

/// The search columns of an email filed late.
const FILE_SEARCH_COLUMNS: &str = "UPDATE emails SET sender_folded = $2, recipients_folded = $3, \
     attachment_count = $4, size_bytes = $5, thread_key = $6 WHERE id = $1";

/// Runs `FILE_SEARCH_COLUMNS` for `email` on `conn` (either engine).
macro_rules! file_search_columns {
    ($conn:expr, $id:expr, $email:expr) => {
        sqlx::query(FILE_SEARCH_COLUMNS)
            .bind($id)
            .bind($email.search.sender.as_deref())
            .bind($email.search.recipients.as_deref())
            .bind(i64::from($email.search.attachments))
            .bind($email.size as i64)
            .bind($email.search.thread_key.as_deref())
            .execute($conn)
            .await?
    };
}

/// SQLite: the search columns of an email filed late, and its words; an email stored
/// below the index's mark joins the word index here, once.
pub(super) async fn file_search_sqlite(
    conn: &mut SqliteConnection,
    email: &Filed,
) -> Result<(), sqlx::Error> {
    let id = email.id.to_string();
    file_search_columns!(&mut *conn, &id, email);
    let added = sqlx::query(
        "INSERT INTO email_words (email_rowid, words) SELECT rowid, $2 FROM emails WHERE id = $1 \
         ON CONFLICT (email_rowid) DO NOTHING",
    )
    .bind(&id)
    .bind(&email.search.words)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if added == 1 {
        sqlx::query(
            "INSERT INTO emails_words (rowid, words) SELECT email_rowid, words FROM email_words \
             WHERE email_rowid = (SELECT rowid FROM emails WHERE id = $1) \
             AND email_rowid <= (SELECT indexed_up_to FROM subject_index_progress)",
        )
        .bind(&id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// PostgreSQL: the search columns and word vector of an email filed late.
pub(super) async fn file_search_postgres(
    conn: &mut PgConnection,
    email: &Filed,
) -> Result<(), sqlx::Error> {
    let id = email.id.to_string();
    file_search_columns!(&mut *conn, &id, email);
    sqlx::query("UPDATE emails SET words = $2::tsvector WHERE id = $1 AND words IS NULL")
        .bind(&id)
        .bind(vector_literal(&email.search.words))
        .execute(&mut *conn)
        .await?;
    Ok(())
}
