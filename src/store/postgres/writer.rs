//! PostgreSQL's group commit: a few writer tasks share the queue, and each commits
//! whatever has queued up in one transaction (one INSERT for the emails, a few for their
//! parts), so concurrent deliveries share a WAL flush and a handful of round trips. If
//! the shared statements fail, each email gets a transaction of its own, so one bad
//! email never fails its neighbours. Several writers keep commits in flight while the
//! next batch fills; rows are written in key order, so two batches never deadlock.

use std::collections::HashSet;
use std::sync::Arc;

use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;

use super::super::batch::{Job, Queue, Reply, next_batch};
use super::super::blobs::{insert_chunked_postgres, is_chunked};
use super::super::changes::{EVENT_LOCK, new_email_events};
use super::super::{Inserted, StoreError, search_text, to_micros};
use super::vector::vector_literal;
use super::{classify, parse_id};
use crate::email::{NewEmail, PartRef, stored_size};
use crate::telemetry::{error_chain, metrics};

/// Rows of one INSERT into `mailbox_emails` or `email_parts` (four parameters a row).
const STATE_ROWS_PER_STATEMENT: usize = 1_000;
/// Writer tasks; each holds one connection while it commits. Commits are serialised by
/// the change log's lock (`EVENT_LOCK`, held to the commit), so more writers only make
/// smaller batches: two keep one batch filling while the other commits. Measured
/// against 1, 4 and 8 at 16 connections (bench/README.md): 2 was best, small mail
/// 2,300/s against 1,850/s with 4 on a durable (`fsync=on`) server.
const WRITERS: usize = 2;
/// Rows of one blob INSERT: three parameters each, far under PostgreSQL's 65,535.
const BLOB_ROWS_PER_STATEMENT: usize = 1_000;

/// An email and its serialized document, as a writer stores them.
type Pending = (NewEmail, String);

/// Starts the writers on `pool`; they stop once the queue is closed and drained.
pub(super) fn start(pool: &PgPool) -> (Queue<String>, Vec<JoinHandle<()>>) {
    let (queue, jobs) = Queue::new();
    let jobs = Arc::new(Mutex::new(jobs));
    let writers = (0..WRITERS)
        .map(|_| tokio::spawn(run_writer(pool.clone(), jobs.clone())))
        .collect();
    (queue, writers)
}

async fn run_writer(pool: PgPool, jobs: Arc<Mutex<mpsc::Receiver<Job<String>>>>) {
    loop {
        // Only the batch is taken under the lock; the commit runs beside the next one.
        let batch = next_batch(&mut *jobs.lock().await).await;
        let Some(batch) = batch else { break };
        let (emails, replies): (Vec<Pending>, Vec<Reply>) = batch
            .into_iter()
            .map(|job| ((job.email, job.document), job.reply))
            .unzip();
        let results = commit_batch(&pool, &emails).await;
        for (reply, result) in replies.into_iter().zip(results) {
            let _ = reply.send(result);
        }
    }
}

async fn commit_batch(pool: &PgPool, emails: &[Pending]) -> Vec<Result<Inserted, StoreError>> {
    if emails.len() > 1 {
        match insert_together(pool, emails).await {
            Ok(inserted) => {
                metrics::commit_batch("postgres", emails.len());
                return inserted.into_iter().map(Ok).collect();
            }
            Err(error) => match StoreError::from(error) {
                // The server is away: one transaction each would only wait longer.
                StoreError::Unavailable(error) => {
                    let text = error_chain(&error);
                    return emails
                        .iter()
                        .map(|_| Err(StoreError::Unavailable(sqlx::Error::Protocol(text.clone()))))
                        .collect();
                }
                error => {
                    tracing::warn!(error = %error_chain(&error), emails = emails.len(), "storing a batch one email at a time");
                }
            },
        }
    }
    let mut results = Vec::with_capacity(emails.len());
    for (email, document) in emails {
        let result = insert_alone(pool, email, document).await.map_err(classify);
        if let Err(error) = &result {
            tracing::error!(email_id = %email.id, error = %error_chain(error), "email not stored");
        }
        results.push(result);
    }
    results
}

