//! Rate-limit windows and lockouts shared by every instance on one PostgreSQL database.
//!
//! Each use case is one statement, so it is atomic on its own: counting a request is an
//! `INSERT … ON CONFLICT DO UPDATE … RETURNING`, which holds the row's lock while it
//! checks every window and counts in all of them or none; recording a failure likewise.
//! Instants come from the caller (the instance's clock, in microseconds), so the tests
//! can move time. On SQLite one instance owns the database and the limits stay in its
//! memory (`security::rate_limit`), so there is no SQLite implementation.

use std::str::FromStr as _;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::{Engine, PoolUsage, StoreError, from_micros, to_micros};

/// One fixed window of a policy: at most `limit` requests per `length`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowRule {
    pub length: Duration,
    pub limit: u32,
}

/// Where one window stands after a request, in the order the rules were given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowCount {
    pub start: DateTime<Utc>,
    pub count: u32,
}

/// The outcome of counting one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counted {
    /// False when a window was full: then it was counted in none of them.
    pub counted: bool,
    pub windows: Vec<WindowCount>,
}

/// When failures lock a client out: `max_failures` (at least 1) within `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureRule {
    pub max_failures: u32,
    pub window: Duration,
    pub lockout: Duration,
}

/// What is recorded about a client's failed authentications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Nothing: no failure within the window, no lockout.
    Clean,
    /// Failures are counted, or a lockout that may have ended.
    Recorded { locked_until: Option<DateTime<Utc>> },
}

/// Counts one request; the first of a client inserts its row, counted in every window
/// (every limit is at least 1). Otherwise each window that has ended starts again at
/// `$3`, and the request counts in all windows only if each has room (`bool_and … OVER
/// ()`). Stored windows beyond the rules are dropped; missing ones start afresh.
const COUNT_REQUEST: &str = "\
INSERT INTO rate_limit_windows AS r (policy, client, starts, counts, counted, expires_at)
SELECT $1, $2, array_agg($3::bigint ORDER BY i), array_agg(1 ORDER BY i), true, $3 + max(w)
FROM unnest($4::bigint[]) WITH ORDINALITY AS x(w, i)
ON CONFLICT (policy, client) DO UPDATE SET (starts, counts, counted, expires_at) = (
    SELECT array_agg(s ORDER BY i), array_agg(c + room::int ORDER BY i), bool_and(room),
           max(s + w)
    FROM (
        SELECT i, w, s, c, bool_and(c < l) OVER () AS room
        FROM (
            SELECT i, w, l,
                CASE WHEN s IS NULL OR $3 - s >= w THEN $3 ELSE s END AS s,
                CASE WHEN s IS NULL OR $3 - s >= w THEN 0 ELSE c END AS c
            FROM unnest(r.starts, r.counts, $4::bigint[], $5::int[])
                WITH ORDINALITY AS x(s, c, w, l, i)
        ) current
        WHERE w IS NOT NULL
    ) decided
)
RETURNING starts, counts, counted";

/// Records a failure at `$3`: failures older than the window `$4` are forgotten, and
/// reaching `$5` of them locks the client out until `$3 + $6` (and forgets them). A
/// client already locked out is left as it is, so retrying never extends a lockout.
const RECORD_FAILURE: &str = "\
INSERT INTO lockouts AS l (scope, client, failures, locked_until, locked_now, expires_at)
SELECT $1, $2, CASE WHEN locks THEN '{}' ELSE ARRAY[$3::bigint] END,
       CASE WHEN locks THEN $3 + $6 END, locks, $3 + CASE WHEN locks THEN $6 ELSE $4 END
FROM (SELECT $5 <= 1 AS locks) first
ON CONFLICT (scope, client) DO UPDATE SET (failures, locked_until, locked_now, expires_at) = (
    SELECT CASE WHEN held THEN l.failures WHEN locks THEN '{}' ELSE kept END,
           CASE WHEN held THEN l.locked_until WHEN locks THEN $3 + $6 END,
           NOT held AND locks,
           CASE WHEN held THEN l.expires_at WHEN locks THEN $3 + $6 ELSE $3 + $4 END
    FROM (
        SELECT kept, coalesce(l.locked_until > $3, false) AS held,
               cardinality(kept) >= $5 AS locks
        FROM (
            SELECT array(SELECT f FROM unnest(l.failures) AS f WHERE $3 - f < $4 ORDER BY f)
                   || $3::bigint AS kept
        ) recent
    ) decided
)
RETURNING locked_now";

/// A success forgets the failures, but never a lockout still running: one made by
/// another instance since this request was let in stays.
const CLEAR_FAILURES: &str = "DELETE FROM lockouts \
     WHERE scope = $1 AND client = $2 AND (locked_until IS NULL OR locked_until <= $3)";

/// The shared limiter state, on a small pool of its own so that limit checks neither
/// wait behind mail queries nor hold them up.
pub struct SharedLimits {
    pool: PgPool,
}

/// How long a limit check waits for a connection: a check is on every request's path,
/// and the caller falls back to this instance's memory rather than wait.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(1);

