//! Retention (DESIGN §7): a background sweep deletes mail older than `RETENTION_DAYS`,
//! beyond the newest `RETENTION_MAX_EMAILS`, or in the trash for `TRASH_RETENTION_DAYS`,
//! and trims the change log to `EVENTS_RETENTION_DAYS`. It deletes in small batches
//! through the same use case as `DELETE /emails/<id>` (blobs, index entries and events
//! alike), pausing between them, so ingest never waits on it for long.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::mail_state::{PostgresMailState, SqliteMailState};
use super::{Store, StoreError, from_micros, to_micros};
use crate::email::EmailId;
use crate::telemetry::error_chain;

/// Emails deleted per transaction.
const BATCH: u32 = 200;
/// A pause between batches, so that deliveries get the writer in between.
const PAUSE: Duration = Duration::from_millis(20);

/// What to keep (read by `config`); `None` keeps everything by that rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// `RETENTION_DAYS`: mail received longer ago than this goes.
    pub max_age: Option<chrono::Duration>,
    /// `RETENTION_MAX_EMAILS`: only this many of the newest stay.
    pub max_emails: Option<u64>,
    /// `TRASH_RETENTION_DAYS` (30): mail in the trash of all its mailboxes this long goes.
    pub trash_age: Option<chrono::Duration>,
    /// `EVENTS_RETENTION_DAYS` (7): how far back event streams can resume.
    pub events_age: chrono::Duration,
    /// How often the sweep runs.
    pub every: Duration,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        Self {
            max_age: None,
            max_emails: None,
            trash_age: Some(chrono::Duration::days(30)),
            events_age: chrono::Duration::days(7),
            every: Duration::from_secs(600),
        }
    }
}

/// Which emails a rule expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    ReceivedBefore(DateTime<Utc>),
    TrashedBefore(DateTime<Utc>),
}

/// The queries of the sweep, behind `Store::expiring`.
#[async_trait]
pub trait Expiring: Send + Sync {
    /// Up to `limit` emails that `rule` expires, oldest first.
    async fn expired(&self, rule: Expired, limit: u32) -> Result<Vec<EmailId>, StoreError>;
    /// The receive time of the oldest of the newest `n` emails: older ones are beyond
    /// them. `None` when there are fewer than `n` (or `n` is 0).
    async fn oldest_kept(&self, n: u64) -> Result<Option<DateTime<Utc>>, StoreError>;
}

/// Runs the sweep every `policy.every`, for as long as the server runs.
pub async fn sweep_forever(store: Arc<dyn Store>, policy: RetentionPolicy) {
    loop {
        match sweep(store.as_ref(), &policy, Utc::now()).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "retention: deleted expired mail"),
            Err(error) => {
                tracing::warn!(error = %error_chain(&error), "retention sweep failed; trying again later")
            }
        }
        tokio::time::sleep(policy.every).await;
    }
}

/// One sweep as of `now`: answers how many emails it deleted.
pub async fn sweep(
    store: &dyn Store,
    policy: &RetentionPolicy,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut rules = Vec::new();
    if let Some(age) = policy.max_age {
        rules.push(Expired::ReceivedBefore(now - age));
    }
    if let Some(count) = policy.max_emails
        && let Some(oldest_kept) = store.expiring().oldest_kept(count).await?
    {
        // Ties with the last one kept stay too: at most a few more than the cap.
        rules.push(Expired::ReceivedBefore(oldest_kept));
    }
    if let Some(age) = policy.trash_age {
        rules.push(Expired::TrashedBefore(now - age));
    }
    let mut deleted = 0;
    for rule in rules {
        deleted += delete_all(store, rule).await?;
    }
    store.changes().prune(now - policy.events_age).await?;
    Ok(deleted)
}

async fn delete_all(store: &dyn Store, rule: Expired) -> Result<u64, StoreError> {
    let mut deleted = 0;
    loop {
        let ids = store.expiring().expired(rule, BATCH).await?;
        if ids.is_empty() {
            return Ok(deleted);
        }
        deleted += store.mail_state().delete(&ids).await?;
        tokio::time::sleep(PAUSE).await;
    }
}

const RECEIVED_BEFORE: &str =
    "SELECT id FROM emails WHERE received_at < $1 ORDER BY received_at LIMIT $2";
const TRASHED_BEFORE: &str =
    "SELECT id FROM emails WHERE trashed_at < $1 ORDER BY trashed_at LIMIT $2";
const RECEIVED_AT_RANK: &str =
    "SELECT received_at FROM emails ORDER BY received_at DESC, id DESC LIMIT 1 OFFSET $1";

/// The sweep's queries on one engine; the SQL is the same on both.
macro_rules! expiring {
    ($state:ident) => {
        #[async_trait]
        impl Expiring for $state {
            async fn expired(&self, rule: Expired, limit: u32) -> Result<Vec<EmailId>, StoreError> {
                let (sql, before) = match rule {
                    Expired::ReceivedBefore(at) => (RECEIVED_BEFORE, at),
                    Expired::TrashedBefore(at) => (TRASHED_BEFORE, at),
                };
                let ids: Vec<String> = sqlx::query_scalar(sql)
                    .bind(to_micros(before))
                    .bind(i64::from(limit))
                    .fetch_all(&self.readers)
                    .await?;
                ids.iter()
                    .map(|id| {
                        id.parse()
                            .map_err(|e| StoreError::Database(sqlx::Error::Decode(Box::new(e))))
                    })
                    .collect()
            }

            async fn oldest_kept(&self, n: u64) -> Result<Option<DateTime<Utc>>, StoreError> {
                let Some(skip) = n.checked_sub(1) else {
                    return Ok(None);
                };
                let at: Option<i64> = sqlx::query_scalar(RECEIVED_AT_RANK)
                    .bind(i64::try_from(skip).unwrap_or(i64::MAX))
                    .fetch_optional(&self.readers)
                    .await?;
                Ok(at.map(from_micros))
            }
        }
    };
}

expiring!(SqliteMailState);
expiring!(PostgresMailState);
