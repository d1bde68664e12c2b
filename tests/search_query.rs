//! The query language of `GET /emails?q=` (DESIGN §7): one semantics table, run on both
//! engines, on emails not yet in the full-text index and again after it has them.

use crate::common;

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{Duration, Utc};
use common::{Engine, TestApp, TestDatabase, UNLIMITED};
use mailroom::email::{EmailId, FlagChange};
use mailroom::inbound::improvmx;
use mailroom::search;
use mailroom::store::{self, EmailQuery, Store};
use serde_json::{Value, json};

async fn open(engine: Engine) -> (Arc<dyn Store>, TestDatabase) {
    let database = TestDatabase::new(engine).await;
    let store = store::open(&database.url).await.expect("store opens");
    store.migrate().await.expect("migrations apply");
    (store, database)
}

async fn store_payload(store: &dyn Store, payload: Value) -> EmailId {
    let email = improvmx::parse(payload.to_string().as_bytes(), Utc::now()).unwrap();
    store.insert_inbound(email).await.unwrap().id()
}

/// The three emails of the table, by name.
async fn seed(store: &dyn Store) -> [(char, EmailId); 3] {
    let a = store_payload(store, json!({
        "subject": "Crédito aprobado",
        "from": {"name": "Ana Pérez", "email": "ana@example.org"},
        "to": [{"email": "ventas@x.org"}],
        "text": "Su crédito fue aprobado hoy.",
        "attachments": [{"type": "application/pdf", "name": "factura.pdf", "content": "JVBERg=="}],
    }))
    .await;
    let b = store_payload(store, json!({
        "subject": "Reunión mañana",
        "from": {"email": "luis@example.net"},
        "to": [{"name": "Soporte", "email": "soporte@x.org"}],
        "html": "<p>Buenos <b>días</b>, nos vemos mañana</p><script>var oculto;</script>",
        "inlines": [{"type": "image/png", "name": "logo.png", "cid": "logo", "content": "iVBORw=="}],
    }))
    .await;
    let c = store_payload(
        store,
        json!({
            "subject": "Factura",
            "from": {"email": "zhang@example.cn"},
            "to": [{"email": "ventas@x.org"}],
            "text": format!("días buenos {}", "relleno ".repeat(15_000)),
        }),
    )
    .await;
    [('A', a), ('B', b), ('C', c)]
}

const TABLE: &[(&str, &str)] = &[
    ("credito", "A"),
    ("CRÉDITO", "A"),
    ("aprobado credito", "A"),
    ("\"buenos días\"", "B"),
    ("\"dias buenos\"", "C"),
    ("buenos", "BC"),
    ("nos vemos", "B"),
    ("oculto", ""),
    ("factura", "AC"),
    ("logo", "B"),
    ("-buenos", "A"),
    ("from:ana", "A"),
    ("from:PÉREZ", "A"),
    ("from:example", "ABC"),
    ("from:.org", "A"),
    ("-from:example.", ""),
    ("to:soporte", "B"),
    ("to:ventas@x.org", "AC"),
    ("subject:factura", "C"),
    ("subject:\"reunión mañana\"", "B"),
    ("mailbox:ventas@x.org", "AC"),
    ("mailbox:Soporte+x@X.org", "B"),
    ("has:attachment", "A"),
    ("-has:attachment", "BC"),
    ("larger:50KB", "C"),
    ("smaller:50KB", "AB"),
    ("!!!", ""),
    ("credito from:luis", ""),
];

async fn ids_of(store: &dyn Store, text: &str) -> BTreeSet<EmailId> {
    let query = EmailQuery {
        limit: 100,
        search: Some(search::parse(text).unwrap()),
        ..EmailQuery::default()
    };
    store
        .list_emails(&query)
        .await
        .unwrap_or_else(|e| panic!("{text:?}: {e}"))
        .into_iter()
        .map(|email| email.id)
        .collect()
}

