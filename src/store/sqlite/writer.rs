//! SQLite's writer task: group commit. Concurrent deliveries queue here; whatever has
//! queued up is committed in one durable transaction (see `commit_batch`: one bad email
//! never fails its neighbours), and each request is answered only after the commit that
//! holds it. New subjects and words join the search indexes in bulk.

use std::collections::{HashMap, HashSet};

use sqlx::{Connection, QueryBuilder, Sqlite, SqliteConnection};
use tokio::sync::mpsc;

use super::super::batch::{Job, Reply, next_batch, part_bytes};
use super::super::blobs::{insert_chunked_sqlite, is_chunked};
use super::super::{Inserted, StoreError};
use super::document::Lz4Document;
use super::statements::{SharedBlob, push_blobs, push_emails, push_state_rows};
use crate::email::{EmailId, NewEmail};
use crate::telemetry::{error_chain, metrics};

/// Emails with at most this many part bytes share the batch's statements (their parts
/// are copied into them); larger parts get a statement of their own and are moved.
const MAX_SHARED_PART_BYTES: usize = 1024 * 1024;
/// New subjects join the trigram index in bulk, once this many new emails have been
/// stored, rather than through a trigger in every commit: FTS5 writes a segment per
/// transaction, which cost a third of the writer's time. Searches check the emails not
/// yet indexed (fewer than this) directly.
const INDEX_SUBJECTS_EVERY: usize = 128;

/// An email and its document, as the writer stores them.
type Pending = (NewEmail, Lz4Document);

pub(super) async fn run_writer(
    mut conn: SqliteConnection,
    mut jobs: mpsc::Receiver<Job<Lz4Document>>,
) {
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

/// One durable transaction for the whole batch. Emails whose parts are small are written
/// together, in one multi-statement query from `BEGIN` to `COMMIT` (`statements`). If
/// that fails, the emails it did not store get a transaction of their own in which each
/// has its own savepoint, so one bad email never fails its neighbours. Emails with large
/// parts always go that way, their bytes moved into their statements (not copied):
/// `emails` loses them.
async fn commit_batch(
    conn: &mut SqliteConnection,
    emails: &mut [Pending],
) -> Result<Vec<Result<Inserted, StoreError>>, sqlx::Error> {
    let mut results: Vec<Option<Result<Inserted, StoreError>>> =
        emails.iter().map(|_| None).collect();
    let together: Vec<usize> = (0..emails.len())
        .filter(|&i| part_bytes(&emails[i].0) <= MAX_SHARED_PART_BYTES)
        .collect();
    if !together.is_empty() {
        match store_together(conn, emails, &together).await {
            Ok(inserted) => {
                for (&i, inserted) in together.iter().zip(inserted) {
                    results[i] = Some(Ok(inserted));
                }
            }
            Err(error) => {
                end_transaction(conn).await;
                tracing::warn!(error = %error_chain(&error), emails = together.len(), "storing a batch one email at a time");
            }
        }
    }
    if results.iter().any(Option::is_none) {
        store_one_by_one(conn, emails, &mut results).await?;
    }
    Ok(results
        .into_iter()
        .map(|result| result.expect("every email has a result"))
        .collect())
}

/// The emails at `which`, their blobs and state rows, in one transaction sent as one
/// query; then the ids of those that were redeliveries.
async fn store_together(
    conn: &mut SqliteConnection,
    emails: &[Pending],
    which: &[usize],
) -> Result<Vec<Inserted>, sqlx::Error> {
    let pending: Vec<(&NewEmail, &Lz4Document)> = which
        .iter()
        .map(|&i| (&emails[i].0, &emails[i].1))
        .collect();
    let new_emails: Vec<&NewEmail> = pending.iter().map(|(email, _)| *email).collect();
    let mut sql = QueryBuilder::<Sqlite>::new("BEGIN IMMEDIATE;\n");
    push_emails(&mut sql, &pending);
    push_blobs(&mut sql, &shared_blobs(&new_emails));
    push_state_rows(&mut sql, &new_emails);
    sql.push("SELECT id FROM temp.new_emails;\nCOMMIT;");
    let stored: HashSet<String> = sql
        .build_query_scalar()
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .collect();
    let mut results = Vec::with_capacity(which.len());
    for email in new_emails {
        if stored.contains(&email.id.to_string()) {
            results.push(Inserted::New(email.id));
        } else {
            // A redelivery (perhaps of an email earlier in this very batch).
            results.push(Inserted::Duplicate(existing_id(conn, email).await?));
        }
    }
    Ok(results)
}

/// Each blob of `emails` once, with the emails that hold it.
fn shared_blobs<'a>(emails: &[&'a NewEmail]) -> Vec<SharedBlob<'a>> {
    let mut blobs: Vec<SharedBlob<'a>> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for email in emails {
        for (hash, bytes) in &email.blobs {
            let at = *index.entry(hash.as_str()).or_insert_with(|| {
                blobs.push(SharedBlob {
                    hash,
                    bytes,
                    holders: Vec::new(),
                });
                blobs.len() - 1
            });
            blobs[at].holders.push(email.id.to_string());
        }
    }
    blobs
}

/// Rolls back what a failed multi-statement query left open. SQLite may already have
/// rolled back (after a full disk, say), in which case ROLLBACK only reports that no
/// transaction is active.
async fn end_transaction(conn: &mut SqliteConnection) {
    let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
}

/// The emails without a result yet, in one transaction, each in a savepoint of its own,
/// so that a failing email takes back only its own rows.
async fn store_one_by_one(
    conn: &mut SqliteConnection,
    emails: &mut [Pending],
    results: &mut [Option<Result<Inserted, StoreError>>],
) -> Result<(), sqlx::Error> {
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    for ((email, document), slot) in emails.iter_mut().zip(results.iter_mut()) {
        if slot.is_some() {
            continue;
        }
        let mut savepoint = tx.begin().await?;
        let result = insert_one(&mut savepoint, email, document).await;
        match result {
            Ok(_) => savepoint.commit().await?,
            Err(_) => savepoint.rollback().await?,
        }
        if let Err(error) = &result {
            tracing::error!(email_id = %email.id, error = %error_chain(error), "email not stored");
        }
        *slot = Some(result.map_err(|error| classify(&error)));
    }
    tx.commit().await
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
    document: &Lz4Document,
) -> Result<Inserted, sqlx::Error> {
    let mut sql = QueryBuilder::<Sqlite>::new("");
    push_emails(&mut sql, &[(&*email, document)]);
    sql.push("SELECT count(*) FROM temp.new_emails;");
    let stored: i64 = sql.build_query_scalar().fetch_one(&mut *conn).await?;
    if stored == 0 {
        return Ok(Inserted::Duplicate(existing_id(conn, email).await?));
    }
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
    let mut sql = QueryBuilder::<Sqlite>::new("");
    push_state_rows(&mut sql, &[&*email]);
    sql.build().execute(&mut *conn).await?;
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
