//! The webhook under attack (security review): slow uploads, huge part and key counts,
//! and forged part metadata. Every deadline here is generous: these tests catch hangs
//! and unbounded waits, not speed, which `bench/` measures.

use crate::common;

use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{Engine, TestApp, small_email};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// Starts a `POST /webhook` that declares `length` bytes, then sends one byte every
/// `every` until the server answers; yields what the server answered.
async fn slow_upload(app: &TestApp, length: usize, every: Duration) -> JoinHandle<String> {
    let stream = TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let head = format!(
        "POST /webhook HTTP/1.1\r\nHost: mailroom\r\nContent-Type: application/json\r\n\
         Content-Length: {length}\r\n\r\n{{"
    );
    writer.write_all(head.as_bytes()).await.unwrap();
    tokio::spawn(async move {
        let mut answer = vec![0u8; 4096];
        loop {
            tokio::select! {
                read = reader.read(&mut answer) => {
                    let n = read.unwrap_or(0);
                    return String::from_utf8_lossy(&answer[..n]).into_owned();
                }
                () = tokio::time::sleep(every) => {
                    // A write error means the server closed: its answer is still readable.
                    let _ = writer.write_all(b" ").await;
                }
            }
        }
    })
}

async fn slow_uploads_never_delay_a_normal_delivery(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let mut slow = Vec::new();
    // Together they declare more than the 256 MiB in-flight budget.
    for _ in 0..6 {
        slow.push(slow_upload(&app, 73_400_000, Duration::from_secs(2)).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let started = Instant::now();
    let id = tokio::time::timeout(
        Duration::from_secs(10),
        app.deliver(small_email("between slow uploads", "a@example.org")),
    )
    .await
    .expect("a normal delivery is not queued behind slow ones");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "stored in {:?}",
        started.elapsed()
    );
    let (status, _) = app.get_json(&format!("/emails/{id}")).await;
    assert_eq!(status, 200);
    for upload in &slow {
        assert!(
            !upload.is_finished(),
            "slow uploads are still within their grace"
        );
    }
    slow.iter().for_each(JoinHandle::abort);
}

async fn a_body_slower_than_the_minimum_rate_gets_408(engine: Engine) {
    let mut vars = common::UNLIMITED.to_vec();
    vars.extend([
        ("WEBHOOK_BODY_GRACE_SECS", "1"),
        ("WEBHOOK_MIN_BYTES_PER_SEC", "1000"),
    ]);
    let app = TestApp::spawn_with(engine, &vars).await;
    let upload = slow_upload(&app, 100_000, Duration::from_millis(200)).await;
    let answer = tokio::time::timeout(Duration::from_secs(10), upload)
        .await
        .expect("the slow body is cut off")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("WEBHOOK_MIN_BYTES_PER_SEC") || answer.contains("bytes per second"));
    app.deliver(small_email("after a slow one", "a@example.org"))
        .await;
}

/// A payload with `count` attachments of distinct tiny contents.
fn many_parts(count: usize) -> String {
    let parts: Vec<Value> = (0..count)
        .map(|i| {
            let content = base64::engine::general_purpose::STANDARD.encode(i.to_be_bytes());
            json!({"name": format!("p{i}.bin"), "content": content})
        })
        .collect();
    json!({"subject": "many parts", "attachments": parts}).to_string()
}

async fn a_hundred_thousand_parts_are_refused_at_once(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let body = many_parts(100_000);
    let started = Instant::now();
    let response = app.post_webhook(body).await;
    assert_eq!(response.status(), 413);
    // Milliseconds in a release build; once 33 s. Generous for a loaded debug build.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let json: Value = response.json().await.unwrap();
    assert_eq!(json["success"], false);
    assert!(
        json["message"]
            .as_str()
            .unwrap()
            .contains("1000 attachments"),
        "{json}"
    );
}

