//! Webmail sessions and per-user reading preferences on both engines (DESIGN §8).
//!
//! Like `users`, the SQL is the same on both engines and `session_store!` implements
//! the trait for each engine's pool. Session ids arrive already digested: the random
//! id lives only in the browser's cookie.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;

use super::{StoreError, from_micros, to_micros};

/// A stored session, with the login of its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// SHA-256 of the cookie's id, hex.
    pub id_digest: String,
    pub user_id: i64,
    pub login: String,
    pub csrf_token: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

/// Session and preference use cases of the webmail.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a new session (`login` is ignored: it comes from the user).
    async fn create_session(&self, session: &Session) -> Result<(), StoreError>;
    async fn session(&self, id_digest: &str) -> Result<Option<Session>, StoreError>;
    /// Records activity, for the idle expiry.
    async fn touch_session(&self, id_digest: &str, now: DateTime<Utc>) -> Result<(), StoreError>;
    async fn drop_session(&self, id_digest: &str) -> Result<(), StoreError>;
    /// Drops every session of the user (a password change, a removal); answers how many.
    async fn drop_user_sessions(&self, user_id: i64) -> Result<u64, StoreError>;
    /// Drops sessions idle since before `idle_before` or created before `created_before`.
    async fn drop_expired_sessions(
        &self,
        idle_before: DateTime<Utc>,
        created_before: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
    /// Whether the user always shows remote images from this (lower-cased) sender.
    async fn shows_images_from(&self, user_id: i64, sender: &str) -> Result<bool, StoreError>;
    async fn show_images_from(&self, user_id: i64, sender: &str) -> Result<(), StoreError>;
    /// The URL-signing key: `candidate` when none is stored yet, else the stored one,
    /// so every instance on the database signs alike.
    async fn signing_key(&self, candidate: &str) -> Result<String, StoreError>;
    async fn close(&self);
}

/// Opens the session store in the database named by `url` (already migrated).
pub async fn open_sessions(url: &str) -> Result<Arc<dyn SessionStore>, StoreError> {
    Ok(
        match super::open_small_pool(url, "mailroom-sessions").await? {
            super::SmallPool::Sqlite(pool) => Arc::new(SqliteSessions(pool)),
            super::SmallPool::Postgres(pool) => Arc::new(PostgresSessions(pool)),
        },
    )
}

pub struct SqliteSessions(SqlitePool);
pub struct PostgresSessions(PgPool);

const INSERT_SESSION: &str = "INSERT INTO webmail_sessions \
     (id_digest, user_id, csrf_token, created_at, last_seen_at) VALUES ($1, $2, $3, $4, $5)";
const SELECT_SESSION: &str = "SELECT s.id_digest, s.user_id, u.login, s.csrf_token, \
     s.created_at, s.last_seen_at \
     FROM webmail_sessions s JOIN users u ON u.id = s.user_id WHERE s.id_digest = $1";
const DROP_EXPIRED: &str =
    "DELETE FROM webmail_sessions WHERE last_seen_at < $1 OR created_at < $2";
const INSERT_IMAGE_SENDER: &str =
    "INSERT INTO webmail_image_senders (user_id, sender) VALUES ($1, $2) ON CONFLICT DO NOTHING";
const INSERT_SIGNING_KEY: &str =
    "INSERT INTO webmail_signing_key (only_row, secret) VALUES (1, $1) ON CONFLICT DO NOTHING";

/// A row of `SELECT_SESSION` as a `Session`.
fn session_row<R>(row: &R) -> Result<Session, StoreError>
where
    R: sqlx::Row,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(Session {
        id_digest: row.try_get("id_digest")?,
        user_id: row.try_get("user_id")?,
        login: row.try_get("login")?,
        csrf_token: row.try_get("csrf_token")?,
        created_at: from_micros(row.try_get("created_at")?),
        last_seen_at: from_micros(row.try_get("last_seen_at")?),
    })
}

/// The `SessionStore` use cases for one engine's pool type; the SQL above is shared.
macro_rules! session_store {
    ($store:ident) => {
        #[async_trait]
        impl SessionStore for $store {
            async fn create_session(&self, session: &Session) -> Result<(), StoreError> {
                sqlx::query(INSERT_SESSION)
                    .bind(&session.id_digest)
                    .bind(session.user_id)
                    .bind(&session.csrf_token)
                    .bind(to_micros(session.created_at))
                    .bind(to_micros(session.last_seen_at))
                    .execute(&self.0)
                    .await?;
                Ok(())
            }

            async fn session(&self, id_digest: &str) -> Result<Option<Session>, StoreError> {
                let row = sqlx::query(SELECT_SESSION)
                    .bind(id_digest)
                    .fetch_optional(&self.0)
                    .await?;
                row.as_ref().map(session_row).transpose()
            }

            async fn touch_session(
                &self,
                id_digest: &str,
                now: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                sqlx::query("UPDATE webmail_sessions SET last_seen_at = $1 WHERE id_digest = $2")
                    .bind(to_micros(now))
                    .bind(id_digest)
                    .execute(&self.0)
                    .await?;
                Ok(())
            }

            async fn drop_session(&self, id_digest: &str) -> Result<(), StoreError> {
                sqlx::query("DELETE FROM webmail_sessions WHERE id_digest = $1")
                    .bind(id_digest)
                    .execute(&self.0)
                    .await?;
                Ok(())
            }

            async fn drop_user_sessions(&self, user_id: i64) -> Result<u64, StoreError> {
                let done = sqlx::query("DELETE FROM webmail_sessions WHERE user_id = $1")
                    .bind(user_id)
                    .execute(&self.0)
                    .await?;
                Ok(done.rows_affected())
            }

            async fn drop_expired_sessions(
                &self,
                idle_before: DateTime<Utc>,
                created_before: DateTime<Utc>,
            ) -> Result<u64, StoreError> {
                let done = sqlx::query(DROP_EXPIRED)
                    .bind(to_micros(idle_before))
                    .bind(to_micros(created_before))
                    .execute(&self.0)
                    .await?;
                Ok(done.rows_affected())
            }

            async fn shows_images_from(
                &self,
                user_id: i64,
                sender: &str,
            ) -> Result<bool, StoreError> {
                let found: Option<i64> = sqlx::query_scalar(
                    "SELECT user_id FROM webmail_image_senders WHERE user_id = $1 AND sender = $2",
                )
                .bind(user_id)
                .bind(sender)
                .fetch_optional(&self.0)
                .await?;
                Ok(found.is_some())
            }

            async fn show_images_from(&self, user_id: i64, sender: &str) -> Result<(), StoreError> {
                sqlx::query(INSERT_IMAGE_SENDER)
                    .bind(user_id)
                    .bind(sender)
                    .execute(&self.0)
                    .await?;
                Ok(())
            }

            async fn signing_key(&self, candidate: &str) -> Result<String, StoreError> {
                sqlx::query(INSERT_SIGNING_KEY)
                    .bind(candidate)
                    .execute(&self.0)
                    .await?;
                let key: String =
                    sqlx::query_scalar("SELECT secret FROM webmail_signing_key WHERE only_row = 1")
                        .fetch_one(&self.0)
                        .await?;
                Ok(key)
            }

            async fn close(&self) {
                self.0.close().await;
            }
        }
    };
}

session_store!(SqliteSessions);
session_store!(PostgresSessions);
