//! The change log (DESIGN §7): new emails, flag changes and deletes, written in the same
//! transaction as the change itself, numbered in commit order. Event streams (`GET
//! /events`, the webmail's) read it from a sequence number, so they survive restarts,
//! resume from `Last-Event-ID` and see what every instance wrote.
//!
//! Order: SQLite has one writer at a time, so numbers are handed out in commit order.
//! On PostgreSQL, every writer takes `EVENT_LOCK` just before it adds its rows and holds
//! it to its commit, so a number never becomes visible after a higher one.

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use sqlx::{Database, Encode, QueryBuilder, Type};

use super::{StoreError, from_micros, to_micros};
use crate::email::{EmailId, FlagChange, NewEmail};

/// PostgreSQL: serialises the writers of the change log from their first event row to
/// their commit. It must be the last lock a transaction takes, so that its holder never
/// waits for anything but its own commit (no deadlock with row or blob locks).
pub(super) const EVENT_LOCK: &str = "SELECT pg_advisory_xact_lock(7236291855170646895)";

/// Rows of one event INSERT: five variables a row.
const EVENT_ROWS_PER_STATEMENT: usize = 1_000;

/// What happened to an email.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// It was stored.
    Email,
    /// Flags changed in some of its mailboxes.
    Flags,
    /// It was deleted.
    Deleted,
}

impl EventKind {
    /// The name stored in the log and sent as the SSE `event:` field.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Email => "email",
            EventKind::Flags => "flags",
            EventKind::Deleted => "deleted",
        }
    }

    fn from_stored(name: &str) -> Result<Self, StoreError> {
        match name {
            "email" => Ok(EventKind::Email),
            "flags" => Ok(EventKind::Flags),
            "deleted" => Ok(EventKind::Deleted),
            other => Err(StoreError::Database(sqlx::Error::Protocol(format!(
                "unknown event kind {other:?}"
            )))),
        }
    }
}

/// One entry of the change log.
#[derive(Debug, Clone, PartialEq)]
pub struct MailEvent {
    /// Position in the log: increasing, never reused.
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub kind: EventKind,
    pub email_id: EmailId,
    /// The mailboxes the event concerns (all of the email's, or the one changed).
    pub mailboxes: Vec<String>,
    /// The kind's own fields: for `email`, `from`, `subject` and `received_at`; for
    /// `flags`, the flags set (`read`, `starred`, `trashed`).
    pub data: Map<String, Value>,
}

impl MailEvent {
    /// The event as clients see it: `id`, `mailboxes`, then the kind's own fields.
    pub fn to_json(&self) -> Value {
        let mut json = Map::with_capacity(self.data.len() + 2);
        json.insert("id".into(), self.email_id.to_string().into());
        json.insert("mailboxes".into(), self.mailboxes.clone().into());
        json.extend(self.data.clone());
        Value::Object(json)
    }
}