/// One email in its own transaction. A delete that dropped a blob this email reuses,
/// between its blob insert and its parts, fails it with a foreign-key violation; the
/// blob is gone by then, so a second attempt stores it anew.
async fn insert_alone(
    pool: &PgPool,
    email: &NewEmail,
    document: &str,
) -> Result<Inserted, StoreError> {
    match insert_once(pool, email, document).await {
        Err(StoreError::Database(error)) if is_foreign_key_violation(&error) => {
            insert_once(pool, email, document).await
        }
        result => result,
    }
}

fn is_foreign_key_violation(error: &sqlx::Error) -> bool {
    error.as_database_error().and_then(|e| e.code()).as_deref() == Some("23503")
}

async fn insert_once(
    pool: &PgPool,
    email: &NewEmail,
    document: &str,
) -> Result<Inserted, StoreError> {
    let mut tx = pool.begin().await?;
    let inserted = insert_together_on(&mut tx, &[(email, document)]).await?;
    tx.commit().await?;
    metrics::commit_batch("postgres", 1);
    Ok(inserted[0])
}

async fn insert_together(pool: &PgPool, emails: &[Pending]) -> Result<Vec<Inserted>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let rows: Vec<(&NewEmail, &str)> = emails.iter().map(|(e, d)| (e, d.as_str())).collect();
    let inserted = insert_together_on(&mut tx, &rows).await?;
    tx.commit().await?;
    Ok(inserted)
}

/// The emails in one statement, then the new ones' parts, inside the caller's transaction.
async fn insert_together_on(
    conn: &mut PgConnection,
    emails: &[(&NewEmail, &str)],
) -> Result<Vec<Inserted>, sqlx::Error> {
    let mut in_key_order: Vec<&(&NewEmail, &str)> = emails.iter().collect();
    in_key_order.sort_by(|a, b| a.0.dedup_key.cmp(&b.0.dedup_key));
    let mut sql = QueryBuilder::<Postgres>::new(
        "INSERT INTO emails (id, dedup_key, received_at, processed, from_email, subject_folded, \
         sender_folded, recipients_folded, attachment_count, size_bytes, thread_key, words, provider, document) ",
    );
    sql.push_values(in_key_order, |mut row, (email, document)| {
        row.push_bind(email.id.to_string())
            .push_bind(email.dedup_key.as_str())
            .push_bind(to_micros(email.received_at))
            .push_bind(email.processed)
            .push_bind(search_text(email.from_email().as_deref()))
            .push_bind(search_text(email.message.subject.as_deref()))
            .push_bind(email.search.sender.as_deref())
            .push_bind(email.search.recipients.as_deref())
            .push_bind(i64::from(email.search.attachments))
            .push_bind(stored_size(document.len(), &email.message) as i64)
            .push_bind(email.search.thread_key.as_deref())
            .push_bind(vector_literal(&email.search.words))
            .push_unseparated("::tsvector")
            .push_bind(email.message.provider.name())
            .push_bind(*document);
    });
    sql.push(" ON CONFLICT DO NOTHING RETURNING id");
    let new: HashSet<String> = sql
        .build_query_scalar()
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .collect();

    let mut results = Vec::with_capacity(emails.len());
    let mut blobs: Vec<&(String, Vec<u8>)> = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    for (email, _) in emails {
        if new.contains(&email.id.to_string()) {
            blobs.extend(email.blobs.iter().filter(|(hash, _)| seen.insert(hash)));
            results.push(Inserted::New(email.id));
        } else {
            // ON CONFLICT waited for any concurrent delivery to commit: its row is visible.
            results.push(Inserted::Duplicate(existing_id(conn, email).await?));
        }
    }
    blobs.sort_by(|a, b| a.0.cmp(&b.0));
    // Large blobs in chunks, one at a time (still in blob order: see `insert_state_rows`).
    let (large, blobs): (Vec<_>, Vec<_>) = blobs
        .into_iter()
        .partition(|(_, bytes)| is_chunked(bytes.len()));
    for (hash, bytes) in large {
        insert_chunked_postgres(conn, hash, bytes).await?;
    }
    for chunk in blobs.chunks(BLOB_ROWS_PER_STATEMENT) {
        let mut sql = QueryBuilder::<Postgres>::new("INSERT INTO blobs (blake3, size, data) ");
        sql.push_values(chunk, |mut row, (hash, bytes)| {
            row.push_bind(hash.as_str())
                .push_bind(bytes.len() as i64)
                .push_bind(bytes.as_slice());
        });
        sql.push(" ON CONFLICT (blake3) DO NOTHING");
        sql.build().execute(&mut *conn).await?;
    }
    let stored: Vec<&NewEmail> = emails
        .iter()
        .zip(&results)
        .filter(|(_, inserted)| matches!(inserted, Inserted::New(_)))
        .map(|((email, _), _)| *email)
        .collect();
    insert_state_rows(conn, &stored).await?;
    Ok(results)
}

