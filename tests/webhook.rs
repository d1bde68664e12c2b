//! `POST /webhook` over real HTTP: durable storage, redelivery, hostile bodies, large mail.

use crate::common;

use common::{Engine, TestApp, fixture, small_email};
use serde_json::Value;

async fn every_fixture_is_stored_and_acknowledged_with_an_id(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    for name in [
        "full-arrays.json",
        "legacy-string-headers.json",
        "minimal.json",
        "multi-recipient-unicode.json",
    ] {
        let response = app.post_webhook(fixture(name)).await;
        assert_eq!(response.status(), 200, "{name}");
        let json: Value = response.json().await.unwrap();
        assert_eq!(json["success"], true);
        assert_eq!(json["message"], "Email received and stored");
        let id = json["email_id"].as_str().unwrap();
        assert_eq!(id.len(), 24);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
        let (status, _) = app.get_json(&format!("/emails/{id}")).await;
        assert_eq!(status, 200, "{name} is readable");
    }
}

async fn a_redelivery_answers_the_first_id_and_stores_nothing(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let first = app.deliver(fixture("full-arrays.json")).await;
    let second = app.deliver(fixture("full-arrays.json")).await;
    assert_eq!(first, second);
    let (_, list) = app.get_json("/emails?limit=100").await;
    assert_eq!(list["count"], 1);
}

async fn a_redelivery_with_a_new_timestamp_is_still_a_duplicate(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let mut payload: Value = serde_json::from_str(&fixture("full-arrays.json")).unwrap();
    let first = app.deliver(payload.to_string()).await;
    payload["timestamp"] = 1_900_000_000.into();
    assert_eq!(app.deliver(payload.to_string()).await, first);
}

async fn a_reused_message_id_with_other_content_is_stored_separately(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let mut payload: Value = serde_json::from_str(&fixture("full-arrays.json")).unwrap();
    let first = app.deliver(payload.to_string()).await;
    payload["text"] = "a different body under the same Message-ID".into();
    let second = app.deliver(payload.to_string()).await;
    assert_ne!(first, second);
    payload["to"] = serde_json::json!([{"email": "otro@puntoa.ar"}]);
    let third = app.deliver(payload.to_string()).await;
    assert_ne!(third, first);
    assert_ne!(third, second);
}

async fn concurrent_redeliveries_store_one_email(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let body = fixture("multi-recipient-unicode.json");
    let deliveries = (0..16).map(|_| app.deliver(body.clone()));
    let ids = futures::future::join_all(deliveries).await;
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    let (_, list) = app.get_json("/emails?limit=100").await;
    assert_eq!(list["count"], 1);
}

async fn concurrent_distinct_deliveries_are_all_stored(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let deliveries =
        (0..40).map(|i| app.deliver(small_email(&format!("mail {i}"), "a@example.org")));
    let mut ids = futures::future::join_all(deliveries).await;
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 40);
    let (_, list) = app.get_json("/emails?limit=100").await;
    assert_eq!(list["count"], 40);
}

async fn bodies_that_are_not_a_json_object_get_a_400_and_the_server_stays_up(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let deep = "[".repeat(100_000);
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("not json", b"hello".to_vec()),
        ("truncated", b"{\"subject\":".to_vec()),
        ("array", b"[]".to_vec()),
        ("number", b"42".to_vec()),
        ("null", b"null".to_vec()),
        ("nested 100,000 deep", deep.into_bytes()),
        ("invalid utf-8", b"{\"subject\":\"\xff\xfe\"}".to_vec()),
        ("lone surrogate escape", br#"{"subject":"\udc00"}"#.to_vec()),
    ];
    for (what, body) in bodies {
        let response = app.post_webhook(body).await;
        assert_eq!(response.status(), 400, "{what}");
        let json: Value = response.json().await.unwrap();
        assert_eq!(json["success"], false, "{what}");
        assert!(json["error"].is_string(), "{what}");
    }
    app.deliver(small_email("still up", "a@example.org")).await;
}

