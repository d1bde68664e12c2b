//! Durable storage: one `Store` trait, one implementation per engine, chosen by URL scheme.

mod batch;
pub mod blobs;
pub mod changes;
pub mod feed;
pub mod limits;
mod mail_state;
pub mod outbox;
mod postgres;
pub mod retention;
mod search_sql;
pub mod sessions;
mod sqlite;
pub mod users;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::email::{EmailId, NewEmail, Provider, StoredEmail};

pub use changes::{ChangeLog, EventKind, MailEvent};
pub use mail_state::{Filed, MailState};
pub use outbox::{OutboxStore, open_outbox};
pub use postgres::PostgresOutbox;
pub use postgres::PostgresStore;
pub use sessions::{Session, SessionStore, open_sessions};
pub use sqlite::SqliteOutbox;
pub use sqlite::SqliteStore;
pub use users::{NewUser, Role, User, UserStore, open_users};

/// The outcome of storing an inbound email.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// Newly committed under this id.
    New(EmailId),
    /// A redelivery of an email already stored under this id; nothing was written.
    Duplicate(EmailId),
}

impl Inserted {
    pub fn id(self) -> EmailId {
        match self {
            Inserted::New(id) | Inserted::Duplicate(id) => id,
        }
    }
}

/// A connection pool's state, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUsage {
    /// `mail` (the store's readers on SQLite, every query on PostgreSQL) or `outbox`.
    pub name: &'static str,
    /// Connections open, idle or in use.
    pub open: u32,
    pub idle: u32,
    /// The most the pool opens.
    pub max: u32,
}

impl PoolUsage {
    fn of<DB: sqlx::Database>(name: &'static str, pool: &sqlx::Pool<DB>) -> Self {
        Self {
            name,
            open: pool.size(),
            idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
            max: pool.options().get_max_connections(),
        }
    }
}

/// Filters and page of `GET /emails`, already validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmailQuery {
    pub limit: u32,
    pub skip: u64,
    /// Lower-cased sender address, matched exactly.
    pub from_email: Option<String>,
    /// Case-folded literal substring of the subject.
    pub subject: Option<String>,
    /// Only this mailbox (a `email::mailbox_address`), with its flags.
    pub mailbox: Option<String>,
    /// Flag filters (`None`: either): in `mailbox`, else on the summary flags.
    pub read: Option<bool>,
    pub starred: Option<bool>,
    pub trashed: Option<bool>,
    /// `q=`: every term must match.
    pub search: Option<crate::search::Query>,
    /// Keyset pagination: only emails listed after this one (older, or as old with a
    /// smaller id), so a deep page costs what the first does.
    pub after: Option<Cursor>,
    /// Keyset pagination backwards: only emails listed before this one (newer), and the
    /// page comes **oldest first**, so its first rows are the ones next to the cursor.
    pub before: Option<Cursor>,
}

impl EmailQuery {
    /// `ASC` when paging backwards (`before`), else `DESC`: newest first.
    pub(crate) fn direction(&self) -> &'static str {
        if self.before.is_some() { "ASC" } else { "DESC" }
    }
}

/// A position in a newest-first list: the last email of the page before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub received_at: DateTime<Utc>,
    pub id: EmailId,
}

/// What a list or read of emails selects, for `stored_email`.
pub(crate) const EMAIL_COLUMNS: &str =
    "id, received_at, processed, starred, trashed, provider, document";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported DATABASE_URL scheme in {0:?}: use sqlite://… or postgres://…")]
    UnsupportedUrl(String),
    #[error("database error")]
    Database(#[source] sqlx::Error),
    /// The database did not answer in time (down, restarting, unreachable): a client
    /// should retry, and nothing was stored.
    #[error("the database does not answer")]
    Unavailable(#[source] sqlx::Error),
    #[error("database migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("the disk is full")]
    DiskFull,
    #[error("the database is not durable: {0}")]
    NotDurable(String),
    #[error("could not prepare the database directory {path}")]
    Directory {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the store is shutting down")]
    Closed,
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        if server_is_away(&error) {
            StoreError::Unavailable(error)
        } else {
            StoreError::Database(error)
        }
    }
}

/// No connection within the acquire timeout, one that broke, or a server that is
/// starting up or shutting down: a retry can outlast these; anything else is a real
/// failure.
fn server_is_away(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) => true,
        sqlx::Error::Database(database) => database.code().is_some_and(|code| {
            // Class 08: connection exception; 57P01-57P03: admin shutdown, crash
            // shutdown, cannot connect now (PostgreSQL).
            code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03")
        }),
        _ => false,
    }
}

/// How long a request waits for a database connection before it is answered 503.
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// Use cases of the mail store, shared by the API, the importer and the tests.
#[async_trait]
pub trait Store: Send + Sync {
    /// The engine's name for logs: `sqlite` or `postgres`.
    fn engine(&self) -> &'static str;

    /// Commits the email and all its part bytes durably, or finds its earlier delivery.
    async fn insert_inbound(&self, email: NewEmail) -> Result<Inserted, StoreError>;