async fn emails_at_the_part_cap_are_stored_together(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let deliveries = (0..12).map(|n| {
        let mut body: Value = serde_json::from_str(&many_parts(1_000)).unwrap();
        body["subject"] = format!("many parts {n}").into();
        // Every email's parts differ from every other's.
        for (i, part) in body["attachments"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .enumerate()
        {
            let bytes = format!("{n}-{i}");
            part["content"] = base64::engine::general_purpose::STANDARD
                .encode(bytes)
                .into();
        }
        app.post_webhook(body.to_string())
    });
    let responses = tokio::time::timeout(
        Duration::from_secs(60),
        futures::future::join_all(deliveries),
    )
    .await
    .expect("no quadratic work");
    for (n, response) in responses.into_iter().enumerate() {
        assert_eq!(response.status(), 200);
        let json: Value = response.json().await.unwrap();
        let id = json["email_id"].as_str().unwrap();
        let last = app.get(&format!("/emails/{id}/attachments/999")).await;
        assert_eq!(last.text().await.unwrap(), format!("{n}-999"));
    }
}

async fn too_many_json_keys_are_refused(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let fields: serde_json::Map<String, Value> = (0..200_000)
        .map(|i| (format!("k{i}"), Value::Null))
        .collect();
    let response = app.post_webhook(Value::Object(fields).to_string()).await;
    assert_eq!(response.status(), 413);
    let json: Value = response.json().await.unwrap();
    assert!(json["message"].as_str().unwrap().contains("keys"), "{json}");
}

/// The part of `email_id` named `name`, as downloaded.
async fn download(app: &TestApp, id: &str, path: &str) -> reqwest::Response {
    app.get(&format!("/emails/{id}/{path}")).await
}

fn encoded(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

async fn forged_part_hashes_never_reach_another_emails_bytes(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let secret = app
        .deliver(
            json!({"subject": "private", "attachments": [
                {"name": "secret.txt", "type": "text/plain", "content": encoded("top secret")}
            ]})
            .to_string(),
        )
        .await;
    let (_, stored) = app.get_json(&format!("/emails/{secret}")).await;
    let hash = stored["email"]["attachments"][0]["blake3"].clone();
    assert!(hash.is_string());

    let forged = app
        .deliver(
            json!({"subject": "innocent", "attachments": [
                {"name": "innocent.txt", "content": encoded("harmless"), "blake3": hash, "size": 10},
            ]})
            .to_string(),
        )
        .await;
    let part = download(&app, &forged, "attachment/innocent.txt").await;
    assert_eq!(part.text().await.unwrap(), "harmless");
    let (_, shown) = app.get_json(&format!("/emails/{forged}")).await;
    let shown = &shown["email"]["attachments"][0];
    assert_ne!(shown["blake3"], hash);
    assert_eq!(shown["size"], 8);
    assert_eq!(
        shown["payload_blake3"], hash,
        "the sender's value is kept aside"
    );
}

async fn a_sent_sha256_field_never_shifts_the_index_routes(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let id = app
        .deliver(
            json!({"subject": "shift", "attachments": [
                "not a part",
                {"name": "first.txt", "content": encoded("first"), "sha256": "abc"},
                {"name": "second.txt", "content": encoded("second")},
            ]})
            .to_string(),
        )
        .await;
    let (_, json) = app.get_json(&format!("/emails/{id}")).await;
    let parts = &json["email"]["attachments"];
    assert_eq!(parts[0], "not a part");
    for (index, text) in [(1, "first"), (2, "second")] {
        let url = parts[index]["url"].as_str().unwrap();
        assert_eq!(url, format!("/emails/{id}/attachments/{index}"));
        assert_eq!(app.get(url).await.text().await.unwrap(), text);
    }
    assert_eq!(download(&app, &id, "attachments/0").await.status(), 404);
}

async fn stored_types_are_served_canonically_and_names_lose_format_characters(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let id = app
        .deliver(
            json!({"subject": "spoof", "attachments": [
                {"name": "x.png", "type": "image/png;,text/html", "content": encoded("<script>")},
                {"name": "inv\u{202E}gnp.exe", "type": "application/octet-stream", "content": encoded("MZ")},
                {"name": "notes.txt", "type": "text/plain", "content": encoded("plain")},
            ], "inlines": [
                {"name": "logo.png", "type": "image/png", "cid": "logo", "content": encoded("png")},
            ]})
            .to_string(),
        )
        .await;
    let spoof = download(&app, &id, "attachments/0").await;
    assert_eq!(spoof.headers()["content-type"], "application/octet-stream");
    let disposition = |response: &reqwest::Response| {
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert!(disposition(&spoof).starts_with("attachment;"));
    let exe = download(&app, &id, "attachments/1").await;
    assert_eq!(disposition(&exe), "attachment; filename=\"invgnp.exe\"");
    let text = download(&app, &id, "attachments/2").await;
    assert!(
        disposition(&text).starts_with("attachment;"),
        "attachments download"
    );
    let logo = download(&app, &id, "inlines/0").await;
    assert!(
        disposition(&logo).starts_with("inline;"),
        "a safe inline may show"
    );
}

engine_tests!(
    slow_uploads_never_delay_a_normal_delivery,
    a_body_slower_than_the_minimum_rate_gets_408,
    a_hundred_thousand_parts_are_refused_at_once,
    emails_at_the_part_cap_are_stored_together,
    too_many_json_keys_are_refused,
    forged_part_hashes_never_reach_another_emails_bytes,
    a_sent_sha256_field_never_shifts_the_index_routes,
    stored_types_are_served_canonically_and_names_lose_format_characters,
);
