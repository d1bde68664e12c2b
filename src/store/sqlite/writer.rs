//! SQLite's writer task: group commit. Concurrent deliveries queue here; whatever has
//! queued up is committed in one durable transaction (see `commit_batch`: one bad email
//! never fails its neighbours), and each request is answered only after the commit that
//! holds it. New subjects and words join the search indexes in bulk.

use std::collections::{HashMap, HashSet};

use sqlx::{Connection, QueryBuilder, Sqlite, SqliteConnection};
use tokio::sync::mpsc;

use super::super::batch::{Job, Reply, next_batch, part_bytes};
use super::super::blobs::{insert_chunked_sqlite, is_chunked};
use super::super::changes::new_email_events;
use super::super::{Inserted, StoreError, search_text, to_micros};
use crate::email::{EmailId, NewEmail, stored_size};
use crate::telemetry::{error_chain, metrics};

/// Emails with at most this many part bytes share the batch's statements (their parts
/// are copied into them); larger parts get a statement of their own and are moved.
const MAX_SHARED_PART_BYTES: usize = 1024 * 1024;
/// New subjects join the trigram index in bulk, once this many new emails have been
/// stored, rather than through a trigger in every commit: FTS5 writes a segment per
/// transaction, which cost a third of the writer's time. Searches check the emails not
/// yet indexed (fewer than this) directly.
const INDEX_SUBJECTS_EVERY: usize = 128;
/// Rows of one shared blob INSERT; emails with many parts take several statements.
const BLOB_ROWS_PER_STATEMENT: usize = 1_000;
/// Rows of one INSERT into `mailbox_emails` or `email_parts` (four variables a row).
const STATE_ROWS_PER_STATEMENT: usize = 1_000;

pub(super) async fn run_writer(mut conn: SqliteConnection, mut jobs: mpsc::Receiver<Job>) {
    let mut unindexed = 0;
    while let Some(batch) = next_batch(&mut jobs).await {
        let (mut emails, replies): (Vec<Pending>, Vec<Reply>) = batch
            .into_iter()
            .map(|job| ((job.email, job.document), job.reply))
            .unzip();
        match commit_batch(&mut conn, &mut emails).await {
            Ok(results) => {
                metrics::commit_batch("sqlite", results.len());
                unindexed += results
                    .iter()
                    .filter(|result| matches!(result, Ok(Inserted::New(_))))
                    .count();
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(result);
                }
            }
            Err(error) => {
                tracing::error!(error = %error_chain(&error), emails = emails.len(), "group commit failed");
                for reply in replies {
                    let _ = reply.send(Err(classify(&error)));
                }
            }
        }
        // After the replies: the batch's requests do not wait for the index.
        if unindexed >= INDEX_SUBJECTS_EVERY {
            if let Err(error) = index_subjects(&mut conn).await {
                // Searches still find these emails, directly; retried after the next ones.
                tracing::warn!(error = %error_chain(&error), "indexing subjects failed");
            }
            unindexed = 0;
        }
    }
    let _ = conn.close().await;
}

/// An email and its serialized document, as the writer stores them.
type Pending = (NewEmail, String);

/// One durable transaction for the whole batch. Emails whose parts are small are written
/// together: one INSERT for their rows and one for their parts, a few round trips to the
/// connection's worker thread for the whole batch. If that fails, the transaction starts
/// over and each email gets its own savepoint (an email without parts is one INSERT,
/// which SQLite undoes alone on failure), so one bad email never fails its neighbours.
/// Emails with large parts always go one at a time, their bytes moved into their
/// statements (not copied): `emails` loses them.
async fn commit_batch(
    conn: &mut SqliteConnection,
    emails: &mut [Pending],
) -> Result<Vec<Result<Inserted, StoreError>>, sqlx::Error> {
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    let mut results: Vec<Option<Result<Inserted, StoreError>>> =
        emails.iter().map(|_| None).collect();
    let together: Vec<usize> = (0..emails.len())
        .filter(|&i| part_bytes(&emails[i].0) <= MAX_SHARED_PART_BYTES)
        .collect();
    if together.len() > 1 {
        // No savepoint: these are the transaction's first statements, so on failure the
        // whole transaction is rolled back, which saves two round trips per batch.
        match insert_together(&mut tx, emails, &together).await {
            Ok(inserted) => {
                for (&i, inserted) in together.iter().zip(inserted) {
                    results[i] = Some(Ok(inserted));
                }
            }
            Err(error) => {
                tx.rollback().await?;
                tracing::warn!(error = %error_chain(&error), emails = together.len(), "storing a batch one email at a time");
                tx = conn.begin_with("BEGIN IMMEDIATE").await?;
            }
        }
    }
    for ((email, document), slot) in emails.iter_mut().zip(results.iter_mut()) {
        if slot.is_some() {
            continue;
        }
        let result = if email.blobs.is_empty() {
            insert_one(&mut tx, email, document).await
        } else {
            let mut savepoint = tx.begin().await?;
            let result = insert_one(&mut savepoint, email, document).await;
            match result {
                Ok(_) => savepoint.commit().await?,
                Err(_) => savepoint.rollback().await?,
            }
            result
        };
        if let Err(error) = &result {
            tracing::error!(email_id = %email.id, error = %error_chain(error), "email not stored");
        }
        *slot = Some(result.map_err(|error| classify(&error)));
    }
    tx.commit().await?;
    Ok(results
        .into_iter()
        .map(|result| result.expect("every email has a result"))
        .collect())
}

