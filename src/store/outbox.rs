//! The persistent outbox: accepted outbound mail, its delivery state, the sent folder.
//!
//! Kept beside the mail store rather than inside it: each engine opens its own small pool
//! on the same database, so queueing and delivery never wait behind inbound group commits.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{PostgresOutbox, SqliteOutbox, StoreError};
use crate::email::EmailId;

/// The span of `Usage::recipients_last_day`.
pub const DAY: Duration = Duration::from_secs(86_400);

/// What the outbox says about recent sending.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// When this client's accepted emails were queued, within the lookback.
    pub accepted: Vec<DateTime<Utc>>,
    /// Recipients of every email accepted in the last 24 hours, all clients.
    pub recipients_last_day: u64,
}

/// The outbox states (the transitions between them are `outbound::outbox`'s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxStatus {
    Queued,
    Sending,
    Sent,
    TemporaryFailure { retry_at: DateTime<Utc> },
    PermanentFailure,
}

impl OutboxStatus {
    /// The name stored in the database and shown by the API.
    pub fn name(&self) -> &'static str {
        match self {
            OutboxStatus::Queued => "queued",
            OutboxStatus::Sending => "sending",
            OutboxStatus::Sent => "sent",
            OutboxStatus::TemporaryFailure { .. } => "retrying",
            OutboxStatus::PermanentFailure => "failed",
        }
    }

    /// Rebuilds the status from its stored name and the row's next attempt time.
    pub fn from_stored(name: &str, next_attempt_at: DateTime<Utc>) -> Option<Self> {
        Some(match name {
            "queued" => OutboxStatus::Queued,
            "sending" => OutboxStatus::Sending,
            "sent" => OutboxStatus::Sent,
            "retrying" => OutboxStatus::TemporaryFailure {
                retry_at: next_attempt_at,
            },
            "failed" => OutboxStatus::PermanentFailure,
            _ => return None,
        })
    }

    /// The names a client may filter by.
    pub const NAMES: [&'static str; 5] = ["queued", "sending", "sent", "retrying", "failed"];
}

/// The state a `Sending` row moves to, with what to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub status: OutboxStatus,
    /// The relay's reply on success, or the error.
    pub detail: String,
}

/// An accepted email, ready to queue.
#[derive(Debug, Clone)]
pub struct NewOutboxEmail {
    pub id: EmailId,
    /// Who the send limits count it against: an IPv4 address or an IPv6 /64.
    pub client_ip: String,
    pub accepted_at: DateTime<Utc>,
    /// Envelope sender.
    pub sender: String,
    /// Envelope recipients: to, cc and bcc.
    pub recipients: Vec<String>,
    pub subject: String,
    /// What the API shows: `from`, `to`, `cc`, `bcc`, `subject`, `isHtml`, `body`.
    pub summary: Value,
    /// The RFC 5322 message exactly as it will be sent.
    pub raw: Vec<u8>,
}

/// A row as the API reports it.
#[derive(Debug, Clone)]
pub struct OutboxEntry {
    pub id: EmailId,
    pub status: OutboxStatus,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub smtp_reply: Option<String>,
    pub accepted_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub summary: Value,
}

/// A row the worker has moved to `Sending` and now owns.
#[derive(Debug, Clone)]
pub struct ClaimedEmail {
    pub id: EmailId,
    /// Who asked for it (an IPv6 client by its /64), for the log.
    pub client_ip: String,
    pub sender: String,
    pub recipients: Vec<String>,
    pub subject: String,
    pub raw: Vec<u8>,
    /// Including this attempt.
    pub attempts: u32,
    pub accepted_at: DateTime<Utc>,
}

/// How many rows each status holds, and when the oldest email not yet delivered was
/// accepted; for the metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    /// Every status of `OutboxStatus::NAMES`, zero included.
    pub by_status: Vec<(&'static str, u64)>,
    /// The oldest `accepted_at` among queued, sending and retrying rows.
    pub oldest_waiting: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default)]
pub struct OutboxQuery {
    pub status: Option<String>,
    pub limit: u32,
    pub skip: u64,
}

/// Decides, from the usage seen inside the queueing transaction, whether the email may go.
pub type Admit<'a> = &'a (dyn Fn(&Usage) -> bool + Send + Sync);

