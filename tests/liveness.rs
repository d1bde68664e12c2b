//! `GET /healthz` and `GET /readyz`: no key needed, nothing revealed.

use crate::common;

use common::{Engine, TestApp};
use serde_json::{Value, json};

async fn healthz_answers_without_a_key_and_says_nothing_more(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let response = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("server").is_none());
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"status": "ok"})
    );
}

async fn readyz_answers_once_the_database_does(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let response = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"status": "ready"})
    );
}

async fn the_authenticated_status_route_stays(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let anonymous = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let (status, json) = app.get_json("/").await;
    assert_eq!(status, 200);
    assert_eq!(json["status"], "healthy");
}

async fn probes_accept_only_get(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    for path in ["/healthz", "/readyz"] {
        let response = app.client.post(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 405, "{path}");
    }
}

engine_tests!(
    healthz_answers_without_a_key_and_says_nothing_more,
    readyz_answers_once_the_database_does,
    the_authenticated_status_route_stays,
    probes_accept_only_get,
);
