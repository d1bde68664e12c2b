//! Webmail accounts: users, their roles and the addresses they may read (DESIGN §8).
//!
//! The SQL is the same on both engines (SQLite takes `$N` parameters too), so it is
//! written once and `user_store!` implements the trait for each engine's pool. Like the
//! outbox, each engine opens a small pool of its own on the same database. Passwords
//! arrive already hashed: hashing is `security::passwords`'s.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;

use super::{StoreError, from_micros, to_micros};

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Sees every mailbox and manages users.
    Admin,
    /// Sees the mailboxes of its addresses.
    User,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
        }
    }

    fn from_stored(name: &str) -> Result<Self, StoreError> {
        match name {
            "admin" => Ok(Role::Admin),
            "user" => Ok(Role::User),
            other => Err(StoreError::Database(sqlx::Error::Protocol(format!(
                "unknown role {other:?}"
            )))),
        }
    }
}

/// A user to create; `login` and `addresses` are already normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub login: String,
    pub password_hash: String,
    pub role: Role,
    pub addresses: Vec<String>,
}

/// A stored user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub login: String,
    pub password_hash: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub password_changed_at: DateTime<Utc>,
    /// Sorted.
    pub addresses: Vec<String>,
}

/// Account use cases, shared by the CLI and the webmail.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates the user; `Ok(None)` when the login is taken.
    async fn add_user(&self, user: &NewUser, now: DateTime<Utc>)
    -> Result<Option<i64>, StoreError>;
    async fn user(&self, login: &str) -> Result<Option<User>, StoreError>;
    /// Every user, by login.
    async fn users(&self) -> Result<Vec<User>, StoreError>;
    async fn count_users(&self) -> Result<u64, StoreError>;
    /// `false` when there is no such user.
    async fn set_password(
        &self,
        login: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    async fn set_role(&self, login: &str, role: Role) -> Result<bool, StoreError>;
    /// Replaces the user's addresses.
    async fn set_addresses(&self, login: &str, addresses: &[String]) -> Result<bool, StoreError>;
    async fn remove_user(&self, login: &str) -> Result<bool, StoreError>;
    async fn close(&self);
}

/// Opens the user store in the database named by `url` (already migrated).
pub async fn open_users(url: &str) -> Result<Arc<dyn UserStore>, StoreError> {
    Ok(match super::open_small_pool(url, "mailroom-users").await? {
        super::SmallPool::Sqlite(pool) => Arc::new(SqliteUsers(pool)),
        super::SmallPool::Postgres(pool) => Arc::new(PostgresUsers(pool)),
    })
}

pub struct SqliteUsers(SqlitePool);
pub struct PostgresUsers(PgPool);

const INSERT_USER: &str =
    "INSERT INTO users (login, password_hash, role, created_at, password_changed_at)
     VALUES ($1, $2, $3, $4, $4) ON CONFLICT (login) DO NOTHING RETURNING id";
const INSERT_ADDRESS: &str =
    "INSERT INTO user_addresses (user_id, address) VALUES ($1, $2) ON CONFLICT DO NOTHING";
const SELECT_USERS: &str =
    "SELECT u.id, u.login, u.password_hash, u.role, u.created_at, u.password_changed_at,
            a.address
     FROM users u LEFT JOIN user_addresses a ON a.user_id = u.id";
const ORDER: &str = " ORDER BY u.login, a.address";

/// Folds rows of `SELECT_USERS` (one per address) into users.
fn fold_users<R>(rows: &[R]) -> Result<Vec<User>, StoreError>
where
    R: sqlx::Row,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let mut users: Vec<User> = Vec::new();
    for row in rows {
        let id: i64 = row.try_get("id")?;
        if users.last().is_none_or(|user| user.id != id) {
            users.push(User {
                id,
                login: row.try_get("login")?,
                password_hash: row.try_get("password_hash")?,
                role: Role::from_stored(&row.try_get::<String, _>("role")?)?,
                created_at: from_micros(row.try_get("created_at")?),
                password_changed_at: from_micros(row.try_get("password_changed_at")?),
                addresses: Vec::new(),
            });
        }
        if let Some(address) = row.try_get::<Option<String>, _>("address")? {
            users
                .last_mut()
                .expect("pushed above")
                .addresses
                .push(address);
        }
    }
    Ok(users)
}

/// The `UserStore` use cases for one engine's pool type; the SQL above is shared.
macro_rules! user_store {
    ($store:ident) => {
        #[async_trait]
        impl UserStore for $store {
            async fn add_user(
                &self,
                user: &NewUser,
                now: DateTime<Utc>,
            ) -> Result<Option<i64>, StoreError> {
                let mut tx = self.0.begin().await?;
                let id: Option<i64> = sqlx::query_scalar(INSERT_USER)
                    .bind(&user.login)
                    .bind(&user.password_hash)
                    .bind(user.role.name())
                    .bind(to_micros(now))
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some(id) = id else { return Ok(None) };
                for address in &user.addresses {
                    sqlx::query(INSERT_ADDRESS)
                        .bind(id)
                        .bind(address)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(Some(id))
            }

            async fn user(&self, login: &str) -> Result<Option<User>, StoreError> {
                let sql = format!("{SELECT_USERS} WHERE u.login = $1{ORDER}");
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(login)
                    .fetch_all(&self.0)
                    .await?;
                Ok(fold_users(&rows)?.pop())
            }

            async fn users(&self) -> Result<Vec<User>, StoreError> {
                let sql = format!("{SELECT_USERS}{ORDER}");
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .fetch_all(&self.0)
                    .await?;
                fold_users(&rows)
            }

            async fn count_users(&self) -> Result<u64, StoreError> {
                let count: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
                    .fetch_one(&self.0)
                    .await?;
                Ok(count as u64)
            }

            async fn set_password(
                &self,
                login: &str,
                password_hash: &str,
                now: DateTime<Utc>,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "UPDATE users SET password_hash = $1, password_changed_at = $2 WHERE login = $3",
                )
                .bind(password_hash)
                .bind(to_micros(now))
                .bind(login)
                .execute(&self.0)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn set_role(&self, login: &str, role: Role) -> Result<bool, StoreError> {
                let done = sqlx::query("UPDATE users SET role = $1 WHERE login = $2")
                    .bind(role.name())
                    .bind(login)
                    .execute(&self.0)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn set_addresses(
                &self,
                login: &str,
                addresses: &[String],
            ) -> Result<bool, StoreError> {
                let mut tx = self.0.begin().await?;
                let id: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE login = $1")
                    .bind(login)
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some(id) = id else { return Ok(false) };
                sqlx::query("DELETE FROM user_addresses WHERE user_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                for address in addresses {
                    sqlx::query(INSERT_ADDRESS)
                        .bind(id)
                        .bind(address)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(true)
            }

            async fn remove_user(&self, login: &str) -> Result<bool, StoreError> {
                let done = sqlx::query("DELETE FROM users WHERE login = $1")
                    .bind(login)
                    .execute(&self.0)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn close(&self) {
                self.0.close().await;
            }
        }
    };
}

user_store!(SqliteUsers);
user_store!(PostgresUsers);