#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Queues the email if `admit` allows it, atomically with reading the usage it judged;
    /// `false` when it did not.
    async fn enqueue(
        &self,
        email: &NewOutboxEmail,
        lookback: Duration,
        admit: Admit<'_>,
    ) -> Result<bool, StoreError>;

    /// What `client_ip` (a key as queued) sent within `lookback` of `now`, and all
    /// recipients of the last day.
    async fn usage(
        &self,
        client_ip: &str,
        now: DateTime<Utc>,
        lookback: Duration,
    ) -> Result<Usage, StoreError>;

    /// Moves one due row (queued, or retrying whose time has come) to `sending`; each row
    /// is claimed by one caller only, across instances.
    async fn claim_due(&self, now: DateTime<Utc>) -> Result<Option<ClaimedEmail>, StoreError>;

    /// Applies the outcome of an attempt to a row in `sending`.
    async fn record(
        &self,
        id: EmailId,
        transition: &Transition,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Returns rows claimed before `claimed_before` and still `sending` to the queue.
    async fn recover_stuck(
        &self,
        claimed_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    /// When the next queued or retrying row is due.
    async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError>;

    async fn entry(&self, id: EmailId) -> Result<Option<OutboxEntry>, StoreError>;

    /// Newest accepted first.
    async fn list(&self, query: &OutboxQuery) -> Result<Vec<OutboxEntry>, StoreError>;

    /// Rows per status and the oldest waiting email (one indexed query).
    async fn counts(&self) -> Result<OutboxCounts, StoreError>;

    /// The outbox's own connection pool, for the metrics.
    fn pool_usage(&self) -> super::PoolUsage;

    async fn close(&self);
}

/// Opens the outbox in the database named by `url` (already migrated by the mail store).
pub async fn open_outbox(url: &str) -> Result<Arc<dyn OutboxStore>, StoreError> {
    Ok(match super::Engine::of(url)? {
        super::Engine::Sqlite => Arc::new(SqliteOutbox::open(url).await?),
        super::Engine::Postgres => Arc::new(PostgresOutbox::open(url).await?),
    })
}

/// `counts`, on both engines: status, rows, oldest `accepted_at`.
pub(super) const COUNTS_SQL: &str =
    "SELECT status, COUNT(*), MIN(accepted_at) FROM outbox GROUP BY status";

/// `OutboxCounts` from the rows of `COUNTS_SQL`.
pub(super) fn counts_from_rows(rows: &[(String, i64, Option<i64>)]) -> OutboxCounts {
    let by_status = OutboxStatus::NAMES
        .iter()
        .map(|name| {
            let rows = rows.iter().find(|(status, ..)| status == name);
            (
                *name,
                rows.map_or(0, |(_, count, _)| (*count).max(0) as u64),
            )
        })
        .collect();
    let oldest_waiting = rows
        .iter()
        .filter(|(status, ..)| matches!(status.as_str(), "queued" | "sending" | "retrying"))
        .filter_map(|(.., oldest)| *oldest)
        .min()
        .map(super::from_micros);
    OutboxCounts {
        by_status,
        oldest_waiting,
    }
}

/// Columns every read selects, in both engines.
pub(super) const ENTRY_COLUMNS: &str =
    "id, status, attempts, last_error, smtp_reply, accepted_at, sent_at, next_attempt_at, summary";

pub(super) fn decode_error(message: impl Into<String>) -> StoreError {
    StoreError::Database(sqlx::Error::Protocol(message.into()))
}

pub(super) fn parse_id(text: &str) -> Result<EmailId, StoreError> {
    text.parse()
        .map_err(|_| decode_error(format!("bad outbox id {text:?}")))
}

pub(super) fn parse_status(name: &str, next_attempt_at: i64) -> Result<OutboxStatus, StoreError> {
    OutboxStatus::from_stored(name, super::from_micros(next_attempt_at))
        .ok_or_else(|| decode_error(format!("unknown outbox status {name:?}")))
}

/// The instant `span` before `now`, in stored microseconds.
pub(super) fn since(now: DateTime<Utc>, span: Duration) -> i64 {
    super::to_micros(now) - i64::try_from(span.as_micros()).unwrap_or(i64::MAX / 2)
}

/// An outbox row (`ENTRY_COLUMNS`) as an `OutboxEntry`, on either engine.
pub(super) fn entry_from_row<R>(row: &R) -> Result<OutboxEntry, StoreError>
where
    R: sqlx::Row,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let status: String = row.try_get("status")?;
    let summary: String = row.try_get("summary")?;
    Ok(OutboxEntry {
        id: parse_id(&row.try_get::<String, _>("id")?)?,
        status: parse_status(&status, row.try_get("next_attempt_at")?)?,
        attempts: row.try_get::<i64, _>("attempts")?.max(0) as u32,
        last_error: row.try_get("last_error")?,
        smtp_reply: row.try_get("smtp_reply")?,
        accepted_at: super::from_micros(row.try_get("accepted_at")?),
        sent_at: row
            .try_get::<Option<i64>, _>("sent_at")?
            .map(super::from_micros),
        summary: parse_json(&summary)?,
    })
}

pub(super) fn parse_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Database(sqlx::Error::Decode(Box::new(e))))
}

/// Stored columns of a transition: status, next attempt (µs), last error, reply, sent at.
pub(super) fn transition_columns(
    transition: &Transition,
    now: DateTime<Utc>,
) -> (
    &'static str,
    i64,
    Option<String>,
    Option<String>,
    Option<i64>,
) {
    let now_micros = super::to_micros(now);
    match transition.status {
        OutboxStatus::Sent => (
            "sent",
            now_micros,
            None,
            Some(transition.detail.clone()),
            Some(now_micros),
        ),
        OutboxStatus::TemporaryFailure { retry_at } => (
            "retrying",
            super::to_micros(retry_at),
            Some(transition.detail.clone()),
            None,
            None,
        ),
        status => (
            status.name(),
            now_micros,
            Some(transition.detail.clone()),
            None,
            None,
        ),
    }
}
