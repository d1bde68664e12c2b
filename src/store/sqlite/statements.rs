//! The SQL of a group commit on SQLite, written so that a whole batch can travel as one
//! multi-statement query. sqlx runs each SQLite connection on a thread of its own, and
//! every statement sent separately waits for that thread and then for the writer's task
//! to wake up; measured in the writer at 16 connections, a bare `BEGIN` took 0.3 ms of a
//! 2.8 ms batch of 8 emails, and the batch took eight such round trips.
//!
//! The rows that depend on which emails were new (mailboxes, parts, blobs, change log,
//! words) are written by joining `temp.new_emails`, filled right after the `emails`
//! INSERT, instead of by what that INSERT returned: a redelivery's INSERT does nothing,
//! so its rows find no partner there and are not written.

use sqlx::query_builder::Separated;
use sqlx::{QueryBuilder, Sqlite};

use super::super::batch::StoredDocument;
use super::super::changes::new_email_event;
use super::super::{search_text, to_micros};
use super::document::Lz4Document;
use crate::email::{NewEmail, PartRef, stored_size};

/// Run once on the writer's connection. Its temporary tables (they belong to their
/// connection): the emails the current statement batch stored, and the last email row
/// id before it; in memory, as they hold a batch at most and a temporary file only added
/// system calls to every batch (small mail 1.065x, typical 1.02x over 4 alternating
/// rounds). And a checkpoint every 3,000 pages (12 MB of WAL) instead of 1,000: a page
/// that several batches change is copied to the database once per checkpoint (1.05x
/// both sizes over 4 rounds, p99 unchanged; at 10,000 pages the checkpoint doubled it).
pub(super) const PREPARE_WRITER: &str = "PRAGMA temp_store = MEMORY;
PRAGMA wal_autocheckpoint = 3000;
CREATE TEMP TABLE IF NOT EXISTS new_emails (
    id          TEXT    PRIMARY KEY NOT NULL,
    email_rowid INTEGER NOT NULL
);
CREATE TEMP TABLE IF NOT EXISTS emails_before (last_rowid INTEGER NOT NULL)";

/// Rows of one INSERT: at most 13 variables a row, well under SQLite's 32,766 per statement.
const ROWS_PER_STATEMENT: usize = 1_000;

/// A part's bytes for the batch's blob INSERT, with the ids of the batch's emails that
/// hold it: the blob is written only if one of them was stored.
pub(super) struct SharedBlob<'a> {
    pub hash: &'a str,
    pub bytes: &'a [u8],
    pub holders: Vec<String>,
}

/// `INSERT INTO emails …` for `emails`, redeliveries left out by `ON CONFLICT DO NOTHING`,
/// then `temp.new_emails` refilled with those that were stored.
pub(super) fn push_emails(sql: &mut QueryBuilder<Sqlite>, emails: &[(&NewEmail, &Lz4Document)]) {
    sql.push(
        "DELETE FROM temp.emails_before;\n\
         INSERT INTO temp.emails_before SELECT coalesce(max(rowid), 0) FROM emails;\n",
    );
    for chunk in emails.chunks(ROWS_PER_STATEMENT) {
        sql.push(
            "INSERT INTO emails (id, dedup_key, received_at, processed, from_email, \
             subject_folded, sender_folded, recipients_folded, attachment_count, size_bytes, \
             thread_key, provider, document) ",
        );
        sql.push_values(chunk, |mut row, (email, document)| {
            row.push_bind(email.id.to_string())
                .push_bind(email.dedup_key.clone())
                .push_bind(to_micros(email.received_at))
                .push_bind(email.processed)
                .push_bind(search_text(email.from_email().as_deref()))
                .push_bind(search_text(email.message.subject.as_deref()))
                .push_bind(email.search.sender.clone())
                .push_bind(email.search.recipients.clone())
                .push_bind(i64::from(email.search.attachments))
                .push_bind(stored_size(document.json_len(), &email.message) as i64)
                .push_bind(email.search.thread_key.clone())
                .push_bind(email.message.provider.name())
                .push_bind(document.compressed.clone());
        });
        sql.push(" ON CONFLICT DO NOTHING;\n");
    }
    sql.push("DELETE FROM temp.new_emails;\n");
    for chunk in emails.chunks(ROWS_PER_STATEMENT) {
        // Row ids only grow (AUTOINCREMENT), so the rows past the mark are this batch's;
        // an email already stored under the same id is not.
        sql.push("INSERT INTO temp.new_emails (id, email_rowid) SELECT e.id, e.rowid FROM (");
        sql.push_values(chunk, |mut row, (email, _)| {
            row.push_bind(email.id.to_string());
        });
        sql.push(
            ") AS v JOIN emails AS e ON e.id = v.column1 \
             AND e.rowid > (SELECT last_rowid FROM temp.emails_before);\n",
        );
    }
}

