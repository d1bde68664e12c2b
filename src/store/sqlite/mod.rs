//! SQLite engine: WAL + `synchronous=FULL`, one writer task with group commit, pooled readers.
//!
//! Concurrent deliveries queue at the writer (`writer`: group commit, one bad email never
//! fails its neighbours), and each request is answered only after the commit that holds
//! it; `search` lists and searches.

mod document;
mod outbox;
mod search;
mod statements;
mod writer;

pub use outbox::SqliteOutbox;

use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, SqliteConnection};
use tokio::sync::Mutex;

use self::document::Lz4Document;
use self::statements::PREPARE_WRITER;
use self::writer::{index_subjects, run_writer};
use super::batch::Queue;
use super::blobs::{BlobStore, SqliteBlobs};
use super::changes::{ChangeLog, SqliteChangeLog};
use super::mail_state::SqliteMailState;
use super::retention::Expiring;
use super::{
    EMAIL_COLUMNS, EmailQuery, Inserted, MailState, PoolUsage, Store, StoreError, stored_email,
};
use crate::email::{EmailId, NewEmail, StoredEmail};

const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

pub struct SqliteStore {
    readers: SqlitePool,
    /// Queue of the writer task.
    queue: Queue<Lz4Document>,
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
        sqlx::raw_sql(PREPARE_WRITER).execute(&mut writer).await?;
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
        let blobs = SqliteBlobs {
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
            blobs,
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
