//! Prometheus metrics: every name, label and bucket in one place, recorded through
//! one-line functions (`metrics::email_received(…)`), rendered by `GET /metrics`.
//!
//! The recorder is process-wide and installed once (`install`), only when a metrics
//! listener is configured; until then every function here is a no-op costing a load.
//! Label values are bounded sets: route templates (never raw paths), status codes,
//! names chosen in code.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const EMAILS_RECEIVED: &str = "mailroom_emails_received_total";
pub const INGEST_DURATION: &str = "mailroom_ingest_duration_seconds";
pub const COMMIT_BATCH: &str = "mailroom_commit_batch_emails";
pub const OUTBOX_EMAILS: &str = "mailroom_outbox_emails";
pub const OUTBOX_OLDEST_QUEUED: &str = "mailroom_outbox_oldest_queued_age_seconds";
pub const SMTP_ATTEMPTS: &str = "mailroom_smtp_attempts_total";
pub const RATE_LIMIT_HITS: &str = "mailroom_rate_limit_hits_total";
pub const LOCKOUT_HITS: &str = "mailroom_lockout_hits_total";
pub const RATE_LIMIT_CLIENTS: &str = "mailroom_rate_limit_clients";
pub const LOCKOUT_CLIENTS: &str = "mailroom_lockout_clients";
pub const HTTP_REQUESTS: &str = "mailroom_http_requests_total";
pub const DB_POOL_CONNECTIONS: &str = "mailroom_db_pool_connections";
pub const DB_POOL_MAX: &str = "mailroom_db_pool_max_connections";
pub const EVENT_STREAMS: &str = "mailroom_event_streams";

/// Seconds: from a small email committed in a millisecond to a huge one over a slow link.
const LATENCY_BUCKETS: &[f64] = &[
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Emails per commit: 1 on PostgreSQL; up to 256 on SQLite's group commit.
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder, once; later calls (several servers in one test
/// process) share it.
pub fn install() {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(INGEST_DURATION.into()), LATENCY_BUCKETS)
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full(COMMIT_BATCH.into()), BATCH_BUCKETS)
            })
            .expect("bucket lists are not empty")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed: /metrics stays empty");
        }
        describe();
        handle
    });
}

/// The exposition text of everything recorded so far (empty before `install`).
pub fn render() -> String {
    HANDLE
        .get()
        .map(PrometheusHandle::render)
        .unwrap_or_default()
}

/// Folds recorded histogram samples into their buckets, so memory stays flat between
/// scrapes; run every few seconds while metrics are served.
pub fn upkeep() {
    if let Some(handle) = HANDLE.get() {
        handle.run_upkeep();
    }
}

/// Whether the recorder is installed: before that, recording would only build keys
/// (allocating label values) for nothing.
fn recording() -> bool {
    HANDLE.get().is_some()
}

/// What became of one inbound delivery that reached the webhook's handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// Stored now.
    New,
    /// A redelivery of an email already stored.
    Duplicate,
    /// Refused for its body (400, 408, 413): the sender must not retry as is.
    Rejected,
    /// Not stored for a server-side reason (5xx): the provider retries.
    Failed,
}

impl Received {
    fn label(self) -> &'static str {
        match self {
            Received::New => "new",
            Received::Duplicate => "duplicate",
            Received::Rejected => "rejected",
            Received::Failed => "failed",
        }
    }
}

pub fn email_received(provider: &'static str, outcome: Received) {
    if !recording() {
        return;
    }
    counter!(EMAILS_RECEIVED, "provider" => provider, "outcome" => outcome.label()).increment(1);
}

/// Time spent by one delivery in `stage`: `read` (the body), `parse`, `store` (until its
/// commit returned) or `total`.
pub fn ingest_stage(provider: &'static str, stage: &'static str, elapsed: Duration) {
    if !recording() {
        return;
    }
    histogram!(INGEST_DURATION, "provider" => provider, "stage" => stage)
        .record(elapsed.as_secs_f64());
}

/// One durable commit holding `emails` inbound emails.
pub fn commit_batch(engine: &'static str, emails: usize) {
    if !recording() {
        return;
    }
    histogram!(COMMIT_BATCH, "engine" => engine).record(emails as f64);
}

