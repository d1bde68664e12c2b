//! The reading view shows the conversation a message belongs to, as far as the reader
//! may read it: someone else's reply in the same thread is never listed.

use crate::common;
use crate::webmail_support;

use common::{Engine, TestApp};
use mailroom::store::Role;
use serde_json::json;
use webmail_support::{Client, add_user};

fn email(to: &str, id: &str, subject: &str, parent: Option<&str>) -> String {
    let mut payload = json!({
        "to": [{"email": to}], "from": {"email": "sender@example.org"},
        "message-id": format!("<{id}>"), "subject": subject, "text": subject,
    });
    if let Some(parent) = parent {
        payload["headers"] =
            json!({"In-Reply-To": format!("<{parent}>"), "References": format!("<{parent}>")});
    }
    payload.to_string()
}

async fn a_message_shows_its_conversation_without_others_mail(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    add_user(&app, "ana@x.org", Role::User, &["ana@x.org"]).await;
    add_user(&app, "luis@x.org", Role::User, &["luis@x.org"]).await;
    let root = app
        .deliver(email("ana@x.org", "root@t", "Plan", None))
        .await;
    let reply = app
        .deliver(email("ana@x.org", "reply@t", "Re: Plan", Some("root@t")))
        .await;
    let luis = app
        .deliver(email(
            "luis@x.org",
            "luis@t",
            "Re: Plan (luis)",
            Some("root@t"),
        ))
        .await;
    let alone = app
        .deliver(email("ana@x.org", "alone@t", "Alone", None))
        .await;

    let mut ana = Client::logged_in(&app, "ana@x.org").await;
    let page = ana
        .get(&format!("/view/{reply}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Conversation (2)"), "{page}");
    assert!(
        page.contains(&format!("/view/{root}")),
        "a link to the first message"
    );
    assert!(!page.contains(&luis), "Luis's reply is not Ana's to see");
    assert!(!page.contains("(luis)"));
    let single = ana
        .get(&format!("/view/{alone}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        !single.contains("Conversation"),
        "no list for a message alone"
    );

    let mut luis_client = Client::logged_in(&app, "luis@x.org").await;
    let his = luis_client
        .get(&format!("/view/{luis}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(!his.contains("Conversation"), "Ana's messages are not his");
}

engine_tests!(a_message_shows_its_conversation_without_others_mail);