/// The shared state in the database named by `url` (already migrated); `None` on SQLite.
pub async fn open_shared_limits(url: &str) -> Result<Option<SharedLimits>, StoreError> {
    if Engine::of(url)? != Engine::Postgres {
        return Ok(None);
    }
    // Losing a count in a crash costs nothing worth an fsync wait per request.
    let options = PgConnectOptions::from_str(url)?
        .options([("synchronous_commit", "off")])
        .application_name("mailroom-limits");
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await?;
    Ok(Some(SharedLimits { pool }))
}

fn micros(duration: Duration) -> i64 {
    // Periods are validated at startup (a year at most); saturate rather than wrap.
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX / 4)
}

impl SharedLimits {
    /// Counts one request by `client` against `policy`'s windows, unless one is full.
    pub async fn count_request(
        &self,
        policy: &str,
        client: &str,
        rules: &[WindowRule],
        now: DateTime<Utc>,
    ) -> Result<Counted, StoreError> {
        let lengths: Vec<i64> = rules.iter().map(|r| micros(r.length)).collect();
        let limits: Vec<i32> = rules
            .iter()
            .map(|r| i32::try_from(r.limit).unwrap_or(i32::MAX))
            .collect();
        let (starts, counts, counted): (Vec<i64>, Vec<i32>, bool) = sqlx::query_as(COUNT_REQUEST)
            .bind(policy)
            .bind(client)
            .bind(to_micros(now))
            .bind(&lengths)
            .bind(&limits)
            .fetch_one(&self.pool)
            .await?;
        let windows = starts
            .into_iter()
            .zip(counts)
            .map(|(start, count)| WindowCount {
                start: from_micros(start),
                count: u32::try_from(count).unwrap_or_default(),
            })
            .collect();
        Ok(Counted { counted, windows })
    }

    /// What is recorded about `client` in `scope`.
    pub async fn standing(&self, scope: &str, client: &str) -> Result<Standing, StoreError> {
        let row: Option<Option<i64>> = sqlx::query_scalar(
            "SELECT locked_until FROM lockouts WHERE scope = $1 AND client = $2",
        )
        .bind(scope)
        .bind(client)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            None => Standing::Clean,
            Some(until) => Standing::Recorded {
                locked_until: until.map(from_micros),
            },
        })
    }

    /// Records a failed authentication; `true` when it locks the client out.
    pub async fn record_failure(
        &self,
        scope: &str,
        client: &str,
        rule: FailureRule,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let locked_now: bool = sqlx::query_scalar(RECORD_FAILURE)
            .bind(scope)
            .bind(client)
            .bind(to_micros(now))
            .bind(micros(rule.window))
            .bind(i32::try_from(rule.max_failures).unwrap_or(i32::MAX))
            .bind(micros(rule.lockout))
            .fetch_one(&self.pool)
            .await?;
        Ok(locked_now)
    }

    /// A successful authentication forgets the client's failures.
    pub async fn clear_failures(
        &self,
        scope: &str,
        client: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(CLEAR_FAILURES)
            .bind(scope)
            .bind(client)
            .bind(to_micros(now))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes the rows with nothing left to remember at `now`, then, of each policy or
    /// scope, the clients beyond the `max_clients` whose rows last the longest (the least
    /// recently seen go first, as from memory); answers how many rows went.
    pub async fn sweep(&self, now: DateTime<Utc>, max_clients: usize) -> Result<u64, StoreError> {
        let mut dropped = 0;
        for (table, group) in [("rate_limit_windows", "policy"), ("lockouts", "scope")] {
            let expired = format!("DELETE FROM {table} WHERE expires_at <= $1");
            let excess = format!(
                "DELETE FROM {table} t USING ( \
                     SELECT {group}, client FROM ( \
                         SELECT {group}, client, row_number() OVER ( \
                             PARTITION BY {group} ORDER BY expires_at DESC) AS newest \
                         FROM {table}) ranked \
                     WHERE newest > $1) beyond \
                 WHERE t.{group} = beyond.{group} AND t.client = beyond.client"
            );
            let done = sqlx::query(sqlx::AssertSqlSafe(expired))
                .bind(to_micros(now))
                .execute(&self.pool)
                .await?;
            dropped += done.rows_affected();
            let done = sqlx::query(sqlx::AssertSqlSafe(excess))
                .bind(i64::try_from(max_clients).unwrap_or(i64::MAX))
                .execute(&self.pool)
                .await?;
            dropped += done.rows_affected();
        }
        Ok(dropped)
    }

    /// Rows held: rate-limit (policy, client) pairs and lockout (scope, client) pairs.
    pub async fn rows(&self) -> Result<(u64, u64), StoreError> {
        let (windows, lockouts): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM rate_limit_windows), (SELECT count(*) FROM lockouts)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((
            u64::try_from(windows).unwrap_or_default(),
            u64::try_from(lockouts).unwrap_or_default(),
        ))
    }

    pub fn pool_usage(&self) -> PoolUsage {
        PoolUsage::of("limits", &self.pool)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}