pub fn outbox_emails(status: &'static str, count: u64) {
    if !recording() {
        return;
    }
    gauge!(OUTBOX_EMAILS, "status" => status).set(count as f64);
}

/// How long the oldest email not yet delivered has waited; zero when none waits.
pub fn outbox_oldest_queued(age: Duration) {
    if !recording() {
        return;
    }
    gauge!(OUTBOX_OLDEST_QUEUED).set(age.as_secs_f64());
}

/// One delivery attempt to the relay: `delivered`, `temporary_failure` or
/// `permanent_failure`.
pub fn smtp_attempt(result: &'static str) {
    if !recording() {
        return;
    }
    counter!(SMTP_ATTEMPTS, "result" => result).increment(1);
}

/// A request refused with 429 on `route` (a template) by `limit` (a policy's name).
pub fn rate_limit_hit(route: &str, limit: &'static str) {
    if !recording() {
        return;
    }
    counter!(RATE_LIMIT_HITS, "route" => route.to_owned(), "limit" => limit).increment(1);
}

/// `event`: `locked_out` when a failure starts a lockout, `refused` for a request from a
/// client locked out.
pub fn lockout_hit(route: &str, event: &'static str) {
    if !recording() {
        return;
    }
    counter!(LOCKOUT_HITS, "route" => route.to_owned(), "event" => event).increment(1);
}

/// Client IPs remembered by the rate limiter (all policies) and by the lockout.
pub fn security_tables(rate_limit_clients: usize, lockout_clients: usize) {
    if !recording() {
        return;
    }
    gauge!(RATE_LIMIT_CLIENTS).set(rate_limit_clients as f64);
    gauge!(LOCKOUT_CLIENTS).set(lockout_clients as f64);
}

pub fn http_request(method: &'static str, route: &str, status: u16) {
    if !recording() {
        return;
    }
    counter!(
        HTTP_REQUESTS,
        "method" => method,
        "route" => route.to_owned(),
        "status" => status.to_string()
    )
    .increment(1);
}

/// One connection pool's connections: open and idle, and its cap.
/// Event streams (`GET /events`) open now.
pub fn event_streams(open: usize) {
    gauge!(EVENT_STREAMS).set(open as f64);
}

pub fn db_pool(pool: &'static str, open: u32, idle: u32, max: u32) {
    if !recording() {
        return;
    }
    let in_use = open.saturating_sub(idle);
    gauge!(DB_POOL_CONNECTIONS, "pool" => pool, "state" => "in_use").set(f64::from(in_use));
    gauge!(DB_POOL_CONNECTIONS, "pool" => pool, "state" => "idle").set(f64::from(idle));
    gauge!(DB_POOL_MAX, "pool" => pool).set(f64::from(max));
}

fn describe() {
    describe_counter!(
        EMAILS_RECEIVED,
        "Inbound deliveries by provider and outcome (new, duplicate, rejected, failed)"
    );
    describe_histogram!(
        INGEST_DURATION,
        Unit::Seconds,
        "Time of one inbound delivery by stage: read, parse, store, total"
    );
    describe_histogram!(COMMIT_BATCH, "Inbound emails per durable commit");
    describe_gauge!(OUTBOX_EMAILS, "Outbox rows by status");
    describe_gauge!(
        OUTBOX_OLDEST_QUEUED,
        Unit::Seconds,
        "Age of the oldest outbound email not yet delivered (queued, sending or retrying)"
    );
    describe_counter!(
        SMTP_ATTEMPTS,
        "Delivery attempts to the SMTP relay by result"
    );
    describe_counter!(
        RATE_LIMIT_HITS,
        "Requests refused with 429 by route and limit"
    );
    describe_counter!(
        LOCKOUT_HITS,
        "Lockouts started and requests refused while locked out"
    );
    describe_gauge!(
        RATE_LIMIT_CLIENTS,
        "Client buckets held by the rate limiter"
    );
    describe_gauge!(
        LOCKOUT_CLIENTS,
        "Clients remembered by the brute-force lockout"
    );
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests by method, route template and status"
    );
    describe_gauge!(DB_POOL_CONNECTIONS, "Database pool connections by state");
    describe_gauge!(DB_POOL_MAX, "Database pool connection cap");
    describe_gauge!(EVENT_STREAMS, "Event streams (GET /events) open");
}
