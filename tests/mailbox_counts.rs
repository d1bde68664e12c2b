//! The per-mailbox counts that triggers keep (so `GET /mailboxes` reads a few rows at a
//! million emails) always equal a full count, on both engines, through every change:
//! ingest, read and unread, trash and restore, per-mailbox flags, deletes, filing.

use crate::common;

use std::sync::Arc;

use chrono::Utc;
use common::{Engine, TestDatabase};
use mailroom::email::{EmailId, FlagChange, MailboxCount};
use mailroom::inbound::improvmx;
use mailroom::store::{self, Store};
use serde_json::json;
use sqlx::{Connection as _, Row as _};

async fn open(engine: Engine) -> (Arc<dyn Store>, TestDatabase) {
    let database = TestDatabase::new(engine).await;
    let store = store::open(&database.url).await.expect("store opens");
    store.migrate().await.expect("migrations apply");
    (store, database)
}

async fn deliver(store: &dyn Store, to: &[&str]) -> EmailId {
    let to: Vec<_> = to.iter().map(|a| json!({ "email": a })).collect();
    let payload =
        json!({"to": to, "message-id": format!("<{}@t>", rand::random::<u64>()), "text": "x"});
    let email = improvmx::parse(payload.to_string().as_bytes(), Utc::now()).unwrap();
    store.insert_inbound(email).await.unwrap().id()
}

/// What a full count of `mailbox_emails` says.
async fn recount(engine: Engine, url: &str) -> Vec<MailboxCount> {
    let sql = "SELECT mailbox, count(*) AS total, sum(CASE WHEN is_read THEN 0 ELSE 1 END) AS unread \
               FROM mailbox_emails WHERE NOT trashed GROUP BY mailbox ORDER BY mailbox";
    let rows: Vec<(String, i64, i64)> = match engine {
        Engine::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
            let rows = sqlx::query(sql).fetch_all(&mut conn).await.unwrap();
            rows.iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect()
        }
        Engine::Postgres => {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            let rows = sqlx::query(sql).fetch_all(&mut conn).await.unwrap();
            rows.iter()
                .map(|r| (r.get(0), r.get(1), r.get(2)))
                .collect()
        }
    };
    rows.into_iter()
        .map(|(address, total, unread)| MailboxCount {
            address,
            total: total as u64,
            unread: unread as u64,
        })
        .collect()
}

fn flags(read: Option<bool>, trashed: Option<bool>) -> FlagChange {
    FlagChange {
        read,
        starred: None,
        trashed,
    }
}

async fn kept_counts_always_equal_a_full_count(engine: Engine) {
    let (store, db) = open(engine).await;
    let mail = store.mail_state();
    let check = |when: &'static str| {
        let store = store.clone();
        let url = db.url.clone();
        async move {
            let kept = store.mail_state().mailboxes().await.unwrap();
            assert_eq!(kept, recount(engine, &url).await, "after {when}");
        }
    };
    let mut both = Vec::new();
    for _ in 0..3 {
        both.push(deliver(store.as_ref(), &["a@x.org", "b@x.org"]).await);
    }
    let only_a = deliver(store.as_ref(), &["a@x.org"]).await;
    check("ingest").await;
    assert_eq!(
        mail.mailboxes().await.unwrap()[0],
        MailboxCount {
            address: "a@x.org".into(),
            total: 4,
            unread: 4
        }
    );

    mail.set_flags(&both[..2], None, flags(Some(true), None))
        .await
        .unwrap();
    check("reading everywhere").await;
    mail.set_flags(&both[..1], Some("b@x.org"), flags(Some(false), None))
        .await
        .unwrap();
    check("unreading in one mailbox").await;
    mail.set_flags(&[both[2], only_a], Some("a@x.org"), flags(None, Some(true)))
        .await
        .unwrap();
    check("trashing in one mailbox").await;
    mail.set_flags(&[both[2]], None, flags(Some(true), Some(false)))
        .await
        .unwrap();
    check("restoring and reading at once").await;
    mail.delete(&[both[1], only_a]).await.unwrap();
    check("deleting").await;
    mail.delete(&both).await.unwrap();
    check("deleting the rest").await;
    assert!(
        mail.mailboxes().await.unwrap().is_empty(),
        "empty mailboxes are not listed"
    );
}

/// Deliveries, flag changes and deletes at once, over the same mailboxes in every order:
/// none fails (on PostgreSQL their counts rows are locked in one order), and the counts
/// still equal a full count.
async fn concurrent_changes_all_succeed_and_keep_counts_right(engine: Engine) {
    let (store, db) = open(engine).await;
    let mut existing = Vec::new();
    for i in 0..20 {
        let to = if i % 2 == 0 {
            ["a@x.org", "b@x.org"]
        } else {
            ["b@x.org", "c@x.org"]
        };
        existing.push(deliver(store.as_ref(), &to).await);
    }
    let mut tasks = Vec::new();
    for round in 0..8 {
        let store = store.clone();
        let ids = existing.clone();
        tasks.push(tokio::spawn(async move {
            let mail = store.mail_state();
            let order: &[&str] = if round % 2 == 0 {
                &["c@x.org", "b@x.org", "a@x.org"]
            } else {
                &["a@x.org", "b@x.org", "c@x.org"]
            };
            deliver(store.as_ref(), order).await;
            let mut ids = ids;
            if round % 2 == 1 {
                ids.reverse();
            }
            mail.set_flags(&ids, None, flags(Some(round % 2 == 0), None))
                .await
                .unwrap();
            mail.delete(&ids[round..round + 1]).await.unwrap();
        }));
    }
    for task in tasks {
        task.await.expect("no change failed");
    }
    let kept = store.mail_state().mailboxes().await.unwrap();
    assert_eq!(kept, recount(engine, &db.url).await);
}

/// Flag changes and deletes over emails in no mailbox (no recipient was filed), at once
/// and in opposite orders: none fails (on PostgreSQL their rows are locked in id order,
/// as there are no counts rows to serialise them).
async fn concurrent_changes_of_unfiled_mail_all_succeed(engine: Engine) {
    let (store, _db) = open(engine).await;
    let mut unfiled = Vec::new();
    for _ in 0..40 {
        unfiled.push(deliver(store.as_ref(), &[]).await);
    }
    let mut tasks = Vec::new();
    for round in 0..16 {
        let store = store.clone();
        let mut ids = unfiled.clone();
        if round % 2 == 1 {
            ids.reverse();
        }
        tasks.push(tokio::spawn(async move {
            let mail = store.mail_state();
            for _ in 0..5 {
                mail.set_flags(
                    &ids,
                    None,
                    flags(Some(round % 2 == 0), Some(round % 3 == 0)),
                )
                .await
                .expect("a flag change of unfiled mail");
            }
            mail.delete(&ids[round..round + 1])
                .await
                .expect("a delete of unfiled mail");
        }));
    }
    for task in tasks {
        task.await.expect("no change failed");
    }
    let left = store.mail_state().mailboxes().await.unwrap();
    assert!(left.is_empty(), "unfiled mail is in no mailbox: {left:?}");
}

engine_tests!(
    kept_counts_always_equal_a_full_count,
    concurrent_changes_all_succeed_and_keep_counts_right,
    concurrent_changes_of_unfiled_mail_all_succeed,
);
