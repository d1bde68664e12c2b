//! The security log: failures, lockouts, refused webhooks and limit hits are logged at WARN
//! with the client IP and the route template, and neither keys nor the webhook secret
//! ever reach a log line.

use crate::common;
use crate::security_support;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use common::{API_KEY, Engine, TestApp};
use security_support::{client_from, get};

const WRONG: &str = "wrong-key-sentinel-0123456789";
const SECRET: &str = "webhook-secret-sentinel-42";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The log of this test process: one subscriber for all its tests, which tell their lines
/// apart by client IP.
fn captured() -> &'static Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        tracing_subscriber::fmt()
            .with_env_filter("debug")
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .init();
        captured
    })
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_events_are_logged_with_ip_and_route_but_never_secrets() {
    let captured = captured();
    let app = TestApp::spawn_with(
        Engine::Sqlite,
        &[
            ("LOCKOUT_MAX_FAILURES", "2"),
            ("RATE_LIMIT_GLOBAL", "1/minute"),
            ("WEBHOOK_SECRET", SECRET),
        ],
    )
    .await;
    let client = client_from("127.0.0.2");
    for _ in 0..3 {
        get(&client, &app.url("/emails"), Some(WRONG)).await;
    }
    get(&client, &app.url("/nowhere"), None).await;
    get(&client, &app.url("/nowhere"), None).await;
    let delivered = client
        .post(app.url(&format!("/webhook/{SECRET}")))
        .header("content-type", "application/json")
        .body(common::small_email("hi", "a@example.org"))
        .send()
        .await
        .unwrap();
    assert_eq!(delivered.status(), 200);
    client
        .post(app.url("/webhook"))
        .body("{}")
        .send()
        .await
        .unwrap();
    get(&client_from("127.0.0.3"), &app.url("/"), Some(API_KEY)).await;

    let log = captured.text();
    let warn_with = |needle: &str| {
        log.lines().any(|line| {
            line.contains("WARN") && line.contains(needle) && line.contains("127.0.0.2")
        })
    };
    assert!(warn_with("invalid API key"), "{log}");
    assert!(warn_with("locked out"), "{log}");
    assert!(warn_with("rate limit exceeded"), "{log}");
    assert!(warn_with("WEBHOOK_SECRET"), "{log}");
    assert!(log.contains("route=\"/emails\""), "{log}");
    assert!(log.contains("/webhook/{secret}"), "{log}");
    for secret in [WRONG, API_KEY, SECRET] {
        assert!(
            !log.contains(secret),
            "{secret} leaked into the log:\n{log}"
        );
    }
}

/// The send API has limits of its own, counted in accepted emails, so it is exempt from the
/// per-IP HTTP limits; a caller without a valid key must not get around every limit, nor
/// write a WARN line per request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyless_sends_hit_a_limit_and_are_logged_once_a_minute() {
    let captured = captured();
    let app = TestApp::spawn_with(Engine::Sqlite, &[]).await;
    let send = |client: &reqwest::Client, key: Option<&str>| {
        let mut request = client
            .post(app.url("/api/email/send"))
            .header("content-type", "application/json")
            .body("{}");
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        request.send()
    };
    let keyless = client_from("127.0.0.5");
    let mut statuses = Vec::new();
    for _ in 0..300 {
        let response = send(&keyless, None).await.unwrap();
        let status = response.status().as_u16();
        if status == 429 {
            assert!(response.headers().contains_key("retry-after"));
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(body["error"], "Rate limit exceeded: 50 per 1 hour");
        }
        statuses.push(status);
    }
    // The global limit (50/hour by default) counts the refusals; then 429 until it resets.
    assert!(statuses[..50].iter().all(|s| *s == 401), "{statuses:?}");
    assert!(statuses[50..].iter().all(|s| *s == 429), "{statuses:?}");
    // A valid key is never held back by it: this one reaches validation.
    let with_key = send(&keyless, Some(API_KEY)).await.unwrap();
    assert_eq!(with_key.status(), 400);
    // Wrong keys: the lockout, then the same quiet log.
    let guesser = client_from("127.0.0.6");
    for n in 0..300 {
        let status = send(&guesser, Some(WRONG)).await.unwrap().status();
        assert_eq!(status, if n < 5 { 403 } else { 429 }, "{n}");
    }

    let log = captured.text();
    for ip in ["127.0.0.5", "127.0.0.6"] {
        let warnings: Vec<&str> = log
            .lines()
            .filter(|line| line.contains("WARN") && line.contains(ip))
            .collect();
        assert!(
            !warnings.is_empty() && warnings.len() <= 4,
            "{} WARN lines for {ip}:\n{}",
            warnings.len(),
            warnings.join("\n")
        );
    }
}