/// The blobs of the batch's small parts, each written if an email holding it was stored.
pub(super) fn push_blobs(sql: &mut QueryBuilder<Sqlite>, blobs: &[SharedBlob<'_>]) {
    for chunk in blobs.chunks(ROWS_PER_STATEMENT) {
        sql.push("INSERT INTO blobs (blake3, size, data) SELECT column1, column2, column3 FROM (");
        sql.push_values(chunk, |mut row, blob| {
            row.push_bind(blob.hash.to_owned())
                .push_bind(blob.bytes.len() as i64)
                .push_bind(blob.bytes.to_vec())
                .push_bind(serde_json::Value::from(blob.holders.clone()).to_string());
        });
        // The WHERE also keeps `ON CONFLICT` from being read as a join's constraint.
        sql.push(
            ") AS v WHERE EXISTS (SELECT 1 FROM json_each(v.column4) AS holder \
             JOIN temp.new_emails AS n ON n.id = holder.value) \
             ON CONFLICT (blake3) DO NOTHING;\n",
        );
    }
}

/// The mailbox, part, change-log and word rows of the emails in `temp.new_emails`.
pub(super) fn push_state_rows(sql: &mut QueryBuilder<Sqlite>, emails: &[&NewEmail]) {
    let mailboxes: Vec<(&NewEmail, &String)> = emails
        .iter()
        .flat_map(|email| email.mailboxes.iter().map(move |mailbox| (*email, mailbox)))
        .collect();
    let insert = "INSERT INTO mailbox_emails (mailbox, email_id, received_at, is_read) \
                  SELECT v.column1, v.column2, v.column3, v.column4";
    push_joined(
        sql,
        insert,
        &mailboxes,
        "column2",
        |mut row, (email, mailbox)| {
            row.push_bind((*mailbox).clone())
                .push_bind(email.id.to_string())
                .push_bind(to_micros(email.received_at))
                .push_bind(email.processed);
        },
    );
    let parts: Vec<(String, PartRef)> = emails
        .iter()
        .flat_map(|email| {
            let id = email.id.to_string();
            let refs = email.message.part_refs();
            refs.into_iter().map(move |part| (id.clone(), part))
        })
        .collect();
    let insert = "INSERT INTO email_parts (email_id, kind, position, blob) \
                  SELECT v.column1, v.column2, v.column3, v.column4";
    push_joined(sql, insert, &parts, "column1", |mut row, (id, part)| {
        row.push_bind(id.clone())
            .push_bind(part.kind.field())
            .push_bind(part.position as i64)
            .push_bind(part.blake3.clone());
    });
    let insert = "INSERT INTO mail_events (at, kind, email_id, mailboxes, data) \
                  SELECT v.column1, v.column2, v.column3, v.column4, v.column5";
    push_joined(sql, insert, emails, "column3", |mut row, email| {
        let event = new_email_event(email);
        row.push_bind(event.at)
            .push_bind(event.kind)
            .push_bind(event.email_id)
            .push_bind(event.mailboxes)
            .push_bind(event.data);
    });
    let insert = "INSERT INTO email_words (email_rowid, words) SELECT n.email_rowid, v.column2";
    push_joined(sql, insert, emails, "column1", |mut row, email| {
        row.push_bind(email.id.to_string())
            .push_bind(email.search.words.clone());
    });
}

/// `insert` (an INSERT … SELECT of `v`'s columns) over `rows` as `VALUES`, in chunks,
/// each row kept only if the email id in its `id_column` was stored by this batch.
fn push_joined<T>(
    sql: &mut QueryBuilder<Sqlite>,
    insert: &str,
    rows: &[T],
    id_column: &str,
    mut bind: impl FnMut(Separated<'_, Sqlite, &'static str>, &T),
) {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        sql.push(insert).push(" FROM (");
        sql.push_values(chunk, &mut bind);
        sql.push(format_args!(
            ") AS v JOIN temp.new_emails AS n ON n.id = v.{id_column};\n"
        ));
    }
}
