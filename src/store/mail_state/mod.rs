//! Mail state on both engines (DESIGN §7): mailboxes, per-mailbox flags, deletes that
//! drop unshared blobs, and the background filing of emails stored before mailboxes.
//!
//! The SQL is the same on both engines (SQLite takes `$N` parameters too) but for a few
//! fragments: id lists are bound as one JSON array (so no statement runs into a
//! variable limit) and read by each engine's JSON function. `mail_state!` implements
//! the trait for each engine; SQLite writes under `BEGIN IMMEDIATE` (one writer at a
//! time, so a delete and an ingest never interleave), PostgreSQL locks the blobs a
//! delete may drop (see `LOCK_BLOBS`).

use async_trait::async_trait;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use sqlx::{AssertSqlSafe, Connection as _, Row as _};

use super::blobs::DELETE_ORPHAN_CHUNKS;
use super::changes::{EVENT_LOCK, flags_data, now_micros};
use super::{StoreError, stored_email};

mod sql;

use self::sql::{
    BLOBS_OF, DELETE_EMAILS, DELETE_UNUSED_BLOBS, DELETED, DELETED_EVENT, FILE_MAILBOX, FILE_PART,
    FLAG_EVENTS, LOCK_BLOBS, LOCK_COUNTS, LOCK_EMAILS, LOWER_SUBJECT_MARK, MAILBOX_COUNTS,
    MAILBOXES_OF, SET_IN_MAILBOXES, SET_UNFILED, SUMMARISE, TRASH_TIMES, file_search_postgres,
    file_search_sqlite, json_ids,
};
pub(super) use self::sql::{MAILBOX_FLAGS, SUMMARY_FLAGS};

use crate::email::{
    EmailId, FlagChange, MailboxCount, MailboxFlags, PartRef, SearchColumns, StoredEmail,
};

/// An email the background pass files: its mailboxes and its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filed {
    pub id: EmailId,
    pub mailboxes: Vec<String>,
    pub parts: Vec<PartRef>,
    pub search: SearchColumns,
    /// `email::stored_size`.
    pub size: u64,
}

/// Mail-state use cases, behind `Store::mail_state`.
#[async_trait]
pub trait MailState: Send + Sync {
    /// The email with the flags of `mailbox`; `None` when it is not in that mailbox.
    async fn email_in(&self, id: EmailId, mailbox: &str)
    -> Result<Option<StoredEmail>, StoreError>;
    /// The mailboxes the email is in, with their flags, by address.
    async fn mailboxes_of(&self, id: EmailId) -> Result<Vec<MailboxFlags>, StoreError>;
    /// Every mailbox with its counts, by address.
    async fn mailboxes(&self) -> Result<Vec<MailboxCount>, StoreError>;
    /// Applies `change` in every mailbox of each email, or in `mailbox` alone; answers
    /// how many of `ids` were found (in `mailbox`, when given).
    async fn set_flags(
        &self,
        ids: &[EmailId],
        mailbox: Option<&str>,
        change: FlagChange,
    ) -> Result<u64, StoreError>;
    /// Deletes the emails, their mailbox entries and parts, and the blobs no other email
    /// uses, in one transaction; answers how many were found.
    async fn delete(&self, ids: &[EmailId]) -> Result<u64, StoreError>;
    /// The emails of a conversation (a `SearchColumns::thread_key`), oldest first, with
    /// their summary flags; at most `limit`.
    async fn thread(&self, key: &str, limit: u32) -> Result<Vec<StoredEmail>, StoreError>;
    /// Where the background filing stands: the last id filed, or `None` once done.
    async fn filing_mark(&self) -> Result<Option<String>, StoreError>;
    /// Up to `limit` emails with ids past `after`, by id.
    async fn emails_after(&self, after: &str, limit: u32) -> Result<Vec<StoredEmail>, StoreError>;
    /// Files `emails` (rows that exist already are kept) and moves the mark to `mark`,
    /// or marks the filing done.
    async fn file(&self, emails: &[Filed], mark: Option<&str>) -> Result<(), StoreError>;
}

