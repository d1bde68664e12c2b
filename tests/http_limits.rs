//! Connection-level limits (security review): header and idle timeouts, the request
//! timeout, the connection cap, and memory that stays bounded for hostile bodies, as a
//! separate server process shows it. Deadlines are generous: these tests catch hangs.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::process::{mailroom, serve, status_kib, terminate};
use common::{Engine, TestApp};
use serde_json::Value;

fn connect(app: &TestApp) -> TcpStream {
    let stream = TcpStream::connect(app.address.trim_start_matches("http://")).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
}

/// Blocks until the server closes `stream`; returns how long that took and what it sent.
fn wait_for_close(mut stream: TcpStream) -> (Duration, String) {
    let started = Instant::now();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    (
        started.elapsed(),
        String::from_utf8_lossy(&answer).into_owned(),
    )
}

async fn spawn(vars: &[(&str, &str)]) -> TestApp {
    let mut all = common::UNLIMITED.to_vec();
    all.extend_from_slice(vars);
    TestApp::spawn_with(Engine::Sqlite, &all).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_trickles_its_headers_is_closed() {
    let app = spawn(&[("HTTP_HEADER_TIMEOUT_SECS", "1")]).await;
    let closed = tokio::task::spawn_blocking({
        let mut stream = connect(&app);
        move || {
            stream.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();
            for _ in 0..5 {
                std::thread::sleep(Duration::from_millis(300));
                if stream.write_all(b"X-Slow: 1\r\n").is_err() {
                    break;
                }
            }
            wait_for_close(stream)
        }
    });
    let (waited, _) = closed.await.unwrap();
    assert!(waited < Duration::from_secs(10), "closed after {waited:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_kept_alive_connection_is_closed() {
    let app = spawn(&[("HTTP_HEADER_TIMEOUT_SECS", "1")]).await;
    let closed = tokio::task::spawn_blocking({
        let mut stream = connect(&app);
        move || {
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            wait_for_close(stream)
        }
    });
    let (waited, answer) = closed.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(waited < Duration::from_secs(10), "closed after {waited:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_body_that_never_arrives_gets_408_outside_the_webhook() {
    let app = spawn(&[("HTTP_REQUEST_TIMEOUT_SECS", "1")]).await;
    let answered = tokio::task::spawn_blocking({
        let mut stream = connect(&app);
        move || {
            stream
                .write_all(
                    b"POST /api/email/send HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer test-api-key-0123456789abcdef\r\n\
                      Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
                )
                .unwrap();
            wait_for_close(stream)
        }
    });
    let (waited, answer) = answered.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        waited < Duration::from_secs(10),
        "answered after {waited:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_wait_for_a_free_one() {
    let app = spawn(&[("MAX_CONNECTIONS", "2")]).await;
    let held: Vec<TcpStream> = (0..2).map(|_| connect(&app)).collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(700))
        .build()
        .unwrap();
    assert!(
        client.get(app.url("/healthz")).send().await.is_err(),
        "a third connection is not served while two are open"
    );
    drop(held);
    let response = tokio::time::timeout(Duration::from_secs(10), reqwest::get(app.url("/healthz")))
        .await
        .expect("served once a connection is free")
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// `count` empty parts: the shape that once cost 50 bytes of memory per byte of body.
fn empty_parts(count: usize) -> String {
    let mut body = String::from(r#"{"attachments":["#);
    body.push_str(&vec![r#"{"content":""}"#; count].join(","));
    body.push_str("]}");
    body
}

fn many_keys(count: usize) -> String {
    let fields: Vec<String> = (0..count).map(|i| format!(r#""k{i}":0"#)).collect();
    format!("{{{}}}", fields.join(","))
}

#[test]
fn hostile_bodies_and_huge_emails_keep_the_servers_memory_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = mailroom(dir.path());
    command
        .env("API_KEY", common::API_KEY)
        .env("RATE_LIMIT_WEBHOOK", "off")
        .env("RATE_LIMIT_LIST", "off")
        .env("RATE_LIMIT_GET", "off")
        .env("RATE_LIMIT_GLOBAL", "off");
    let (mut child, port) = serve(command);
    let base = format!("http://127.0.0.1:{port}");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let post = |body: String| {
            client
                .post(format!("{base}/webhook"))
                .header("content-type", "application/json")
                .body(body)
                .send()
        };
        // Four of each at once: 1M parts (15 MB each) and 1M keys (about 10 MB each).
        let hostile =
            (0..4).flat_map(|_| [post(empty_parts(1_000_000)), post(many_keys(1_000_000))]);
        for response in futures::future::join_all(hostile).await {
            assert_eq!(response.unwrap().status(), 413);
        }

        // A genuine but huge email: 8 MB of text and of HTML.
        let huge = serde_json::json!({
            "subject": "huge", "text": "t".repeat(8_000_000), "html": "h".repeat(8_000_000)
        });
        let stored = post(huge.to_string()).await.unwrap();
        assert_eq!(stored.status(), 200);
        let id = stored.json::<Value>().await.unwrap()["email_id"].clone();
        let page = client
            .get(format!("{base}/emails?limit=10"))
            .bearer_auth(common::API_KEY)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert!(
            page.len() < 1_000_000,
            "a list page is {} bytes",
            page.len()
        );
        let page: Value = serde_json::from_slice(&page).unwrap();
        assert_eq!(page["emails"][0]["truncated"], true);
        let whole: Value = client
            .get(format!("{base}/emails/{}", id.as_str().unwrap()))
            .bearer_auth(common::API_KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(whole["email"]["text"].as_str().unwrap().len(), 8_000_000);
    });
    let peak_mib = status_kib(&child, "VmHWM") / 1024;
    terminate(&mut child);
    // The bodies in flight peak near 100 MB; before the caps this reached gigabytes.
    assert!(peak_mib < 400, "peak RSS {peak_mib} MiB");
}
