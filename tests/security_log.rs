//! The security log: failures, lockouts, refused webhooks and limit hits are logged at WARN
//! with the client IP and the route template, and neither keys nor the webhook secret
//! ever reach a log line.

mod common;
mod security_support;

use std::io::Write;
use std::sync::{Arc, Mutex};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_events_are_logged_with_ip_and_route_but_never_secrets() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_env_filter("debug")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
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

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
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
