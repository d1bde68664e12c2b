//! The webmail's "Show original" gives back what was delivered, as the API's `/raw` does.

use crate::common;
use crate::webmail_support;

use common::{Engine, TestApp};
use mailroom::store::Role;
use serde_json::{Value, json};
use webmail_support::{Client, add_user, email_to};

async fn show_original_gives_back_the_delivered_payload(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    add_user(&app, "ana@x.org", Role::User, &["ana@x.org"]).await;
    let payload = email_to(
        "ana@x.org",
        "with a part",
        "<p>hola</p>",
        json!([{"type": "text/plain", "name": "a.txt", "content": "aGk="}]),
    );
    let id = app.deliver(payload.clone()).await;
    let mut ana = Client::logged_in(&app, "ana@x.org").await;
    let response = ana.get(&format!("/ui/original/{id}")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    let shown: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    let sent: Value = serde_json::from_str(&payload).unwrap();
    assert_eq!(shown, sent);
}

engine_tests!(show_original_gives_back_the_delivered_payload);
