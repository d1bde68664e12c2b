//! The outbox on SQLite: one connection of its own (WAL lets it share the file with the
//! mail store's writer), `BEGIN IMMEDIATE` where a read decides a write.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqlitePool, SqlitePoolOptions};
use sqlx::{Connection, Row};

use super::super::outbox::{
    Admit, COUNTS_SQL, ClaimedEmail, DAY, ENTRY_COLUMNS, NewOutboxEmail, OutboxCounts, OutboxEntry,
    OutboxQuery, OutboxStore, Transition, Usage, counts_from_rows, entry_from_row, parse_id,
    parse_json, since, transition_columns,
};
use super::super::{PoolUsage, StoreError, from_micros, to_micros};
use crate::email::EmailId;

pub struct SqliteOutbox {
    pool: SqlitePool,
}

impl SqliteOutbox {
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = super::connect_options(url)?;
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }
}

async fn read_usage(
    conn: &mut sqlx::SqliteConnection,
    client_ip: &str,
    now: DateTime<Utc>,
    lookback: Duration,
) -> Result<Usage, StoreError> {
    let accepted: Vec<i64> = sqlx::query_scalar(
        "SELECT accepted_at FROM outbox WHERE client_ip = ? AND accepted_at > ?",
    )
    .bind(client_ip)
    .bind(since(now, lookback))
    .fetch_all(&mut *conn)
    .await?;
    let recipients: i64 = sqlx::query_scalar(
        "SELECT COALESCE(SUM(recipient_count), 0) FROM outbox WHERE accepted_at > ?",
    )
    .bind(since(now, DAY))
    .fetch_one(&mut *conn)
    .await?;
    Ok(Usage {
        accepted: accepted.into_iter().map(from_micros).collect(),
        recipients_last_day: recipients.max(0) as u64,
    })
}

#[async_trait]
impl OutboxStore for SqliteOutbox {
    async fn enqueue(
        &self,
        email: &NewOutboxEmail,
        lookback: Duration,
        admit: Admit<'_>,
    ) -> Result<bool, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        let usage = read_usage(&mut tx, &email.client_ip, email.accepted_at, lookback).await?;
        if !admit(&usage) {
            tx.rollback().await?;
            return Ok(false);
        }
        let at = to_micros(email.accepted_at);
        sqlx::query(
            "INSERT INTO outbox (id, status, client_ip, accepted_at, updated_at, next_attempt_at,
                 attempts, sender, recipients, recipient_count, subject, summary, raw)
             VALUES (?, 'queued', ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?)",
        )
        .bind(email.id.to_string())
        .bind(&email.client_ip)
        .bind(at)
        .bind(at)
        .bind(at)
        .bind(&email.sender)
        .bind(serde_json::to_string(&email.recipients).unwrap_or_default())
        .bind(email.recipients.len() as i64)
        .bind(&email.subject)
        .bind(email.summary.to_string())
        .bind(email.raw.as_slice())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn usage(
        &self,
        client_ip: &str,
        now: DateTime<Utc>,
        lookback: Duration,
    ) -> Result<Usage, StoreError> {
        let mut conn = self.pool.acquire().await?;
        read_usage(&mut conn, client_ip, now, lookback).await
    }

    async fn claim_due(&self, now: DateTime<Utc>) -> Result<Option<ClaimedEmail>, StoreError> {
        let at = to_micros(now);
        let row = sqlx::query(
            "UPDATE outbox SET status = 'sending', claimed_at = ?, updated_at = ?, attempts = attempts + 1
             WHERE id = (SELECT id FROM outbox
                         WHERE status IN ('queued', 'retrying') AND next_attempt_at <= ?
                         ORDER BY next_attempt_at, id LIMIT 1)
             RETURNING id, client_ip, sender, recipients, subject, raw, attempts, accepted_at",
        )
        .bind(at)
        .bind(at)
        .bind(at)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(ClaimedEmail {
            id: parse_id(&row.try_get::<String, _>("id")?)?,
            client_ip: row.try_get("client_ip")?,
            sender: row.try_get("sender")?,
            recipients: parse_json(&row.try_get::<String, _>("recipients")?)?,
            subject: row.try_get("subject")?,
            raw: row.try_get("raw")?,
            attempts: row.try_get::<i64, _>("attempts")?.max(0) as u32,
            accepted_at: from_micros(row.try_get("accepted_at")?),
        }))
    }

    async fn record(
        &self,
        id: EmailId,
        transition: &Transition,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (status, next, error, reply, sent_at) = transition_columns(transition, now);
        sqlx::query(
            "UPDATE outbox SET status = ?, next_attempt_at = ?, last_error = COALESCE(?, last_error),
                 smtp_reply = ?, sent_at = ?, updated_at = ?, claimed_at = NULL
             WHERE id = ? AND status = 'sending'",
        )
        .bind(status)
        .bind(next)
        .bind(error)
        .bind(reply)
        .bind(sent_at)
        .bind(to_micros(now))
        .bind(id.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn recover_stuck(
        &self,
        claimed_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE outbox SET status = 'retrying', next_attempt_at = ?, updated_at = ?, claimed_at = NULL,
                 last_error = 'interrupted while sending; queued again'
             WHERE status = 'sending' AND claimed_at <= ?",
        )
        .bind(to_micros(now))
        .bind(to_micros(now))
        .bind(to_micros(claimed_before))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let next: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(next_attempt_at) FROM outbox WHERE status IN ('queued', 'retrying')",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(next.map(from_micros))
    }

    async fn entry(&self, id: EmailId) -> Result<Option<OutboxEntry>, StoreError> {
        let sql = format!("SELECT {ENTRY_COLUMNS} FROM outbox WHERE id = ?");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(entry_from_row).transpose()
    }

    async fn list(&self, query: &OutboxQuery) -> Result<Vec<OutboxEntry>, StoreError> {
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM outbox WHERE (? IS NULL OR status = ?)
             ORDER BY accepted_at DESC, id DESC LIMIT ? OFFSET ?"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(query.status.as_deref())
            .bind(query.status.as_deref())
            .bind(i64::from(query.limit))
            .bind(i64::try_from(query.skip).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(entry_from_row).collect()
    }

    async fn counts(&self) -> Result<OutboxCounts, StoreError> {
        let rows: Vec<(String, i64, Option<i64>)> =
            sqlx::query_as(COUNTS_SQL).fetch_all(&self.pool).await?;
        Ok(counts_from_rows(&rows))
    }

    fn pool_usage(&self) -> PoolUsage {
        PoolUsage::of("outbox", &self.pool)
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