/// The emails at `which` in one statement, then the parts of the new ones in another.
async fn insert_together(
    conn: &mut SqliteConnection,
    emails: &[Pending],
    which: &[usize],
) -> Result<Vec<Inserted>, sqlx::Error> {
    let mut sql = QueryBuilder::<Sqlite>::new(
        "INSERT INTO emails (id, dedup_key, received_at, processed, from_email, subject_folded, \
         sender_folded, recipients_folded, attachment_count, size_bytes, thread_key, provider, document) ",
    );
    sql.push_values(
        which.iter().map(|&i| &emails[i]),
        |mut row, (email, document)| {
            row.push_bind(email.id.to_string())
                .push_bind(email.dedup_key.clone())
                .push_bind(to_micros(email.received_at))
                .push_bind(email.processed)
                .push_bind(search_text(email.from_email().as_deref()))
                .push_bind(search_text(email.message.subject.as_deref()))
                .push_bind(email.search.sender.clone())
                .push_bind(email.search.recipients.clone())
                .push_bind(i64::from(email.search.attachments))
                .push_bind(stored_size(document.len(), &email.message) as i64)
                .push_bind(email.search.thread_key.clone())
                .push_bind(email.message.provider.name())
                .push_bind(document.clone());
        },
    );
    sql.push(" ON CONFLICT DO NOTHING RETURNING id, rowid");
    let new: HashMap<String, i64> = sql
        .build_query_as()
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .collect();

    let mut results = Vec::with_capacity(which.len());
    let mut stored: Vec<(&NewEmail, i64)> = Vec::with_capacity(new.len());
    let mut blobs: Vec<&(String, Vec<u8>)> = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    for &i in which {
        let email = &emails[i].0;
        if let Some(&rowid) = new.get(&email.id.to_string()) {
            blobs.extend(email.blobs.iter().filter(|(hash, _)| seen.insert(hash)));
            stored.push((email, rowid));
            results.push(Inserted::New(email.id));
        } else {
            // A redelivery (perhaps of an email earlier in this very batch).
            results.push(Inserted::Duplicate(existing_id(conn, email).await?));
        }
    }
    // Three variables a row, well under SQLite's limit of 32,766 per statement.
    for chunk in blobs.chunks(BLOB_ROWS_PER_STATEMENT) {
        let mut sql = QueryBuilder::<Sqlite>::new("INSERT INTO blobs (blake3, size, data) ");
        sql.push_values(chunk, |mut row, (hash, bytes)| {
            row.push_bind(hash.clone())
                .push_bind(bytes.len() as i64)
                .push_bind(bytes.clone());
        });
        sql.push(" ON CONFLICT (blake3) DO NOTHING");
        sql.build().execute(&mut *conn).await?;
    }
    insert_state_rows(conn, &stored).await?;
    Ok(results)
}

