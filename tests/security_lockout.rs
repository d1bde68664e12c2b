//! Brute-force lockout over real HTTP, with a short lockout configured.

use crate::common;
use crate::security_support;

use std::time::Duration;

use common::{API_KEY, Engine, TestApp};
use futures::future::join_all;
use security_support::{client_from, get};

const WRONG: &str = "wrong-key-0123456789abcdef";

async fn spawn(engine: Engine, lockout_secs: &str) -> TestApp {
    TestApp::spawn_with(
        engine,
        &[
            ("LOCKOUT_MAX_FAILURES", "3"),
            ("LOCKOUT_WINDOW_SECS", "60"),
            ("LOCKOUT_SECS", lockout_secs),
            ("RATE_LIMIT_LIST", "off"),
        ],
    )
    .await
}

async fn assert_locked_out(response: reqwest::Response, at_most: u64) {
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=at_most).contains(&retry_after),
        "Retry-After {retry_after}"
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "success": false,
            "error": "Too many failed attempts. Please try again later."
        })
    );
}

async fn failures_lock_the_client_out_even_with_a_valid_key_until_the_lockout_ends(engine: Engine) {
    let app = spawn(engine, "2").await;
    let attacker = client_from("127.0.0.2");
    for _ in 0..3 {
        let response = get(&attacker, &app.url("/emails"), Some(WRONG)).await;
        assert_eq!(response.status(), 403);
    }
    assert_locked_out(get(&attacker, &app.url("/emails"), Some(API_KEY)).await, 2).await;
    assert_locked_out(get(&attacker, &app.url("/"), Some(WRONG)).await, 2).await;
    assert_locked_out(get(&attacker, &app.url("/"), None).await, 2).await;
    // Everyone else is unaffected.
    let bystander = client_from("127.0.0.3");
    assert_eq!(
        get(&bystander, &app.url("/"), Some(API_KEY)).await.status(),
        200
    );
    // Routes without authentication stay open.
    let webhook = attacker
        .post(app.url("/webhook"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(webhook.status(), 200);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        get(&attacker, &app.url("/"), Some(API_KEY)).await.status(),
        200
    );
}

async fn a_success_clears_the_count(engine: Engine) {
    let app = spawn(engine, "60").await;
    let client = client_from("127.0.0.2");
    for _ in 0..2 {
        assert_eq!(get(&client, &app.url("/"), Some(WRONG)).await.status(), 403);
    }
    assert_eq!(
        get(&client, &app.url("/"), Some(API_KEY)).await.status(),
        200
    );
    for _ in 0..2 {
        assert_eq!(get(&client, &app.url("/"), Some(WRONG)).await.status(), 403);
    }
    assert_eq!(
        get(&client, &app.url("/"), Some(API_KEY)).await.status(),
        200
    );
}

async fn missing_keys_do_not_count_as_failures(engine: Engine) {
    let app = spawn(engine, "60").await;
    let client = client_from("127.0.0.2");
    for _ in 0..10 {
        assert_eq!(get(&client, &app.url("/"), None).await.status(), 401);
    }
    assert_eq!(
        get(&client, &app.url("/"), Some(API_KEY)).await.status(),
        200
    );
}

async fn concurrent_guesses_still_end_in_a_lockout(engine: Engine) {
    let app = spawn(engine, "60").await;
    let client = client_from("127.0.0.2");
    let url = app.url("/emails");
    let statuses = join_all((0..30).map(|_| {
        let (client, url) = (client.clone(), url.clone());
        tokio::spawn(async move { get(&client, &url, Some(WRONG)).await.status().as_u16() })
    }))
    .await;
    let statuses: Vec<u16> = statuses.into_iter().map(Result::unwrap).collect();
    assert!(
        statuses.iter().all(|s| *s == 403 || *s == 429),
        "{statuses:?}"
    );
    assert!(statuses.iter().filter(|s| **s == 403).count() >= 3);
    assert_locked_out(get(&client, &url, Some(API_KEY)).await, 60).await;
}

/// A lockout longer than a year would overflow the clock (and once made the lockout panic
/// and fail open): the binary refuses it at startup, with exit status 2.
#[test]
fn absurd_lockout_durations_are_refused_at_startup() {
    for (name, value) in [
        ("LOCKOUT_SECS", "18446744073709551615"),
        ("LOCKOUT_WINDOW_SECS", "31536001"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_mailroom"))
            .current_dir(dir.path())
            .env_clear()
            .env(name, value)
            .arg("migrate")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name}={value}: {stderr}");
        assert!(stderr.contains(name), "{stderr}");
        assert!(stderr.contains("one year"), "{stderr}");
    }
}

engine_tests!(
    failures_lock_the_client_out_even_with_a_valid_key_until_the_lockout_ends,
    a_success_clears_the_count,
    missing_keys_do_not_count_as_failures,
    concurrent_guesses_still_end_in_a_lockout,
);
