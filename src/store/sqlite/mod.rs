//! SQLite engine: WAL + `synchronous=FULL`, one writer task with group commit, pooled readers.
//!
//! Concurrent deliveries queue at the writer, which commits whatever has queued up in one
//! durable transaction (see `commit_batch`: one bad email never fails its neighbours), and
//! each request is answered only after the commit that holds it. New subjects join the
//! search index in bulk (`INDEX_SUBJECTS_EVERY`); `search` lists and searches.

mod outbox;
mod search;

pub use outbox::SqliteOutbox;

use std::collections::HashSet;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, QueryBuilder, Sqlite, SqliteConnection};
use tokio::sync::{Mutex, mpsc};

use super::batch::{Job, Queue, Reply, next_batch, part_bytes};
use super::blobs::{BlobStore, SqliteBlobs, insert_chunked_sqlite, is_chunked};
use super::changes::{ChangeLog, SqliteChangeLog, new_email_events};
use super::mail_state::SqliteMailState;
use super::retention::Expiring;
use super::{
    EMAIL_COLUMNS, EmailQuery, Inserted, MailState, PoolUsage, Store, StoreError, search_text,
    stored_email, to_micros,
};
use crate::email::{EmailId, NewEmail, StoredEmail, part_refs, stored_size};
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
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

pub struct SqliteStore {
    readers: SqlitePool,
    /// Queue of the writer task.
    queue: Queue,
    writer: Mutex<Option<tokio::task::JoinHandle<()>>>,
    options: SqliteConnectOptions,
    /// Flag changes and deletes, on a connection of their own.
    state: SqliteMailState,
    changes: SqliteChangeLog,
    blobs: SqliteBlobs,
}

impl SqliteStore {
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = connect_options(url)?.create_if_missing(true);
        create_parent_directory(options.get_filename())?;
        create_private_file(options.get_filename())?;

        let mut writer = SqliteConnection::connect_with(&options).await?;
        verify_durability(&mut writer).await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone().read_only(true))
            .await?;

        let state = SqliteMailState {
            writer: SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options.clone())
                .await?,
            readers: readers.clone(),
        };
        let changes = SqliteChangeLog {
            readers: readers.clone(),
            writer: state.writer.clone(),
        };
        let (queue, jobs) = Queue::new();
        let task = tokio::spawn(run_writer(writer, jobs));
        Ok(Self {
            readers: readers.clone(),
            queue,
            writer: Mutex::new(Some(task)),
            options,
            state,
            changes,
            blobs: SqliteBlobs(readers.clone()),
        })
    }
}

/// How every connection to the file is made: WAL, `synchronous=FULL`, a busy timeout for
/// the moments another writer (the outbox, an import) holds the lock.
pub(super) fn connect_options(url: &str) -> Result<SqliteConnectOptions, StoreError> {
    Ok(SqliteConnectOptions::from_str(url)?
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true))
}

fn create_parent_directory(file: &Path) -> Result<(), StoreError> {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Directory {
                path: dir.display().to_string(),
                source,
            })
        }
        _ => Ok(()),
    }
}

/// Creates a missing database file with mode 0600 before SQLite opens it, as mail is
/// private: SQLite gives the `-wal` and `-shm` files the mode of the database file.
/// An existing file keeps its mode.
fn create_private_file(file: &Path) -> Result<(), StoreError> {
    // sqlx names an in-memory database `file:…`: there is no file to create.
    if file.as_os_str().as_encoded_bytes().starts_with(b"file:") {
        return Ok(());
    }
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file);
    match created {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(StoreError::Directory {
            path: file
                .parent()
                .filter(|dir| !dir.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .display()
                .to_string(),
            source,
        }),
    }
}

/// Refuses to serve unless every commit reaches the disk before it is acknowledged.
async fn verify_durability(conn: &mut SqliteConnection) -> Result<(), StoreError> {
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut *conn)
        .await?;
    let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(&mut *conn)
        .await?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::NotDurable(format!(
            "journal_mode is {mode}, not wal"
        )));
    }
    if synchronous < 2 {
        return Err(StoreError::NotDurable(format!(
            "synchronous is {synchronous}, not FULL (2)"
        )));
    }
    Ok(())
}