/// The new emails' `mailbox_emails`, `email_parts`, change-log and `email_words` rows
/// (after their blobs), each email with its rowid.
async fn insert_state_rows(
    conn: &mut SqliteConnection,
    stored: &[(&NewEmail, i64)],
) -> Result<(), sqlx::Error> {
    let emails: Vec<&NewEmail> = stored.iter().map(|(email, _)| *email).collect();
    let mailboxes: Vec<(&NewEmail, &String)> = emails
        .iter()
        .flat_map(|email| email.mailboxes.iter().map(move |mailbox| (*email, mailbox)))
        .collect();
    for chunk in mailboxes.chunks(STATE_ROWS_PER_STATEMENT) {
        let mut sql = QueryBuilder::<Sqlite>::new(
            "INSERT INTO mailbox_emails (mailbox, email_id, received_at, is_read) ",
        );
        sql.push_values(chunk, |mut row, (email, mailbox)| {
            row.push_bind((*mailbox).clone())
                .push_bind(email.id.to_string())
                .push_bind(to_micros(email.received_at))
                .push_bind(email.processed);
        });
        sql.build().execute(&mut *conn).await?;
    }
    let parts: Vec<(String, crate::email::PartRef)> = emails
        .iter()
        .flat_map(|email| {
            let id = email.id.to_string();
            email
                .message
                .part_refs()
                .into_iter()
                .map(move |part| (id.clone(), part))
        })
        .collect();
    for chunk in parts.chunks(STATE_ROWS_PER_STATEMENT) {
        let mut sql = QueryBuilder::<Sqlite>::new(
            "INSERT INTO email_parts (email_id, kind, position, blob) ",
        );
        sql.push_values(chunk, |mut row, (id, part)| {
            row.push_bind(id.clone())
                .push_bind(part.kind.field())
                .push_bind(part.position as i64)
                .push_bind(part.blake3.clone());
        });
        sql.build().execute(&mut *conn).await?;
    }
    for mut sql in new_email_events::<Sqlite>(&emails) {
        sql.build().execute(&mut *conn).await?;
    }
    // One statement for the batch, by the rowids the INSERT returned.
    for chunk in stored.chunks(STATE_ROWS_PER_STATEMENT) {
        let mut sql = QueryBuilder::<Sqlite>::new("INSERT INTO email_words (email_rowid, words) ");
        sql.push_values(chunk, |mut row, (email, rowid)| {
            row.push_bind(*rowid).push_bind(email.search.words.as_str());
        });
        sql.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Adds every email past the index's mark to the subject and word indexes, and moves
/// the mark, in one transaction.
pub(super) async fn index_subjects(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    sqlx::raw_sql(
        "INSERT INTO emails_subject_trigrams (rowid, subject_folded)
             SELECT rowid, subject_folded FROM emails
             WHERE rowid > (SELECT indexed_up_to FROM subject_index_progress) ORDER BY rowid;
         INSERT INTO emails_words (rowid, words)
             SELECT email_rowid, words FROM email_words
             WHERE email_rowid > (SELECT indexed_up_to FROM subject_index_progress) ORDER BY email_rowid;
         UPDATE subject_index_progress SET indexed_up_to = (SELECT coalesce(max(rowid), 0) FROM emails);",
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

async fn existing_id(
    conn: &mut SqliteConnection,
    email: &NewEmail,
) -> Result<EmailId, sqlx::Error> {
    let existing: String =
        sqlx::query_scalar("SELECT id FROM emails WHERE dedup_key = ? OR id = ? LIMIT 1")
            .bind(&email.dedup_key)
            .bind(email.id.to_string())
            .fetch_one(&mut *conn)
            .await?;
    parse_id(&existing)
}

async fn insert_one(
    conn: &mut SqliteConnection,
    email: &mut NewEmail,
    document: &str,
) -> Result<Inserted, sqlx::Error> {
    let rowid: Option<i64> = sqlx::query_scalar(
        "INSERT INTO emails (id, dedup_key, received_at, processed, from_email, subject_folded,
             sender_folded, recipients_folded, attachment_count, size_bytes, thread_key, provider, document)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT DO NOTHING
         RETURNING rowid",
    )
    .bind(email.id.to_string())
    .bind(&email.dedup_key)
    .bind(to_micros(email.received_at))
    .bind(email.processed)
    .bind(search_text(email.from_email().as_deref()))
    .bind(search_text(email.message.subject.as_deref()))
    .bind(email.search.sender.clone())
    .bind(email.search.recipients.clone())
    .bind(i64::from(email.search.attachments))
    .bind(stored_size(document.len(), &email.message) as i64)
    .bind(email.search.thread_key.clone())
    .bind(email.message.provider.name())
    .bind(document.to_owned())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(rowid) = rowid else {
        return Ok(Inserted::Duplicate(existing_id(conn, email).await?));
    };
    for (hash, bytes) in std::mem::take(&mut email.blobs) {
        if is_chunked(bytes.len()) {
            insert_chunked_sqlite(conn, &hash, &bytes).await?;
            continue;
        }
        sqlx::query(
            "INSERT INTO blobs (blake3, size, data) VALUES (?, ?, ?) ON CONFLICT (blake3) DO NOTHING",
        )
        .bind(hash)
        .bind(bytes.len() as i64)
        // By value: the statement takes the buffer instead of copying tens of megabytes.
        .bind(bytes)
        .execute(&mut *conn)
        .await?;
    }
    insert_state_rows(conn, &[(&*email, rowid)]).await?;
    Ok(Inserted::New(email.id))
}

fn parse_id(text: &str) -> Result<EmailId, sqlx::Error> {
    text.parse().map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// SQLITE_FULL (13) is the one failure worth naming to the client.
fn classify(error: &sqlx::Error) -> StoreError {
    match error.as_database_error().and_then(|e| e.code()) {
        Some(code) if code == "13" => StoreError::DiskFull,
        _ => StoreError::Database(sqlx::Error::Protocol(error.to_string())),
    }
}
