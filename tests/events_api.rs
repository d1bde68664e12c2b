//! `GET /events` (Server-Sent Events from the change log) and `GET /emails/<id>/raw`,
//! over real HTTP on both engines.

use crate::common;

use std::time::Duration;

use common::sse::{DEADLINE, SseReader};
use common::{API_KEY, Engine, TestApp, UNLIMITED, fixture, small_email};
use serde_json::Value;

/// An open `GET /events` stream.
struct EventStream;

impl EventStream {
    async fn open(app: &TestApp, last_event_id: Option<i64>) -> reqwest::Response {
        let mut request = app.client.get(app.url("/events")).bearer_auth(API_KEY);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id.to_string());
        }
        request.send().await.expect("request sent")
    }

    async fn connect(app: &TestApp, last_event_id: Option<i64>) -> SseReader {
        let mut stream = SseReader::new(Self::open(app, last_event_id).await);
        // The opening comment: from here on the server follows the log.
        let opening = stream.next_block().await;
        assert!(opening.starts_with(':'), "{opening:?}");
        stream
    }
}

async fn new_mail_and_flag_changes_are_streamed(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let mut events = EventStream::connect(&app, None).await;
    let id = app.deliver(small_email("hello", "ana@example.org")).await;
    let email = events.next_event().await;
    assert_eq!(email.kind, "email");
    assert_eq!(email.data["id"], id.as_str());
    assert_eq!(email.data["subject"], "hello");
    assert_eq!(email.data["from"], "ana@example.org");
    assert_eq!(
        email.data["mailboxes"],
        serde_json::json!(["ventas@puntoa.ar"])
    );
    assert!(email.data["received_at"].is_string());

    let patched = app
        .client
        .patch(app.url(&format!("/emails/{id}")))
        .bearer_auth(API_KEY)
        .json(&serde_json::json!({"starred": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    let flags = events.next_event().await;
    assert_eq!(
        (flags.kind.as_str(), flags.data["starred"].as_bool()),
        ("flags", Some(true))
    );
    assert!(flags.id > email.id);

    let deleted = app
        .client
        .delete(app.url(&format!("/emails/{id}")))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    assert_eq!(events.next_event().await.kind, "deleted");
    drop(events);
    tokio::time::timeout(DEADLINE, app.stop())
        .await
        .expect("a clean stop");
}

async fn a_stream_resumes_after_last_event_id_without_losing_events(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let first = app.deliver(small_email("one", "a@example.org")).await;
    let second = app.deliver(small_email("two", "a@example.org")).await;
    let mut from_start = EventStream::connect(&app, Some(0)).await;
    let one = from_start.next_event().await;
    assert_eq!(one.data["id"], first.as_str());
    drop(from_start);

    // Resumes after the first: the second comes, though it was stored before connecting.
    let mut resumed = EventStream::connect(&app, one.id).await;
    assert_eq!(resumed.next_event().await.data["id"], second.as_str());
    let third = app.deliver(small_email("three", "a@example.org")).await;
    assert_eq!(resumed.next_event().await.data["id"], third.as_str());
}

async fn open_streams_are_capped_per_client(engine: Engine) {
    let mut vars = UNLIMITED.to_vec();
    vars.push(("EVENTS_MAX_STREAMS", "1"));
    let app = TestApp::spawn_with(engine, &vars).await;
    let held = EventStream::connect(&app, None).await;
    let refused = EventStream::open(&app, None).await;
    assert_eq!(refused.status(), 429);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("EVENTS_MAX_STREAMS")
    );
    drop(held);
    // The slot comes back once the server sees the disconnect.
    let reopened = tokio::time::timeout(DEADLINE, async {
        loop {
            let response = EventStream::open(&app, None).await;
            if response.status() == 200 {
                return response;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("a slot within the deadline");
    assert_eq!(reopened.status(), 200);
}

async fn streams_need_the_key_and_a_valid_event_id(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let anonymous = app.client.get(app.url("/events")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let bad = app
        .client
        .get(app.url("/events"))
        .bearer_auth(API_KEY)
        .header("last-event-id", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

async fn a_stop_is_not_held_up_by_open_streams(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let _open = EventStream::connect(&app, None).await;
    tokio::time::timeout(DEADLINE, app.stop())
        .await
        .expect("the server stops while a stream is open");
}

async fn raw_gives_back_the_delivered_payload(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    for name in [
        "full-arrays.json",
        "multi-recipient-unicode.json",
        "minimal.json",
    ] {
        let payload = fixture(name);
        let id = app.deliver(payload.clone()).await;
        let (status, raw) = app.get_json(&format!("/emails/{id}/raw")).await;
        assert_eq!(status, 200, "{name}");
        let sent: Value = serde_json::from_str(&payload).unwrap();
        assert_eq!(raw, sent, "{name}");
    }
    let (status, _) = app.get_json("/emails/0123456789abcdef01234567/raw").await;
    assert_eq!(status, 404);
}

engine_tests!(
    new_mail_and_flag_changes_are_streamed,
    a_stream_resumes_after_last_event_id_without_losing_events,
    open_streams_are_capped_per_client,
    streams_need_the_key_and_a_valid_event_id,
    a_stop_is_not_held_up_by_open_streams,
    raw_gives_back_the_delivered_payload,
);