pub(super) struct SqliteMailState {
    /// Writes: one connection, so flag changes queue here rather than at the file lock.
    pub writer: SqlitePool,
    pub readers: SqlitePool,
}

pub(super) struct PostgresMailState {
    pub writer: PgPool,
    pub readers: PgPool,
}

/// The mail-state use cases for one engine: its `{ids}` and `{mailboxes}` fragments, the
/// statement that starts a write transaction, and the extra steps of a delete.
macro_rules! mail_state {
    ($store:ident, db = $db:ty, ids = $ids:literal, mailboxes = $mailboxes:literal, begin = $begin:literal, lock_blobs = $lock:expr, lock_rows = $lock_rows:expr, after_delete = $after:expr, event_lock = $event_lock:expr, file_search = $file_search:path) => {
        impl $store {
            /// `template` with this engine's `{ids}` and `{mailboxes}` (the mailboxes of
            /// `e.id` as a JSON array, only `mailbox` when it is not NULL).
            /// The writing transaction of a flag change or a delete, with the rows it
            /// will change locked first, in a fixed order (`$lock_rows`).
            async fn begin_locked<'c>(
                conn: &'c mut sqlx::pool::PoolConnection<$db>,
                ids: &str,
            ) -> Result<sqlx::Transaction<'c, $db>, StoreError> {
                let mut tx = conn.begin_with($begin).await?;
                for lock in $lock_rows {
                    sqlx::query(Self::sql(lock, ""))
                        .bind(ids)
                        .execute(&mut *tx)
                        .await?;
                }
                Ok(tx)
            }

            fn sql(template: &str, mailbox: &str) -> AssertSqlSafe<String> {
                let mailboxes = $mailboxes.replace("{m}", mailbox);
                AssertSqlSafe(
                    template
                        .replace("{ids}", $ids)
                        .replace("{mailboxes}", &mailboxes),
                )
            }
        }

        #[async_trait]
        impl MailState for $store {
            async fn email_in(
                &self,
                id: EmailId,
                mailbox: &str,
            ) -> Result<Option<StoredEmail>, StoreError> {
                let sql = format!(
                    "SELECT e.id, e.received_at, {MAILBOX_FLAGS}, e.provider, e.document \
                     FROM mailbox_emails m JOIN emails e ON e.id = m.email_id \
                     WHERE m.mailbox = $1 AND m.email_id = $2"
                );
                let row = sqlx::query(AssertSqlSafe(sql))
                    .bind(mailbox)
                    .bind(id.to_string())
                    .fetch_optional(&self.readers)
                    .await?;
                row.as_ref().map(stored_email).transpose()
            }

            async fn mailboxes_of(&self, id: EmailId) -> Result<Vec<MailboxFlags>, StoreError> {
                let rows = sqlx::query(MAILBOXES_OF)
                    .bind(id.to_string())
                    .fetch_all(&self.readers)
                    .await?;
                rows.iter()
                    .map(|row| {
                        Ok(MailboxFlags {
                            address: row.try_get("mailbox")?,
                            read: row.try_get("is_read")?,
                            starred: row.try_get("starred")?,
                            trashed: row.try_get("trashed")?,
                        })
                    })
                    .collect()
            }

            async fn mailboxes(&self) -> Result<Vec<MailboxCount>, StoreError> {
                let rows = sqlx::query(MAILBOX_COUNTS).fetch_all(&self.readers).await?;
                rows.iter()
                    .map(|row| {
                        Ok(MailboxCount {
                            address: row.try_get("mailbox")?,
                            total: row.try_get::<i64, _>("total")? as u64,
                            unread: row.try_get::<i64, _>("unread")? as u64,
                        })
                    })
                    .collect()
            }

            async fn set_flags(
                &self,
                ids: &[EmailId],
                mailbox: Option<&str>,
                change: FlagChange,
            ) -> Result<u64, StoreError> {
                let ids = json_ids(ids);
                let mut conn = self.writer.acquire().await?;
                let mut tx = Self::begin_locked(&mut conn, &ids).await?;
                let filed = match mailbox {
                    Some(mailbox) => {
                        let sql = format!("{SET_IN_MAILBOXES} AND mailbox = $5");
                        sqlx::query(Self::sql(&sql, ""))
                            .bind(&ids)
                            .bind(change.read)
                            .bind(change.starred)
                            .bind(change.trashed)
                            .bind(mailbox)
                            .execute(&mut *tx)
                            .await?
                            .rows_affected()
                    }
                    None => {
                        sqlx::query(Self::sql(SET_IN_MAILBOXES, ""))
                            .bind(&ids)
                            .bind(change.read)
                            .bind(change.starred)
                            .bind(change.trashed)
                            .execute(&mut *tx)
                            .await?;
                        0
                    }
                };
                let unfiled = match mailbox {
                    Some(_) => 0,
                    None => sqlx::query(Self::sql(SET_UNFILED, ""))
                        .bind(&ids)
                        .bind(change.read)
                        .bind(change.starred)
                        .bind(change.trashed)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected(),
                };
                let summarised = sqlx::query(Self::sql(SUMMARISE, ""))
                    .bind(&ids)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                sqlx::query(Self::sql(TRASH_TIMES, ""))
                    .bind(&ids)
                    .bind(now_micros())
                    .execute(&mut *tx)
                    .await?;
                // The change log's lock (PostgreSQL), taken last: see `changes`.
                if let Some(lock) = $event_lock {
                    sqlx::query(lock).execute(&mut *tx).await?;
                }
                sqlx::query(Self::sql(FLAG_EVENTS, "CAST($4 AS TEXT)"))
                    .bind(&ids)
                    .bind(now_micros())
                    .bind(flags_data(&change))
                    .bind(mailbox)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(if mailbox.is_some() {
                    filed
                } else {
                    unfiled + summarised
                })
            }

            async fn delete(&self, ids: &[EmailId]) -> Result<u64, StoreError> {
                let ids = json_ids(ids);
                let mut conn = self.writer.acquire().await?;
                let mut tx = Self::begin_locked(&mut conn, &ids).await?;
                let blobs: Vec<String> = sqlx::query_scalar(Self::sql(BLOBS_OF, ""))
                    .bind(&ids)
                    .fetch_all(&mut *tx)
                    .await?;
                let events: Vec<(String, String)> =
                    sqlx::query_as(Self::sql(DELETED, "CAST(NULL AS TEXT)"))
                        .bind(&ids)
                        .fetch_all(&mut *tx)
                        .await?;
                let deleted = sqlx::query(Self::sql(DELETE_EMAILS, ""))
                    .bind(&ids)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if let Some(after) = $after {
                    sqlx::query(after).execute(&mut *tx).await?;
                }
                let filed: bool = sqlx::query_scalar("SELECT done FROM mail_state_backfill")
                    .fetch_one(&mut *tx)
                    .await?;
                // Until every email's parts are filed, a blob may have users not listed.
                if filed && !blobs.is_empty() {
                    let blobs = json_ids(&blobs);
                    if let Some(lock) = $lock {
                        sqlx::query(Self::sql(lock, ""))
                            .bind(&blobs)
                            .execute(&mut *tx)
                            .await?;
                    }
                    sqlx::query(Self::sql(DELETE_UNUSED_BLOBS, ""))
                        .bind(&blobs)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(Self::sql(DELETE_ORPHAN_CHUNKS, ""))
                        .bind(&blobs)
                        .execute(&mut *tx)
                        .await?;
                }
                if !events.is_empty() {
                    // The change log's lock (PostgreSQL), taken last: see `changes`.
                    if let Some(lock) = $event_lock {
                        sqlx::query(lock).execute(&mut *tx).await?;
                    }
                    let at = now_micros();
                    for (id, mailboxes) in events {
                        sqlx::query(DELETED_EVENT)
                            .bind(at)
                            .bind(id)
                            .bind(mailboxes)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                tx.commit().await?;
                Ok(deleted)
            }

            async fn thread(&self, key: &str, limit: u32) -> Result<Vec<StoredEmail>, StoreError> {
                let sql = format!(
                    "SELECT e.id, e.received_at, {SUMMARY_FLAGS}, e.provider, e.document FROM emails e \
                     WHERE e.thread_key = $1 ORDER BY e.received_at, e.id LIMIT $2"
                );
                let rows = sqlx::query(AssertSqlSafe(sql))
                    .bind(key)
                    .bind(i64::from(limit))
                    .fetch_all(&self.readers)
                    .await?;
                rows.iter().map(stored_email).collect()
            }

            async fn filing_mark(&self) -> Result<Option<String>, StoreError> {
                let row = sqlx::query("SELECT after_id, done FROM mail_state_backfill")
                    .fetch_one(&self.readers)
                    .await?;
                let done: bool = row.try_get("done")?;
                Ok((!done).then(|| row.try_get("after_id")).transpose()?)
            }

            async fn emails_after(
                &self,
                after: &str,
                limit: u32,
            ) -> Result<Vec<StoredEmail>, StoreError> {
                let sql = format!(
                    "SELECT e.id, e.received_at, {SUMMARY_FLAGS}, e.provider, e.document FROM emails e \
                     WHERE e.id > $1 ORDER BY e.id LIMIT $2"
                );
                let rows = sqlx::query(AssertSqlSafe(sql))
                    .bind(after)
                    .bind(i64::from(limit))
                    .fetch_all(&self.readers)
                    .await?;
                rows.iter().map(stored_email).collect()
            }

            async fn file(&self, emails: &[Filed], mark: Option<&str>) -> Result<(), StoreError> {
                let mut conn = self.writer.acquire().await?;
                let mut tx = conn.begin_with($begin).await?;
                for email in emails {
                    let id = email.id.to_string();
                    for mailbox in &email.mailboxes {
                        sqlx::query(FILE_MAILBOX)
                            .bind(mailbox)
                            .bind(&id)
                            .execute(&mut *tx)
                            .await?;
                    }
                    for part in &email.parts {
                        sqlx::query(FILE_PART)
                            .bind(&id)
                            .bind(part.kind.field())
                            .bind(part.position as i64)
                            .bind(&part.blake3)
                            .execute(&mut *tx)
                            .await?;
                    }
                    $file_search(&mut *tx, email).await?;
                }
                sqlx::query("UPDATE mail_state_backfill SET after_id = $1, done = $2")
                    .bind(mark.unwrap_or_default())
                    .bind(mark.is_none())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }
        }
    };
}

