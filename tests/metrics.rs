//! `GET /metrics` on its own listener: a scrape before and after real traffic shows each
//! counter moved by exactly what the traffic did, and the gauges read the live state.
//!
//! The recorder is process-wide, so counters are compared as differences, and the tests
//! of this file take turns (`SERIAL`) so that one engine's traffic never shows in the
//! other's differences.

mod common;
mod send_support;

use std::collections::BTreeMap;

use common::{API_KEY, Engine, TestApp, small_email};
use send_support::{SmtpServer, email, relay_env, send_ok, wait_for_status};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One scrape: every sample by its name and sorted labels.
struct Scrape(BTreeMap<String, f64>);

impl Scrape {
    async fn of(app: &TestApp) -> Self {
        let address = app.metrics_address.as_ref().expect("METRICS_PORT is set");
        let response = app
            .client
            .get(format!("{address}/metrics"))
            .send()
            .await
            .expect("scrape sent");
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        );
        let text = response.text().await.unwrap();
        let samples = text
            .lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
            .map(|line| {
                let (series, value) = line.rsplit_once(' ').expect("`series value`");
                (canonical(series), value.parse().expect("a number"))
            })
            .collect();
        Self(samples)
    }

    /// The sample's value; a series not yet recorded is 0.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let mut labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        labels.sort();
        let key = format!("{name}{{{}}}", labels.join(","));
        self.0.get(&key).copied().unwrap_or(0.0)
    }

    fn has(&self, name: &str) -> bool {
        self.0.keys().any(|key| key.split('{').next() == Some(name))
    }
}

/// `name{b="2",a="1"}` as `name{a="1",b="2"}`; `name` as `name{}`. (Label values here
/// never hold commas or braces.)
fn canonical(series: &str) -> String {
    let (name, labels) = series.split_once('{').unwrap_or((series, "}"));
    let mut labels: Vec<&str> = labels
        .trim_end_matches('}')
        .split(',')
        .filter(|l| !l.is_empty())
        .collect();
    labels.sort();
    format!("{name}{{{}}}", labels.join(","))
}

/// Prints what moved, so a failure shows the whole picture.
fn moved(before: &Scrape, after: &Scrape) -> String {
    after
        .0
        .iter()
        .filter(|(key, value)| before.0.get(*key) != Some(value))
        .map(|(key, value)| format!("{key} {} -> {value}\n", before.0.get(key).unwrap_or(&0.0)))
        .collect()
}

async fn spawn(engine: Engine, smtp: &SmtpServer) -> TestApp {
    let relay = relay_env(smtp.port);
    let mut vars: Vec<(&str, &str)> = common::UNLIMITED
        .iter()
        .copied()
        .filter(|(name, _)| *name != "RATE_LIMIT_HEALTH")
        .collect();
    vars.extend(relay.iter().map(|(name, value)| (*name, value.as_str())));
    vars.extend([
        ("METRICS_PORT", "0"),
        ("RATE_LIMIT_HEALTH", "1/minute"),
        ("LOCKOUT_MAX_FAILURES", "2"),
    ]);
    TestApp::spawn_with(engine, &vars).await
}

async fn get_with_key(app: &TestApp, path: &str, key: &str) -> u16 {
    let response = app
        .client
        .get(app.url(path))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    response.status().as_u16()
}

