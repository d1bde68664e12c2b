//! PostgreSQL engine: `synchronous_commit=on`, a few writer tasks with group commit
//! (`writer`), pooled reads.

mod outbox;
mod search;
pub(super) mod vector;
mod writer;

pub use outbox::PostgresOutbox;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Connection, PgConnection};

use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use super::DocumentColumn;
use super::batch::Queue;
use super::blobs::{BlobStore, PostgresBlobs};
use super::changes::{ChangeLog, PostgresChangeLog};
use super::mail_state::PostgresMailState;
use super::retention::Expiring;
use super::{
    EMAIL_COLUMNS, EmailQuery, Inserted, MailState, PoolUsage, Store, StoreError, stored_email,
};
use crate::email::{EmailId, NewEmail, StoredEmail};
use crate::telemetry::error_chain;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

pub struct PostgresStore {
    pool: PgPool,
    /// Queue of the writer tasks.
    queue: Queue<String>,
    writers: Mutex<Vec<JoinHandle<()>>>,
    /// `build_word_index`, in the background; cut short at close (the next start
    /// finishes it).
    index_build: Mutex<Option<JoinHandle<()>>>,
    state: PostgresMailState,
    changes: PostgresChangeLog,
    blobs: PostgresBlobs,
}

impl PostgresStore {
    pub async fn open(url: &str, acquire_timeout: Duration) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)?
            .options([("synchronous_commit", "on")])
            .application_name("mailroom");
        // One direct connection first: a wrong host or password fails at once with its
        // real cause, instead of as a pool timeout half a minute later.
        PgConnection::connect_with(&options).await?.close().await?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            // While the server is away, fail fast (503, so ImprovMX retries) instead of
            // holding every request for sqlx's default 30 s.
            .acquire_timeout(acquire_timeout)
            .connect_with(options)
            .await?;
        let (queue, writers) = writer::start(&pool);
        let changes = PostgresChangeLog {
            readers: pool.clone(),
            writer: pool.clone(),
        };
        let state = PostgresMailState {
            writer: pool.clone(),
            readers: pool.clone(),
        };
        Ok(Self {
            blobs: PostgresBlobs {
                readers: pool.clone(),
                writer: pool.clone(),
            },
            pool,
            queue,
            writers: Mutex::new(writers),
            index_build: Mutex::new(None),
            state,
            changes,
        })
    }
}

pub(super) fn parse_id(text: &str) -> Result<EmailId, StoreError> {
    text.parse()
        .map_err(|e| StoreError::Database(sqlx::Error::Decode(Box::new(e))))
}

/// The GIN index of the word vectors, built concurrently after the migrations (not in
/// one: a concurrent build inside the migrator's advisory lock deadlocks with a second
/// instance waiting for that lock), so deliveries go on while a large table is indexed.
/// A build cut short leaves an invalid index, which is dropped and built again.
async fn build_word_index(pool: &PgPool) -> Result<(), sqlx::Error> {
    let valid: Option<bool> = sqlx::query_scalar(
        "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
         WHERE c.relname = 'emails_words' AND c.relnamespace = current_schema()::regnamespace",
    )
    .fetch_optional(pool)
    .await?;
    match valid {
        Some(true) => return Ok(()),
        Some(false) => {
            sqlx::raw_sql("DROP INDEX CONCURRENTLY IF EXISTS emails_words")
                .execute(pool)
                .await?;
        }
        None => {}
    }
    sqlx::raw_sql(
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS emails_words ON emails USING gin (words)",
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// SQLSTATE 53100 is disk_full.
pub(super) fn classify(error: StoreError) -> StoreError {
    match &error {
        StoreError::Database(e)
            if e.as_database_error().and_then(|d| d.code()).as_deref() == Some("53100") =>
        {
            StoreError::DiskFull
        }
        _ => error,
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn engine(&self) -> &'static str {
        "postgres"
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
            .fetch_optional(&self.pool)
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
        MIGRATOR.run(&self.pool).await?;
        let pool = self.pool.clone();
        let task = tokio::spawn(async move {
            if let Err(error) = build_word_index(&pool).await {
                tracing::warn!(error = %error_chain(&error), "building the full-text index failed; word searches scan until a restart builds it");
            }
        });
        if let Some(earlier) = self.index_build.lock().await.replace(task) {
            earlier.abort();
        }
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        // Closing the queue lets the writers drain it and stop.
        self.queue.close();
        for writer in std::mem::take(&mut *self.writers.lock().await) {
            let _ = writer.await;
        }
        if let Some(build) = self.index_build.lock().await.take() {
            build.abort();
        }
        self.pool.close().await;
    }

    fn pool_usage(&self) -> Option<PoolUsage> {
        Some(PoolUsage::of("mail", &self.pool))
    }
}

/// PostgreSQL keeps the JSON text (and compresses it itself, with LZ4).
impl DocumentColumn for sqlx::postgres::PgRow {
    fn document(&self) -> Result<serde_json::Map<String, serde_json::Value>, StoreError> {
        let json: &str = sqlx::Row::try_get(self, "document")?;
        super::parse_document(json.as_bytes())
    }
}
