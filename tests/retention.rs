//! The retention sweep (DESIGN §7) on both engines: age, count and trash rules delete
//! through the same use case as `DELETE /emails/<id>`, and the change log is trimmed.

use crate::common;

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use common::{Engine, TestDatabase};
use mailroom::email::FlagChange;
use mailroom::inbound::improvmx;
use mailroom::store::retention::{RetentionPolicy, sweep};
use mailroom::store::{self, EmailQuery, Store};
use serde_json::json;

async fn open(engine: Engine) -> (Arc<dyn Store>, TestDatabase) {
    let database = TestDatabase::new(engine).await;
    let store = store::open(&database.url).await.expect("store opens");
    store.migrate().await.expect("migrations apply");
    (store, database)
}

/// An email to `to`, received `days_ago`, sharing one attachment with every other.
async fn deliver(store: &dyn Store, to: &[&str], days_ago: i64) -> String {
    let to: Vec<_> = to.iter().map(|a| json!({ "email": a })).collect();
    let payload = json!({
        "to": to,
        "message-id": format!("<{}@test>", hex::encode(rand::random::<[u8; 8]>())),
        "text": "hi",
        "attachments": [{"name": "shared.txt", "content": "c2hhcmVk"}],
    });
    let at = Utc::now() - Duration::days(days_ago);
    let email = improvmx::parse(payload.to_string().as_bytes(), at).unwrap();
    store.insert_inbound(email).await.unwrap().id().to_string()
}

async fn stored_ids(store: &dyn Store) -> BTreeSet<String> {
    let query = EmailQuery {
        limit: 100,
        trashed: None,
        ..EmailQuery::default()
    };
    let mut ids: BTreeSet<String> = BTreeSet::new();
    for trashed in [Some(false), Some(true)] {
        let query = EmailQuery {
            trashed,
            ..query.clone()
        };
        let emails = store.list_emails(&query).await.unwrap();
        ids.extend(emails.iter().map(|e| e.id.to_string()));
    }
    ids
}

fn keep_everything() -> RetentionPolicy {
    RetentionPolicy {
        trash_age: None,
        ..RetentionPolicy::default()
    }
}

async fn run(store: &dyn Store, policy: RetentionPolicy, now: DateTime<Utc>) -> u64 {
    sweep(store, &policy, now).await.expect("the sweep runs")
}

async fn mail_older_than_retention_days_goes(engine: Engine) {
    let (store, _db) = open(engine).await;
    let old = deliver(store.as_ref(), &["ana@x.org"], 400).await;
    let recent = deliver(store.as_ref(), &["ana@x.org"], 10).await;
    let policy = RetentionPolicy {
        max_age: Some(Duration::days(365)),
        ..keep_everything()
    };
    assert_eq!(run(store.as_ref(), policy.clone(), Utc::now()).await, 1);
    assert_eq!(
        stored_ids(store.as_ref()).await,
        BTreeSet::from([recent.clone()])
    );
    let id = recent.parse().unwrap();
    let email = store.email(id).await.unwrap().unwrap();
    let part = mailroom::inbound::part_at(&email, mailroom::email::PartKind::Attachment, 0);
    assert!(
        store
            .blob(&part.unwrap().meta.blake3)
            .await
            .unwrap()
            .is_some(),
        "bytes the kept email shares stay"
    );
    assert_eq!(
        run(store.as_ref(), policy, Utc::now()).await,
        0,
        "nothing left to do"
    );
    assert!(store.email(old.parse().unwrap()).await.unwrap().is_none());
}

async fn only_the_newest_max_emails_stay(engine: Engine) {
    let (store, _db) = open(engine).await;
    let mut ids = Vec::new();
    for days_ago in [5, 4, 3, 2, 1] {
        ids.push(deliver(store.as_ref(), &["ana@x.org"], days_ago).await);
    }
    let policy = RetentionPolicy {
        max_emails: Some(2),
        ..keep_everything()
    };
    assert_eq!(run(store.as_ref(), policy, Utc::now()).await, 3);
    assert_eq!(
        stored_ids(store.as_ref()).await,
        BTreeSet::from([ids[3].clone(), ids[4].clone()])
    );
}

async fn mail_in_the_trash_of_every_mailbox_goes_after_trash_retention_days(engine: Engine) {
    let (store, _db) = open(engine).await;
    let trashed = deliver(store.as_ref(), &["ana@x.org"], 1).await;
    let restored = deliver(store.as_ref(), &["ana@x.org"], 1).await;
    let half = deliver(store.as_ref(), &["ana@x.org", "luis@x.org"], 1).await;
    let kept = deliver(store.as_ref(), &["ana@x.org"], 1).await;
    let trash = FlagChange {
        trashed: Some(true),
        ..FlagChange::default()
    };
    let mail = store.mail_state();
    let id = |text: &String| text.parse().unwrap();
    mail.set_flags(&[id(&trashed), id(&restored)], None, trash)
        .await
        .unwrap();
    mail.set_flags(&[id(&half)], Some("ana@x.org"), trash)
        .await
        .unwrap();
    let restore = FlagChange {
        trashed: Some(false),
        ..FlagChange::default()
    };
    mail.set_flags(&[id(&restored)], None, restore)
        .await
        .unwrap();

    let policy = RetentionPolicy::default();
    let soon = Utc::now() + Duration::days(29);
    assert_eq!(
        run(store.as_ref(), policy.clone(), soon).await,
        0,
        "not yet"
    );
    let later = Utc::now() + Duration::days(31);
    assert_eq!(run(store.as_ref(), policy, later).await, 1);
    assert_eq!(
        stored_ids(store.as_ref()).await,
        BTreeSet::from([restored, half, kept]),
        "restored mail, and mail still in one mailbox's inbox, stay"
    );
}

async fn the_change_log_keeps_events_retention_days(engine: Engine) {
    let (store, _db) = open(engine).await;
    deliver(store.as_ref(), &["ana@x.org"], 0).await;
    let policy = keep_everything();
    run(store.as_ref(), policy.clone(), Utc::now()).await;
    assert_eq!(store.changes().events_after(0, 10).await.unwrap().len(), 1);
    run(store.as_ref(), policy, Utc::now() + Duration::days(8)).await;
    assert!(
        store
            .changes()
            .events_after(0, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

engine_tests!(
    mail_older_than_retention_days_goes,
    only_the_newest_max_emails_stay,
    mail_in_the_trash_of_every_mailbox_goes_after_trash_retention_days,
    the_change_log_keeps_events_retention_days,
);