async fn run_writer(mut conn: SqliteConnection, mut jobs: mpsc::Receiver<Job>) {
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
         sender_folded, recipients_folded, attachment_count, size_bytes, document) ",
    );
    sql.push_values(
        which.iter().map(|&i| &emails[i]),
        |mut row, (email, document)| {
            row.push_bind(email.id.to_string())
                .push_bind(email.dedup_key.clone())
                .push_bind(to_micros(email.received_at))
                .push_bind(email.processed)
                .push_bind(search_text(email.from_email.as_deref()))
                .push_bind(search_text(email.subject.as_deref()))
                .push_bind(email.search.sender.clone())
                .push_bind(email.search.recipients.clone())
                .push_bind(i64::from(email.search.attachments))
                .push_bind(stored_size(document.len(), &email.document) as i64)
                .push_bind(document.clone());
        },
    );
    sql.push(" ON CONFLICT DO NOTHING RETURNING id");
    let new: HashSet<String> = sql
        .build_query_scalar()
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .collect();

    let mut results = Vec::with_capacity(which.len());
    let mut blobs: Vec<&(String, Vec<u8>)> = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    for &i in which {
        let email = &emails[i].0;
        if new.contains(&email.id.to_string()) {
            blobs.extend(email.blobs.iter().filter(|(hash, _)| seen.insert(hash)));
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
    let stored: Vec<&NewEmail> = which
        .iter()
        .map(|&i| &emails[i].0)
        .zip(&results)
        .filter(|(_, inserted)| matches!(inserted, Inserted::New(_)))
        .map(|(email, _)| email)
        .collect();
    insert_state_rows(conn, &stored).await?;
    Ok(results)
}

/// The new emails' `mailbox_emails`, `email_parts` and `email_words` rows (after their
/// blobs).
async fn insert_state_rows(
    conn: &mut SqliteConnection,
    emails: &[&NewEmail],
) -> Result<(), sqlx::Error> {
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
            part_refs(&email.document)
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
    for mut sql in new_email_events::<Sqlite>(emails) {
        sql.build().execute(&mut *conn).await?;
    }
    for email in emails {
        sqlx::query("INSERT INTO email_words (email_rowid, words) SELECT rowid, $2 FROM emails WHERE id = $1")
            .bind(email.id.to_string())
            .bind(email.search.words.as_str())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Adds every email past the index's mark to the subject and word indexes, and moves
/// the mark, in one transaction.
async fn index_subjects(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
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
    let inserted: Option<String> = sqlx::query_scalar(
        "INSERT INTO emails (id, dedup_key, received_at, processed, from_email, subject_folded,
             sender_folded, recipients_folded, attachment_count, size_bytes, document)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT DO NOTHING
         RETURNING id",
    )
    .bind(email.id.to_string())
    .bind(&email.dedup_key)
    .bind(to_micros(email.received_at))
    .bind(email.processed)
    .bind(search_text(email.from_email.as_deref()))
    .bind(search_text(email.subject.as_deref()))
    .bind(email.search.sender.clone())
    .bind(email.search.recipients.clone())
    .bind(i64::from(email.search.attachments))
    .bind(stored_size(document.len(), &email.document) as i64)
    .bind(document.to_owned())
    .fetch_optional(&mut *conn)
    .await?;
    if inserted.is_none() {
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
    insert_state_rows(conn, &[&*email]).await?;
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

#[async_trait]
impl Store for SqliteStore {
    fn engine(&self) -> &'static str {
        "sqlite"
    }

    async fn insert_inbound(&self, email: NewEmail) -> Result<Inserted, StoreError> {
        self.queue.submit(email).await
    }

    async fn list_emails(&self, query: &EmailQuery) -> Result<Vec<StoredEmail>, StoreError> {
        self.list(query).await
    }

    async fn email(&self, id: EmailId) -> Result<Option<StoredEmail>, StoreError> {
        let sql = format!("SELECT {EMAIL_COLUMNS} FROM emails WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(&self.readers)
            .await?;
        row.as_ref().map(stored_email).transpose()
    }

    fn mail_state(&self) -> &dyn MailState {
        &self.state
    }

    fn changes(&self) -> &dyn ChangeLog {
        &self.changes
    }

    fn expiring(&self) -> &dyn Expiring {
        &self.state
    }

    fn blobs(&self) -> &dyn BlobStore {
        &self.blobs
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        // Migrations write, so they use a connection of their own rather than a reader.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(self.options.clone())
            .await?;
        let mut result = MIGRATOR.run(&pool).await.map_err(StoreError::from);
        if result.is_ok() {
            // Emails stored by a writer that stopped before indexing them, or by a tool.
            result = match pool.acquire().await {
                Ok(mut conn) => index_subjects(&mut conn).await.map_err(StoreError::from),
                Err(error) => Err(error.into()),
            };
        }
        pool.close().await;
        result
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.readers).await?;
        Ok(())
    }

    async fn close(&self) {
        // Closing the queue lets the writer drain it and stop.
        self.queue.close();
        if let Some(task) = self.writer.lock().await.take() {
            let _ = task.await;
        }
        self.state.writer.close().await;
        self.readers.close().await;
    }

    fn pool_usage(&self) -> Option<PoolUsage> {
        Some(PoolUsage::of("mail", &self.readers))
    }
}
