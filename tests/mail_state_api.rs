//! Mail state over HTTP (DESIGN §7): `GET /mailboxes`, `PATCH` and `DELETE
//! /emails/<id>`, `POST /emails/bulk`, and the list filters, on a real server.

use crate::common;

use common::{API_KEY, Engine, TestApp, UNLIMITED};
use serde_json::{Value, json};

/// A server whose mail domain is `x.org`.
async fn spawn(engine: Engine) -> TestApp {
    let mut vars = UNLIMITED.to_vec();
    vars.push(("DOMINIO", "x.org"));
    TestApp::spawn_with(engine, &vars).await
}

fn delivery(to: &[&str], cc: &[&str]) -> String {
    let list = |addresses: &[&str]| -> Vec<Value> {
        addresses.iter().map(|a| json!({ "email": a })).collect()
    };
    json!({
        "to": list(to),
        "cc": list(cc),
        "from": {"email": "sender@example.net"},
        "subject": "state",
        "message-id": format!("<{}@test>", hex::encode(rand::random::<[u8; 8]>())),
        "text": "hi",
        "attachments": [{"type": "text/plain", "name": "a.txt", "content": "YQ=="}],
    })
    .to_string()
}

async fn send(app: &TestApp, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
    let response = app
        .client
        .request(method, app.url(path))
        .bearer_auth(API_KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn mailboxes_flags_and_filters(engine: Engine) {
    let app = spawn(engine).await;
    let id = app
        .deliver(delivery(
            &["Ana+promo@X.org", "outsider@example.com"],
            &["luis@x.org"],
        ))
        .await;
    let (status, body) = app.get_json("/mailboxes").await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"success": true, "mailboxes": [
            {"address": "ana@x.org", "total": 1, "unread": 1},
            {"address": "luis@x.org", "total": 1, "unread": 1},
        ]})
    );

    let path = format!("/emails/{id}?mailbox=ana@x.org");
    let (status, body) = send(&app, reqwest::Method::PATCH, &path, json!({"read": true})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["email"]["processed"], true);
    assert_eq!(body["email"]["_id"], id.as_str());
    let (_, body) = app.get_json(&format!("/emails/{id}")).await;
    assert_eq!(body["email"]["processed"], false, "luis has not read it");
    assert_eq!(body["email"]["mailboxes"][0]["read"], true);
    assert_eq!(body["email"]["mailboxes"][1]["read"], false);

    let (_, page) = app
        .get_json("/emails?mailbox=luis@x.org&processed=false")
        .await;
    assert_eq!(page["count"], 1);
    let (_, page) = app
        .get_json("/emails?mailbox=ana@x.org&processed=false")
        .await;
    assert_eq!(page["count"], 0);

    let (status, body) = send(
        &app,
        reqwest::Method::PATCH,
        &format!("/emails/{id}"),
        json!({"processed": true, "starred": true, "trashed": true}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            &body["email"]["processed"],
            &body["email"]["starred"],
            &body["email"]["trashed"]
        ),
        (&json!(true), &json!(true), &json!(true))
    );
    assert_eq!(
        app.get_json("/emails").await.1["count"],
        0,
        "trash is hidden"
    );
    assert_eq!(app.get_json("/emails?trashed=true").await.1["count"], 1);
    assert_eq!(
        app.get_json("/emails?starred=true&trashed=true").await.1["count"],
        1
    );
    app.stop().await;
}

