//! The outbox on PostgreSQL: a small pool of its own. `FOR UPDATE SKIP LOCKED` claims each
//! row once across instances; a transaction-scoped advisory lock serialises `enqueue`'s limit checks.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::super::outbox::{
    Admit, COUNTS_SQL, ClaimedEmail, DAY, ENTRY_COLUMNS, NewOutboxEmail, OutboxCounts, OutboxEntry,
    OutboxQuery, OutboxStore, Transition, Usage, counts_from_rows, entry_from_row, parse_id,
    parse_json, since, transition_columns,
};
use super::super::{PoolUsage, StoreError, from_micros, to_micros};
use crate::email::EmailId;

/// Any fixed key: queueing is rare, so one lock for all clients keeps the quota exact too.
const ENQUEUE_LOCK: i64 = 0x6d61_696c_726f_6f6d;

pub struct PostgresOutbox {
    pool: PgPool,
}

impl PostgresOutbox {
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)?
            .options([("synchronous_commit", "on")])
            .application_name("mailroom-outbox");
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(super::super::DEFAULT_ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }
}

async fn read_usage(
    conn: &mut sqlx::PgConnection,
    client_ip: &str,
    now: DateTime<Utc>,
    lookback: Duration,
) -> Result<Usage, StoreError> {
    let accepted: Vec<i64> = sqlx::query_scalar(
        "SELECT accepted_at FROM outbox WHERE client_ip = $1 AND accepted_at > $2",
    )
    .bind(client_ip)
    .bind(since(now, lookback))
    .fetch_all(&mut *conn)
    .await?;
    let recipients: i64 = sqlx::query_scalar(
        "SELECT COALESCE(SUM(recipient_count), 0)::BIGINT FROM outbox WHERE accepted_at > $1",
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
impl OutboxStore for PostgresOutbox {
    async fn enqueue(
        &self,
        email: &NewOutboxEmail,
        lookback: Duration,
        admit: Admit<'_>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(ENQUEUE_LOCK)
            .execute(&mut *tx)
            .await?;
        let usage = read_usage(&mut tx, &email.client_ip, email.accepted_at, lookback).await?;
        if !admit(&usage) {
            tx.rollback().await?;
            return Ok(false);
        }
        let at = to_micros(email.accepted_at);
        sqlx::query(
            "INSERT INTO outbox (id, status, client_ip, accepted_at, updated_at, next_attempt_at,
                 attempts, sender, recipients, recipient_count, subject, summary, raw)
             VALUES ($1, 'queued', $2, $3, $4, $5, 0, $6, $7, $8, $9, $10, $11)",
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
            "UPDATE outbox SET status = 'sending', claimed_at = $1, updated_at = $2, attempts = attempts + 1
             WHERE id = (SELECT id FROM outbox
                         WHERE status IN ('queued', 'retrying') AND next_attempt_at <= $3
                         ORDER BY next_attempt_at, id LIMIT 1
                         FOR UPDATE SKIP LOCKED)
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
            "UPDATE outbox SET status = $1, next_attempt_at = $2, last_error = COALESCE($3, last_error),
                 smtp_reply = $4, sent_at = $5, updated_at = $6, claimed_at = NULL
             WHERE id = $7 AND status = 'sending'",
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
            "UPDATE outbox SET status = 'retrying', next_attempt_at = $1, updated_at = $2, claimed_at = NULL,
                 last_error = 'interrupted while sending; queued again'
             WHERE status = 'sending' AND claimed_at <= $3",
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
        let sql = format!("SELECT {ENTRY_COLUMNS} FROM outbox WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(entry_from_row).transpose()
    }

    async fn list(&self, query: &OutboxQuery) -> Result<Vec<OutboxEntry>, StoreError> {
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM outbox WHERE ($1::TEXT IS NULL OR status = $1)
             ORDER BY accepted_at DESC, id DESC LIMIT $2 OFFSET $3"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
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