mail_state!(
    SqliteMailState,
    db = sqlx::Sqlite,
    ids = "SELECT value FROM json_each($1)",
    mailboxes = "(SELECT json_group_array(mailbox) FROM (SELECT m.mailbox FROM mailbox_emails m \
                 WHERE m.email_id = e.id AND ({m} IS NULL OR m.mailbox = {m}) ORDER BY m.mailbox))",
    begin = "BEGIN IMMEDIATE",
    lock_blobs = None::<&str>,
    lock_rows = [] as [&str; 0],
    after_delete = Some(LOWER_SUBJECT_MARK),
    event_lock = None::<&str>,
    file_search = file_search_sqlite
);
mail_state!(
    PostgresMailState,
    db = sqlx::Postgres,
    ids = "SELECT value FROM json_array_elements_text($1::json)",
    mailboxes = "(SELECT coalesce(json_agg(m.mailbox ORDER BY m.mailbox), '[]'::json)::text \
                 FROM mailbox_emails m WHERE m.email_id = e.id AND ({m} IS NULL OR m.mailbox = {m}))",
    begin = "BEGIN",
    lock_blobs = Some(LOCK_BLOBS),
    lock_rows = [LOCK_COUNTS, LOCK_EMAILS],
    after_delete = None::<&str>,
    event_lock = Some(EVENT_LOCK),
    file_search = file_search_postgres
);