    /// A page of emails, newest received first.
    async fn list_emails(&self, query: &EmailQuery) -> Result<Vec<StoredEmail>, StoreError>;

    async fn email(&self, id: EmailId) -> Result<Option<StoredEmail>, StoreError>;

    /// Mailboxes, flags, deletes.
    fn mail_state(&self) -> &dyn MailState;

    /// The change log that event streams read.
    fn changes(&self) -> &dyn ChangeLog;

    /// What the retention sweep finds to delete.
    fn expiring(&self) -> &dyn retention::Expiring;

    /// Stored part bytes, by BLAKE3 (hex), whole or a chunk at a time.
    fn blobs(&self) -> &dyn blobs::BlobStore;

    /// The bytes of a stored part, by BLAKE3 (hex), in one piece.
    async fn blob(&self, blake3: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.blobs().whole(blake3).await
    }

    /// Applies pending migrations, and brings derived indexes up to date.
    async fn migrate(&self) -> Result<(), StoreError>;

    /// Succeeds when the database answers a query.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Finishes pending writes and closes connections.
    async fn close(&self);

    /// The connection pool's state, for the metrics (`None`: no pool, as in test doubles).
    fn pool_usage(&self) -> Option<PoolUsage> {
        None
    }
}

/// The database engines, named by the scheme of `DATABASE_URL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    /// The engine `url` names: the one place a URL's scheme is read.
    pub fn of(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Engine::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Engine::Postgres)
        } else {
            Err(StoreError::UnsupportedUrl(redact_url(url)))
        }
    }
}

/// A small pool of its own on the database named by `url`, for a store beside the mail
/// (users, sessions): `name` tells its PostgreSQL connections apart.
pub(crate) enum SmallPool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

pub(crate) async fn open_small_pool(url: &str, name: &str) -> Result<SmallPool, StoreError> {
    use std::str::FromStr as _;
    Ok(match Engine::of(url)? {
        Engine::Sqlite => SmallPool::Sqlite(
            sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(2)
                .connect_with(sqlite::connect_options(url)?)
                .await?,
        ),
        Engine::Postgres => {
            let options = sqlx::postgres::PgConnectOptions::from_str(url)?
                .options([("synchronous_commit", "on")])
                .application_name(name);
            SmallPool::Postgres(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(4)
                    .acquire_timeout(DEFAULT_ACQUIRE_TIMEOUT)
                    .connect_with(options)
                    .await?,
            )
        }
    })
}

/// Opens the store named by `url` without migrating it.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    open_with(url, DEFAULT_ACQUIRE_TIMEOUT).await
}

/// `open`, with requests waiting at most `acquire_timeout` for a connection to a
/// database server (`DATABASE_ACQUIRE_TIMEOUT_SECS`).
pub async fn open_with(url: &str, acquire_timeout: Duration) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match Engine::of(url)? {
        Engine::Sqlite => Arc::new(SqliteStore::open(url).await?),
        Engine::Postgres => Arc::new(PostgresStore::open(url, acquire_timeout).await?),
    })
}

/// The URL with any password replaced, for logs and error messages.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

/// Microseconds since the epoch: how both engines store instants.
fn to_micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

fn from_micros(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

fn search_text(text: Option<&str>) -> Option<String> {
    text.map(crate::email::search_key)
}

/// How an engine's row gives back an email's document (SQLite compresses it).
pub(crate) trait DocumentColumn {
    fn document(&self) -> Result<serde_json::Map<String, serde_json::Value>, StoreError>;
}

/// A row of `EMAIL_COLUMNS` as a `StoredEmail`.
fn stored_email<R>(row: &R) -> Result<StoredEmail, StoreError>
where
    R: sqlx::Row + DocumentColumn,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> bool: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let id: String = row.try_get("id")?;
    let provider: String = row.try_get("provider")?;
    Ok(StoredEmail {
        id: id
            .parse()
            .map_err(|e| StoreError::Database(sqlx::Error::Decode(Box::new(e))))?,
        received_at: from_micros(row.try_get("received_at")?),
        processed: row.try_get("processed")?,
        starred: row.try_get("starred")?,
        trashed: row.try_get("trashed")?,
        provider: Provider::from_name(&provider),
        document: row.document()?,
    })
}

/// Decodes a stored document's JSON; a corrupt one is an error, never a panic.
fn parse_document(json: &[u8]) -> Result<serde_json::Map<String, serde_json::Value>, StoreError> {
    serde_json::from_slice(json).map_err(|e| StoreError::Database(sqlx::Error::Decode(Box::new(e))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(
            redact_url("postgres://mail:s3cret@db:5432/mail"),
            "postgres://mail:***@db:5432/mail"
        );
        assert_eq!(
            redact_url("sqlite://data/mailroom.db"),
            "sqlite://data/mailroom.db"
        );
        assert_eq!(redact_url("postgres://db/mail"), "postgres://db/mail");
    }
}