/// The new emails' `mailbox_emails` and `email_parts` rows (after their blobs). Parts go
/// in blob order, the order in which a delete locks blobs, so the two never deadlock.
async fn insert_state_rows(
    conn: &mut PgConnection,
    emails: &[&NewEmail],
) -> Result<(), sqlx::Error> {
    let mut mailboxes: Vec<(&NewEmail, &String)> = emails
        .iter()
        .flat_map(|email| email.mailboxes.iter().map(move |mailbox| (*email, mailbox)))
        .collect();
    // In mailbox order: their counts' rows are locked in this order (migration 13).
    mailboxes.sort_by(|a, b| a.1.cmp(b.1));
    for chunk in mailboxes.chunks(STATE_ROWS_PER_STATEMENT) {
        let mut sql = QueryBuilder::<Postgres>::new(
            "INSERT INTO mailbox_emails (mailbox, email_id, received_at, is_read) ",
        );
        sql.push_values(chunk, |mut row, (email, mailbox)| {
            row.push_bind(mailbox.as_str())
                .push_bind(email.id.to_string())
                .push_bind(to_micros(email.received_at))
                .push_bind(email.processed);
        });
        sql.build().execute(&mut *conn).await?;
    }
    let mut parts: Vec<(String, PartRef)> = emails
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
    parts.sort_by(|a, b| a.1.blake3.cmp(&b.1.blake3));
    for chunk in parts.chunks(STATE_ROWS_PER_STATEMENT) {
        let mut sql = QueryBuilder::<Postgres>::new(
            "INSERT INTO email_parts (email_id, kind, position, blob) ",
        );
        sql.push_values(chunk, |mut row, (id, part)| {
            row.push_bind(id.as_str())
                .push_bind(part.kind.field())
                .push_bind(part.position as i64)
                .push_bind(part.blake3.as_str());
        });
        sql.build().execute(&mut *conn).await?;
    }
    if !emails.is_empty() {
        // Last, held to the commit: see `changes`.
        sqlx::query(EVENT_LOCK).execute(&mut *conn).await?;
        for mut sql in new_email_events::<Postgres>(emails) {
            sql.build().execute(&mut *conn).await?;
        }
    }
    Ok(())
}

async fn existing_id(
    conn: &mut PgConnection,
    email: &NewEmail,
) -> Result<crate::email::EmailId, sqlx::Error> {
    let existing: String =
        sqlx::query_scalar("SELECT id FROM emails WHERE dedup_key = $1 OR id = $2 LIMIT 1")
            .bind(&email.dedup_key)
            .bind(email.id.to_string())
            .fetch_one(&mut *conn)
            .await?;
    parse_id(&existing).map_err(|e| sqlx::Error::Protocol(e.to_string()))
}
