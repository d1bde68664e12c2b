//! The webmail's live stream (`/ui/events`): new mail and changes for the logged-in
//! reader only, each followed by their unread counts, on both engines.

use crate::common;
use crate::webmail_support;

use common::sse::SseReader;
use common::{Engine, TestApp};
use mailroom::store::Role;
use serde_json::json;
use webmail_support::{Client, add_user, email_to, location};

async fn a_reader_is_told_of_their_own_new_mail_only(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    add_user(&app, "ana@x.org", Role::User, &["ana@x.org"]).await;
    let mut ana = Client::logged_in(&app, "ana@x.org").await;
    let mut live = SseReader::new(ana.get("/ui/events").await);
    assert!(live.next_block().await.starts_with(':'));

    // Luis's mail first: had it been sent to Ana, it would come first.
    app.deliver(email_to("luis@x.org", "for luis", "", json!([])))
        .await;
    let id = app
        .deliver(email_to("ana@x.org", "for ana", "", json!([])))
        .await;
    let email = live.next_event().await;
    assert_eq!(email.kind, "email");
    assert_eq!(email.data["id"], id.as_str());
    assert_eq!(email.data["subject"], "for ana");
    assert_eq!(email.data["mailboxes"], json!(["ana@x.org"]));
    let counts = live.next_event().await;
    assert_eq!(counts.kind, "counts");
    assert_eq!(counts.data, json!({"ana@x.org": 1}), "only her mailboxes");
}

async fn an_admin_is_told_of_every_mailbox(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    add_user(&app, "boss", Role::Admin, &[]).await;
    let mut boss = Client::logged_in(&app, "boss").await;
    let mut live = SseReader::new(boss.get("/ui/events").await);
    app.deliver(email_to("luis@x.org", "for luis", "", json!([])))
        .await;
    let email = live.next_event().await;
    assert_eq!(email.data["mailboxes"], json!(["luis@x.org"]));
}

async fn the_live_stream_needs_a_session(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let response = Client::new(&app).get("/ui/events").await;
    assert_eq!(response.status(), 303);
    assert!(location(&response).starts_with("/login"));
}

engine_tests!(
    a_reader_is_told_of_their_own_new_mail_only,
    an_admin_is_told_of_every_mailbox,
    the_live_stream_needs_a_session,
);
