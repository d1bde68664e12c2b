//! Conversations on both engines: emails that share a root Message-ID are one thread,
//! whatever order they arrive in, and emails stored before threads get their key from
//! the background filing pass.

use crate::common;

use std::sync::Arc;

use chrono::{Duration, Utc};
use common::{Engine, TestDatabase};
use mailroom::inbound::{filing, improvmx};
use mailroom::store::{self, Store};
use serde_json::{Value, json};
use sqlx::Connection as _;

/// The thread key of a payload, as ingest computes it.
fn thread_key(payload: Value) -> String {
    improvmx::message(payload.as_object().unwrap())
        .thread_key()
        .unwrap()
}

async fn open(engine: Engine) -> (Arc<dyn Store>, TestDatabase) {
    let database = TestDatabase::new(engine).await;
    let store = store::open(&database.url).await.expect("store opens");
    store.migrate().await.expect("migrations apply");
    (store, database)
}

/// Stores `payload`, received `minutes_ago`; answers its id.
async fn deliver(store: &dyn Store, payload: Value, minutes_ago: i64) -> String {
    let at = Utc::now() - Duration::minutes(minutes_ago);
    let email = improvmx::parse(payload.to_string().as_bytes(), at).unwrap();
    store.insert_inbound(email).await.unwrap().id().to_string()
}

async fn ids_in_thread(store: &dyn Store, key: &str) -> Vec<String> {
    let emails = store.mail_state().thread(key, 50).await.unwrap();
    emails.iter().map(|email| email.id.to_string()).collect()
}

fn root() -> Value {
    json!({"to": [{"email": "ana@x.org"}], "message-id": "<root@x.org>", "subject": "Plan"})
}

fn reply() -> Value {
    json!({
        "to": [{"email": "ana@x.org"}], "message-id": "<reply@y.org>", "subject": "Re: Plan",
        "headers": {"In-Reply-To": "<root@x.org>", "References": "<root@x.org>"},
    })
}

async fn a_reply_joins_its_thread_in_whatever_order_they_arrive(engine: Engine) {
    let (store, _db) = open(engine).await;
    // The reply is stored first, but was received later.
    let later = deliver(store.as_ref(), reply(), 1).await;
    let earlier = deliver(store.as_ref(), root(), 5).await;
    let other = json!({"to": [{"email": "ana@x.org"}], "message-id": "<other@z.org>"});
    let unrelated = deliver(store.as_ref(), other, 3).await;
    let key = thread_key(root());
    assert_eq!(ids_in_thread(store.as_ref(), &key).await, [earlier, later]);
    let other_key = thread_key(json!({"message-id": "<other@z.org>"}));
    assert_eq!(ids_in_thread(store.as_ref(), &other_key).await, [unrelated]);
}

async fn emails_stored_before_threads_are_keyed_in_the_background(engine: Engine) {
    let (store, db) = open(engine).await;
    let first = deliver(store.as_ref(), root(), 5).await;
    let second = deliver(store.as_ref(), reply(), 1).await;
    // As a database from before this version: no keys, and the filing pass to run.
    let statements = [
        "UPDATE emails SET thread_key = NULL",
        "UPDATE mail_state_backfill SET after_id = '', done = (1 = 0)",
    ];
    match engine {
        Engine::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            for sql in statements {
                sqlx::query(sql).execute(&mut conn).await.unwrap();
            }
        }
        Engine::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
            for sql in statements {
                sqlx::query(sql).execute(&mut conn).await.unwrap();
            }
        }
    }
    let key = thread_key(root());
    assert!(ids_in_thread(store.as_ref(), &key).await.is_empty());
    filing::file_all(store.clone(), Vec::new()).await;
    assert_eq!(ids_in_thread(store.as_ref(), &key).await, [first, second]);
}

engine_tests!(
    a_reply_joins_its_thread_in_whatever_order_they_arrive,
    emails_stored_before_threads_are_keyed_in_the_background,
);