/// Reading and trimming the log, behind `Store::changes`.
#[async_trait]
pub trait ChangeLog: Send + Sync {
    /// Up to `limit` events after `seq`, oldest first.
    async fn events_after(&self, seq: i64, limit: u32) -> Result<Vec<MailEvent>, StoreError>;
    /// The newest event's number (0 when the log is empty).
    async fn last_seq(&self) -> Result<i64, StoreError>;
    /// Drops the events older than `before`; answers how many went.
    async fn prune(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
}

/// The `email` events of newly stored emails, one statement per chunk.
pub(super) fn new_email_events<DB>(emails: &[&NewEmail]) -> Vec<QueryBuilder<DB>>
where
    DB: Database,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
{
    emails
        .chunks(EVENT_ROWS_PER_STATEMENT)
        .map(|chunk| {
            let mut sql = QueryBuilder::<DB>::new(
                "INSERT INTO mail_events (at, kind, email_id, mailboxes, data) ",
            );
            sql.push_values(chunk, |mut row, email| {
                let event = new_email_event(email);
                row.push_bind(event.at)
                    .push_bind(event.kind.to_owned())
                    .push_bind(event.email_id)
                    .push_bind(event.mailboxes)
                    .push_bind(event.data);
            });
            sql
        })
        .collect()
}

/// The change-log row of a stored email, its columns in the table's order.
pub(super) struct EventRow {
    pub at: i64,
    pub kind: &'static str,
    pub email_id: String,
    pub mailboxes: String,
    pub data: String,
}

pub(super) fn new_email_event(email: &NewEmail) -> EventRow {
    EventRow {
        at: to_micros(Utc::now()),
        kind: EventKind::Email.name(),
        email_id: email.id.to_string(),
        mailboxes: json!(email.mailboxes).to_string(),
        data: new_email_data(email).to_string(),
    }
}

fn new_email_data(email: &NewEmail) -> Value {
    json!({
        "from": email.from_email(),
        "subject": email.message.subject,
        "received_at": email.received_at.to_rfc3339_opts(SecondsFormat::Millis, true),
    })
}

/// The `data` of a `flags` event: the flags that were set.
pub(super) fn flags_data(change: &FlagChange) -> String {
    let mut data = Map::new();
    for (name, value) in [
        ("read", change.read),
        ("starred", change.starred),
        ("trashed", change.trashed),
    ] {
        if let Some(value) = value {
            data.insert(name.into(), value.into());
        }
    }
    Value::Object(data).to_string()
}

/// The current time as the log stores it.
pub(super) fn now_micros() -> i64 {
    to_micros(Utc::now())
}

const EVENTS_AFTER: &str = "SELECT seq, at, kind, email_id, mailboxes, data FROM mail_events \
     WHERE seq > $1 ORDER BY seq LIMIT $2";

fn mail_event<R>(row: &R) -> Result<MailEvent, StoreError>
where
    R: sqlx::Row,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let corrupt = |e: serde_json::Error| StoreError::Database(sqlx::Error::Decode(Box::new(e)));
    let id: String = row.try_get("email_id")?;
    let mailboxes: String = row.try_get("mailboxes")?;
    let data: String = row.try_get("data")?;
    Ok(MailEvent {
        seq: row.try_get("seq")?,
        at: from_micros(row.try_get("at")?),
        kind: EventKind::from_stored(&row.try_get::<String, _>("kind")?)?,
        email_id: id
            .parse()
            .map_err(|e| StoreError::Database(sqlx::Error::Decode(Box::new(e))))?,
        mailboxes: serde_json::from_str(&mailboxes).map_err(corrupt)?,
        data: serde_json::from_str(&data).map_err(corrupt)?,
    })
}

/// The log on one engine's pool; the SQL is the same on both.
macro_rules! change_log {
    ($log:ident, $pool:ty) => {
        pub(super) struct $log {
            pub readers: $pool,
            /// Pruning writes: on SQLite, the connection that every other write queues at.
            pub writer: $pool,
        }

        #[async_trait]
        impl ChangeLog for $log {
            async fn events_after(
                &self,
                seq: i64,
                limit: u32,
            ) -> Result<Vec<MailEvent>, StoreError> {
                let rows = sqlx::query(EVENTS_AFTER)
                    .bind(seq)
                    .bind(i64::from(limit))
                    .fetch_all(&self.readers)
                    .await?;
                rows.iter().map(mail_event).collect()
            }

            async fn last_seq(&self) -> Result<i64, StoreError> {
                let seq: Option<i64> = sqlx::query_scalar("SELECT max(seq) FROM mail_events")
                    .fetch_one(&self.readers)
                    .await?;
                Ok(seq.unwrap_or(0))
            }

            async fn prune(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
                Ok(sqlx::query("DELETE FROM mail_events WHERE at < $1")
                    .bind(to_micros(before))
                    .execute(&self.writer)
                    .await?
                    .rows_affected())
            }
        }
    };
}

change_log!(SqliteChangeLog, SqlitePool);
change_log!(PostgresChangeLog, PgPool);
