//! The change log (DESIGN §7) on both engines: new emails, flag changes and deletes are
//! logged in the same transaction, numbered in order, and read back from any point.

use crate::common;

use std::sync::Arc;

use chrono::{Duration, Utc};
use common::{Engine, TestDatabase};
use mailroom::email::FlagChange;
use mailroom::inbound::improvmx;
use mailroom::store::{self, EventKind, MailEvent, Store};
use serde_json::json;

async fn open(engine: Engine) -> (Arc<dyn Store>, TestDatabase) {
    let database = TestDatabase::new(engine).await;
    let store = store::open(&database.url).await.expect("store opens");
    store.migrate().await.expect("migrations apply");
    (store, database)
}

async fn deliver(store: &dyn Store, to: &[&str], subject: &str) -> String {
    let to: Vec<_> = to.iter().map(|a| json!({ "email": a })).collect();
    let payload = json!({
        "to": to,
        "from": {"email": "Sender@Example.net"},
        "subject": subject,
        "message-id": format!("<{}@test>", hex::encode(rand::random::<[u8; 8]>())),
        "text": "hi",
    });
    let email = improvmx::parse(payload.to_string().as_bytes(), Utc::now()).unwrap();
    store.insert_inbound(email).await.unwrap().id().to_string()
}

async fn all_events(store: &dyn Store) -> Vec<MailEvent> {
    store.changes().events_after(0, 1000).await.unwrap()
}

async fn every_change_is_logged_in_order(engine: Engine) {
    let (store, _db) = open(engine).await;
    assert_eq!(store.changes().last_seq().await.unwrap(), 0);
    let first = deliver(store.as_ref(), &["ana@x.org", "luis@x.org"], "one").await;
    let second = deliver(store.as_ref(), &["ana@x.org"], "two").await;
    let ids = [first.parse().unwrap()];
    let read = FlagChange {
        read: Some(true),
        ..FlagChange::default()
    };
    store
        .mail_state()
        .set_flags(&ids, Some("luis@x.org"), read)
        .await
        .unwrap();
    store.mail_state().delete(&ids).await.unwrap();

    let events = all_events(store.as_ref()).await;
    let summary: Vec<(EventKind, String, Vec<String>)> = events
        .iter()
        .map(|e| (e.kind, e.email_id.to_string(), e.mailboxes.clone()))
        .collect();
    let both = vec!["ana@x.org".to_owned(), "luis@x.org".to_owned()];
    assert_eq!(
        summary,
        [
            (EventKind::Email, first.clone(), both.clone()),
            (EventKind::Email, second, vec!["ana@x.org".to_owned()]),
            (
                EventKind::Flags,
                first.clone(),
                vec!["luis@x.org".to_owned()]
            ),
            (EventKind::Deleted, first, both),
        ]
    );
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(events[0].data["subject"], "one");
    assert_eq!(events[0].data["from"], "sender@example.net");
    assert_eq!(events[2].data, *json!({"read": true}).as_object().unwrap());
    assert_eq!(
        store.changes().last_seq().await.unwrap(),
        events[3].seq,
        "the end is the newest event"
    );
    let rest = store
        .changes()
        .events_after(events[1].seq, 10)
        .await
        .unwrap();
    assert_eq!(rest, events[2..], "reading resumes after a given number");
}

async fn redeliveries_and_unknown_ids_log_nothing(engine: Engine) {
    let (store, _db) = open(engine).await;
    let payload = json!({"to": [{"email": "ana@x.org"}], "message-id": "<same@test>", "text": "x"});
    for _ in 0..2 {
        let email = improvmx::parse(payload.to_string().as_bytes(), Utc::now()).unwrap();
        store.insert_inbound(email).await.unwrap();
    }
    let unknown = ["0123456789abcdef01234567".parse().unwrap()];
    let star = FlagChange {
        starred: Some(true),
        ..FlagChange::default()
    };
    store
        .mail_state()
        .set_flags(&unknown, None, star)
        .await
        .unwrap();
    store.mail_state().delete(&unknown).await.unwrap();
    let events = all_events(store.as_ref()).await;
    assert_eq!(events.len(), 1, "{events:?}");
}

async fn flags_in_a_mailbox_the_email_is_not_in_log_nothing(engine: Engine) {
    let (store, _db) = open(engine).await;
    let id = deliver(store.as_ref(), &["ana@x.org"], "one").await;
    let star = FlagChange {
        starred: Some(true),
        ..FlagChange::default()
    };
    let ids = [id.parse().unwrap()];
    store
        .mail_state()
        .set_flags(&ids, Some("luis@x.org"), star)
        .await
        .unwrap();
    store
        .mail_state()
        .set_flags(&ids, None, star)
        .await
        .unwrap();
    let kinds: Vec<_> = all_events(store.as_ref())
        .await
        .iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, [EventKind::Email, EventKind::Flags]);
}

async fn pruning_keeps_numbers_growing(engine: Engine) {
    let (store, _db) = open(engine).await;
    deliver(store.as_ref(), &["ana@x.org"], "old").await;
    let before = store.changes().last_seq().await.unwrap();
    let pruned = store
        .changes()
        .prune(Utc::now() + Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(pruned, 1);
    assert!(all_events(store.as_ref()).await.is_empty());
    deliver(store.as_ref(), &["ana@x.org"], "new").await;
    let events = all_events(store.as_ref()).await;
    assert_eq!(events.len(), 1);
    assert!(events[0].seq > before, "a number is never handed out twice");
}

engine_tests!(
    every_change_is_logged_in_order,
    redeliveries_and_unknown_ids_log_nothing,
    flags_in_a_mailbox_the_email_is_not_in_log_nothing,
    pruning_keeps_numbers_growing,
);