async fn bad_changes_are_clear_errors(engine: Engine) {
    let app = spawn(engine).await;
    let id = app.deliver(delivery(&["ana@x.org"], &[])).await;
    let patch = reqwest::Method::PATCH;
    let cases = [
        (format!("/emails/{id}"), json!({}), 400),
        (format!("/emails/{id}"), json!({"flagged": true}), 400),
        (format!("/emails/{id}"), json!({"read": "yes"}), 400),
        (
            format!("/emails/{id}?mailbox=nobody"),
            json!({"read": true}),
            400,
        ),
        (
            format!("/emails/{id}?mailbox=zoe@x.org"),
            json!({"read": true}),
            404,
        ),
        (
            "/emails/0123456789abcdef01234567".into(),
            json!({"read": true}),
            404,
        ),
        ("/emails/nope".into(), json!({"read": true}), 400),
    ];
    for (path, body, expected) in cases {
        let (status, answer) = send(&app, patch.clone(), &path, body.clone()).await;
        assert_eq!(status, expected, "{path} {body}: {answer}");
        assert_eq!(answer["success"], false);
    }
    for (filter, expected) in [
        ("processed=maybe", 400),
        ("starred=1", 200),
        ("mailbox=@", 400),
    ] {
        let (status, _) = app.get_json(&format!("/emails?{filter}")).await;
        assert_eq!(status, expected, "{filter}");
    }
    let too_many: Vec<String> = (0..1001).map(|_| id.clone()).collect();
    let (status, _) = send(
        &app,
        reqwest::Method::POST,
        "/emails/bulk",
        json!({"ids": too_many, "delete": true}),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = send(
        &app,
        reqwest::Method::POST,
        "/emails/bulk",
        json!({"ids": [id]}),
    )
    .await;
    assert_eq!(status, 400, "neither set nor delete");
    app.stop().await;
}

async fn deleting_and_redelivering(engine: Engine) {
    let app = spawn(engine).await;
    let payload = delivery(&["ana@x.org"], &[]);
    let id = app.deliver(payload.clone()).await;
    let (status, body) = send(
        &app,
        reqwest::Method::DELETE,
        &format!("/emails/{id}"),
        json!(null),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"success": true, "message": "Email deleted"}));
    assert_eq!(app.get(&format!("/emails/{id}")).await.status(), 404);
    let (status, _) = send(
        &app,
        reqwest::Method::DELETE,
        &format!("/emails/{id}"),
        json!(null),
    )
    .await;
    assert_eq!(status, 404);

    let again = app.deliver(payload).await;
    assert_ne!(again, id, "a redelivery of a deleted email is new mail");
    let (_, email) = app.get_json(&format!("/emails/{again}")).await;
    let url = email["email"]["attachments"][0]["url"].as_str().unwrap();
    let download = app.get(url).await;
    assert_eq!(download.status(), 200);
    assert_eq!(download.bytes().await.unwrap().as_ref(), b"a");
    app.stop().await;
}

async fn bulk_changes_and_deletes(engine: Engine) {
    let app = spawn(engine).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(app.deliver(delivery(&["ana@x.org"], &[])).await);
    }
    let (status, body) = send(
        &app,
        reqwest::Method::POST,
        "/emails/bulk",
        json!({"ids": [ids[0], ids[1], "0123456789abcdef01234567"], "set": {"read": true}}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"success": true, "updated": 2}));
    let (_, counts) = app.get_json("/mailboxes").await;
    assert_eq!(counts["mailboxes"][0]["unread"], 1);
    let (status, body) = send(
        &app,
        reqwest::Method::POST,
        "/emails/bulk",
        json!({"ids": ids, "delete": true}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"success": true, "deleted": 3}));
    assert_eq!(app.get_json("/emails").await.1["count"], 0);
    app.stop().await;
}

/// PATCH and DELETE count against RATE_LIMIT_MODIFY, not the read limit.
async fn changes_have_their_own_rate_limit(engine: Engine) {
    let mut vars: Vec<(&str, &str)> = UNLIMITED
        .iter()
        .copied()
        .filter(|(name, _)| *name != "RATE_LIMIT_MODIFY")
        .collect();
    vars.push(("RATE_LIMIT_MODIFY", "2/minute"));
    let app = TestApp::spawn_with(engine, &vars).await;
    let id = app.deliver(delivery(&["ana@x.org"], &[])).await;
    let path = format!("/emails/{id}");
    for expected in [200, 200, 429] {
        let (status, _) = send(
            &app,
            reqwest::Method::PATCH,
            &path,
            json!({"starred": true}),
        )
        .await;
        assert_eq!(status, expected);
    }
    assert_eq!(
        app.get(&path).await.status(),
        200,
        "reading is not limited by it"
    );
    app.stop().await;
}

engine_tests!(
    mailboxes_flags_and_filters,
    bad_changes_are_clear_errors,
    deleting_and_redelivering,
    bulk_changes_and_deletes,
    changes_have_their_own_rate_limit,
);