async fn check_table(store: &dyn Store, emails: &[(char, EmailId)], when: &str) {
    for (text, expected) in TABLE {
        let expected: BTreeSet<EmailId> = emails
            .iter()
            .filter(|(name, _)| expected.contains(*name))
            .map(|(_, id)| *id)
            .collect();
        assert_eq!(ids_of(store, text).await, expected, "{text:?} ({when})");
    }
}

async fn the_semantics_table_holds_before_and_after_indexing(engine: Engine) {
    let (store, _db) = open(engine).await;
    let emails = seed(store.as_ref()).await;
    check_table(store.as_ref(), &emails, "not indexed yet").await;
    store.migrate().await.unwrap(); // indexes every email stored so far
    check_table(store.as_ref(), &emails, "indexed").await;
    store.close().await;
}

async fn flags_and_dates_are_searchable(engine: Engine) {
    let (store, _db) = open(engine).await;
    let [(_, a), (_, b), (_, c)] = seed(store.as_ref()).await;
    let mail = store.mail_state();
    let read = FlagChange {
        read: Some(true),
        ..FlagChange::default()
    };
    let star = FlagChange {
        starred: Some(true),
        ..FlagChange::default()
    };
    mail.set_flags(&[a], None, read).await.unwrap();
    mail.set_flags(&[b], None, star).await.unwrap();
    let set = |ids: &[EmailId]| ids.iter().copied().collect::<BTreeSet<_>>();
    assert_eq!(ids_of(store.as_ref(), "is:read").await, set(&[a]));
    assert_eq!(ids_of(store.as_ref(), "is:unread").await, set(&[b, c]));
    assert_eq!(ids_of(store.as_ref(), "is:starred").await, set(&[b]));
    assert_eq!(
        ids_of(store.as_ref(), "-is:starred is:unread").await,
        set(&[c])
    );
    let tomorrow = (Utc::now() + Duration::days(1)).format("%Y-%m-%d");
    let today = Utc::now().format("%Y-%m-%d");
    assert_eq!(
        ids_of(store.as_ref(), &format!("before:{tomorrow}"))
            .await
            .len(),
        3
    );
    assert!(
        ids_of(store.as_ref(), &format!("after:{tomorrow}"))
            .await
            .is_empty()
    );
    assert_eq!(
        ids_of(store.as_ref(), &format!("after:{today}"))
            .await
            .len(),
        3
    );
    assert!(
        ids_of(store.as_ref(), &format!("before:{today}"))
            .await
            .is_empty()
    );
    store.close().await;
}

/// Words are capped so that no email fails to store for its index: PostgreSQL refuses
/// a `tsvector` over 1 MB, which 1 MiB of distinct words exceeds.
async fn a_megabyte_of_distinct_words_still_stores(engine: Engine) {
    let (store, _db) = open(engine).await;
    let text: String = (0..200_000).map(|n| format!("w{n:x}z ")).collect();
    let id = store_payload(store.as_ref(), json!({"subject": "big", "text": text})).await;
    assert_eq!(ids_of(store.as_ref(), "w0z").await, BTreeSet::from([id]));
    store.close().await;
}

async fn bad_queries_are_400_with_where_and_why(engine: Engine) {
    let app = TestApp::spawn_with(engine, UNLIMITED).await;
    app.deliver(common::small_email(
        "Factura de noviembre",
        "ana@example.org",
    ))
    .await;
    let get = |query: &'static str| {
        let app = &app;
        async move {
            let url = format!("/emails?q={}", encode(query));
            let response = app.get(&url).await;
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = get("factura").await;
    assert_eq!((status, &body["count"]), (200, &json!(1)));
    let (status, body) = get("hola \"sin cerrar").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "Invalid query");
    assert!(
        body["message"].as_str().unwrap().contains("character 6"),
        "{body}"
    );
    let (status, _) = get("before:ayer").await;
    assert_eq!(status, 400);
    let response = app.get("/emails?subject=%00").await;
    assert_eq!(response.status(), 400, "a NUL never matches everything");
    app.stop().await;
}

engine_tests!(
    the_semantics_table_holds_before_and_after_indexing,
    flags_and_dates_are_searchable,
    a_megabyte_of_distinct_words_still_stores,
    bad_queries_are_400_with_where_and_why,
);

fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}