async fn traffic_moves_every_counter_by_what_happened(engine: Engine) {
    let _turn = SERIAL.lock().await;
    let smtp = SmtpServer::start();
    let app = spawn(engine, &smtp).await;
    let before = Scrape::of(&app).await;

    // Inbound: one new email, its redelivery, one body that is no JSON object.
    let payload = small_email("metrics", "ana@example.org");
    app.deliver(payload.clone()).await;
    app.deliver(payload).await;
    assert_eq!(app.post_webhook("[1, 2]").await.status(), 400);
    // A rate limit: `GET /` allows one a minute.
    assert_eq!(app.get("/").await.status(), 200);
    assert_eq!(app.get("/").await.status(), 429);
    // Outbound: one delivered, one refused for good by the relay (550).
    let sent = send_ok(&app, &email("delivered")).await;
    let mut bounce = email("bounced");
    bounce["to"] = "bounce@example.org".into();
    let failed = send_ok(&app, &bounce).await;
    wait_for_status(&app, &sent, |e| e["status"] == "sent").await;
    wait_for_status(&app, &failed, |e| e["status"] == "failed").await;
    // The lockout, last (it locks this test's client out): two wrong keys, then a refusal.
    let wrong = "wrong-key-0123456789";
    assert_eq!(get_with_key(&app, "/emails", wrong).await, 403);
    assert_eq!(get_with_key(&app, "/emails", wrong).await, 403);
    assert_eq!(get_with_key(&app, "/emails", API_KEY).await, 429);

    let after = Scrape::of(&app).await;
    let changes = moved(&before, &after);
    let delta =
        |name: &str, labels: &[(&str, &str)]| after.get(name, labels) - before.get(name, labels);
    let received = "mailroom_emails_received_total";
    for (outcome, count) in [
        ("new", 1.0),
        ("duplicate", 1.0),
        ("rejected", 1.0),
        ("failed", 0.0),
    ] {
        let labels = [("provider", "improvmx"), ("outcome", outcome)];
        assert_eq!(delta(received, &labels), count, "{outcome}:\n{changes}");
    }
    // Every body was read; the rejected one went no further than parsing.
    for (stage, count) in [
        ("read", 3.0),
        ("parse", 2.0),
        ("store", 2.0),
        ("total", 2.0),
    ] {
        let labels = [("provider", "improvmx"), ("stage", stage)];
        let name = "mailroom_ingest_duration_seconds_count";
        assert_eq!(delta(name, &labels), count, "{stage}:\n{changes}");
    }
    let engine_label = [("engine", engine.name())];
    let batches = "mailroom_commit_batch_emails";
    assert_eq!(
        delta(&format!("{batches}_count"), &engine_label),
        2.0,
        "{changes}"
    );
    assert_eq!(
        delta(&format!("{batches}_sum"), &engine_label),
        2.0,
        "{changes}"
    );
    let attempts = "mailroom_smtp_attempts_total";
    assert_eq!(
        delta(attempts, &[("result", "delivered")]),
        1.0,
        "{changes}"
    );
    assert_eq!(
        delta(attempts, &[("result", "permanent_failure")]),
        1.0,
        "{changes}"
    );
    let hits = [("route", "/"), ("limit", "health")];
    assert_eq!(
        delta("mailroom_rate_limit_hits_total", &hits),
        1.0,
        "{changes}"
    );
    let lockouts = "mailroom_lockout_hits_total";
    let locked = [("route", "/emails"), ("event", "locked_out")];
    assert_eq!(delta(lockouts, &locked), 1.0, "{changes}");
    assert_eq!(
        delta(lockouts, &[("route", "/emails"), ("event", "refused")]),
        1.0,
        "{changes}"
    );
    let http = "mailroom_http_requests_total";
    let webhook = |status| {
        [
            ("method", "POST"),
            ("route", "/webhook"),
            ("status", status),
        ]
    };
    assert_eq!(delta(http, &webhook("200")), 2.0, "{changes}");
    assert_eq!(delta(http, &webhook("400")), 1.0, "{changes}");
    let health = [("method", "GET"), ("route", "/"), ("status", "429")];
    assert_eq!(delta(http, &health), 1.0, "{changes}");

    // Gauges read this instance's state at the scrape.
    let outbox = "mailroom_outbox_emails";
    assert_eq!(after.get(outbox, &[("status", "sent")]), 1.0, "{changes}");
    assert_eq!(after.get(outbox, &[("status", "failed")]), 1.0, "{changes}");
    assert_eq!(after.get(outbox, &[("status", "queued")]), 0.0, "{changes}");
    assert!(after.has(outbox));
    assert_eq!(
        after.get("mailroom_outbox_oldest_queued_age_seconds", &[]),
        0.0
    );
    assert!(after.get("mailroom_rate_limit_clients", &[]) >= 1.0);
    assert!(after.get("mailroom_lockout_clients", &[]) >= 1.0);
    for pool in ["mail", "outbox"] {
        let max = after.get("mailroom_db_pool_max_connections", &[("pool", pool)]);
        assert!(max >= 1.0, "{pool}: {max}");
    }
    drop(app);
}

async fn open_event_streams_are_gauged(engine: Engine) {
    let _turn = SERIAL.lock().await;
    let smtp = SmtpServer::start();
    let app = spawn(engine, &smtp).await;
    assert_eq!(
        Scrape::of(&app).await.get("mailroom_event_streams", &[]),
        0.0
    );
    let stream = app
        .client
        .get(app.url("/events"))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert_eq!(
        Scrape::of(&app).await.get("mailroom_event_streams", &[]),
        1.0
    );
}

async fn metrics_are_not_served_on_the_api_port(engine: Engine) {
    let _turn = SERIAL.lock().await;
    let smtp = SmtpServer::start();
    let app = spawn(engine, &smtp).await;
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 404);
    let off = TestApp::spawn(engine).await;
    assert!(off.metrics_address.is_none(), "METRICS_PORT unset is off");
}

/// Every `mailroom_…` name the example Grafana dashboard queries is one mailroom exports,
/// and every exported metric has a panel.
#[test]
fn the_grafana_dashboard_queries_the_exported_names() {
    use mailroom::telemetry::metrics as m;
    let exported = [
        m::EMAILS_RECEIVED,
        m::INGEST_DURATION,
        m::COMMIT_BATCH,
        m::OUTBOX_EMAILS,
        m::OUTBOX_OLDEST_QUEUED,
        m::SMTP_ATTEMPTS,
        m::RATE_LIMIT_HITS,
        m::LOCKOUT_HITS,
        m::RATE_LIMIT_CLIENTS,
        m::LOCKOUT_CLIENTS,
        m::HTTP_REQUESTS,
        m::DB_POOL_CONNECTIONS,
        m::DB_POOL_MAX,
        m::EVENT_STREAMS,
    ];
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/grafana-dashboard.json");
    let text = std::fs::read_to_string(path).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    assert!(
        dashboard["panels"]
            .as_array()
            .is_some_and(|p| !p.is_empty())
    );
    let names = regex::Regex::new(r"mailroom_[a-z_]+").unwrap();
    let queried: std::collections::BTreeSet<&str> = names
        .find_iter(&text)
        .map(|name| {
            let name = name.as_str();
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .filter(|base| exported.contains(base))
                .unwrap_or(name)
        })
        .collect();
    let exported = exported.into_iter().collect();
    assert_eq!(queried, exported);
}

engine_tests!(
    traffic_moves_every_counter_by_what_happened,
    open_event_streams_are_gauged,
    metrics_are_not_served_on_the_api_port,
);