async fn odd_but_genuine_shapes_are_stored(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let bodies = [
        r#"{}"#,
        r#"{"to":null,"from":null,"subject":null,"headers":null,"attachments":null,"inlines":null}"#,
        r#"{"headers":{"Received":["a","b"],"X-One":"c"},"subject":"mixed headers"}"#,
        r#"{"subject":"unknown fields","x-custom":{"deep":[1,2,3]},"spam-score":4.2}"#,
        r#"{"subject":"nul\u0000inside","text":"a\u0000b","from":{"email":"nul\u0000@example.org"}}"#,
        r#"{"attachments":[{"name":"wrapped.txt","type":"text/plain","content":"aGVs\nbG8"}]}"#,
        r#"{"attachments":[{"name":"bad.bin","content":"***not base64***"},"not an object",{"content":null}]}"#,
        r#"{"from":"Ana <ana@example.org>","to":"ventas@puntoa.ar","subject":"strings"}"#,
    ];
    for body in bodies {
        let id = app.deliver(body).await;
        let (status, _) = app.get_json(&format!("/emails/{id}")).await;
        assert_eq!(status, 200, "{body}");
    }
}

async fn nul_in_text_survives_the_round_trip(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let id = app
        .deliver(r#"{"subject":"a\u0000b","text":"x\u0000y"}"#)
        .await;
    let (_, json) = app.get_json(&format!("/emails/{id}")).await;
    assert_eq!(json["email"]["text"], "x\u{0}y");
    assert_eq!(json["email"]["subject"], "a\u{0}b");
}

async fn unknown_fields_are_kept(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let id = app
        .deliver(r#"{"subject":"s","x-custom":{"deep":[1,2,3]},"attachments":[{"name":"a","content":"aGk=","encoding":"base64","x-part":true}]}"#)
        .await;
    let (_, json) = app.get_json(&format!("/emails/{id}")).await;
    assert_eq!(json["email"]["x-custom"]["deep"][2], 3);
    assert_eq!(json["email"]["attachments"][0]["x-part"], true);
    assert_eq!(json["email"]["attachments"][0]["encoding"], "base64");
}

async fn a_30_mb_email_is_stored_and_downloads_identically(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let bytes: Vec<u8> = (0..30 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    use base64::Engine as _;
    let content = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let body = serde_json::json!({
        "subject": "thirty megabytes",
        "attachments": [{"type": "application/octet-stream", "name": "big.bin", "content": content}],
    })
    .to_string();
    drop(content);
    let id = app.deliver(body).await;
    let response = app.get(&format!("/emails/{id}/attachment/big.bin")).await;
    assert_eq!(response.status(), 200);
    let downloaded = response.bytes().await.unwrap();
    assert_eq!(downloaded.len(), bytes.len());
    assert!(downloaded == bytes, "the bytes differ");
}

async fn bodies_over_the_limit_get_a_413(engine: Engine) {
    let app = TestApp::spawn_with(engine, &[("MAX_WEBHOOK_BYTES", "4096")]).await;
    let body = serde_json::json!({"text": "x".repeat(8192)}).to_string();
    let response = app.post_webhook(body).await;
    assert_eq!(response.status(), 413);
    let json: Value = response.json().await.unwrap();
    assert_eq!(json["success"], false);
    app.deliver(small_email("small still works", "a@example.org"))
        .await;
}

async fn stored_mail_survives_a_restart(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let id = app.deliver(fixture("full-arrays.json")).await;
    let database = app.stop().await;
    let app = TestApp::spawn_on(database, common::UNLIMITED).await;
    let (status, json) = app.get_json(&format!("/emails/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(json["email"]["subject"], "Factura de noviembre");
    assert_eq!(
        app.deliver(fixture("full-arrays.json")).await,
        id,
        "dedup survives a restart"
    );
}

engine_tests!(
    every_fixture_is_stored_and_acknowledged_with_an_id,
    a_redelivery_answers_the_first_id_and_stores_nothing,
    a_redelivery_with_a_new_timestamp_is_still_a_duplicate,
    a_reused_message_id_with_other_content_is_stored_separately,
    concurrent_redeliveries_store_one_email,
    concurrent_distinct_deliveries_are_all_stored,
    bodies_that_are_not_a_json_object_get_a_400_and_the_server_stays_up,
    odd_but_genuine_shapes_are_stored,
    nul_in_text_survives_the_round_trip,
    unknown_fields_are_kept,
    a_30_mb_email_is_stored_and_downloads_identically,
    bodies_over_the_limit_get_a_413,
    stored_mail_survives_a_restart,
);
