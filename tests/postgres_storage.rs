//! How PostgreSQL stores documents: with LZ4, not pglz, whose compression of a typical
//! email's document cost the database more CPU than the rest of its INSERT.
#![cfg_attr(not(pg_tests), allow(dead_code, unused_imports))]

use crate::common;

use chrono::Utc;
use common::{Engine, TestDatabase};
use mailroom::inbound::improvmx;
use mailroom::store;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(pg_tests),
    ignore = "set MAILROOM_TEST_POSTGRES_URL to run the PostgreSQL tests"
)]
async fn documents_and_word_vectors_are_compressed_with_lz4() {
    let database = TestDatabase::new(Engine::Postgres).await;
    let store = store::open(&database.url).await.unwrap();
    store.migrate().await.unwrap();
    // Compressible text well over the 2 KB at which PostgreSQL compresses a row.
    let text: String = (0..4_000).map(|i| format!("factura{i} ")).collect();
    let payload = json!({"subject": "lz4", "text": text, "html": format!("<p>{text}</p>")});
    let email = improvmx::parse(payload.to_string().as_bytes(), Utc::now()).unwrap();
    let id = store.insert_inbound(email).await.unwrap().id();
    let stored = store.email(id).await.unwrap().unwrap();
    assert_eq!(stored.document["text"], text.as_str(), "read back whole");

    let pool = sqlx::PgPool::connect(&database.url).await.unwrap();
    let (document, words): (Option<String>, Option<String>) = sqlx::query_as(
        "SELECT pg_column_compression(document), pg_column_compression(words) \
         FROM emails WHERE id = $1",
    )
    .bind(id.to_string())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(document.as_deref(), Some("lz4"));
    assert_eq!(words.as_deref(), Some("lz4"));
    pool.close().await;
    store.close().await;
}

/// The vectors stored before were `to_tsvector('simple', words)`; the literal written
/// now must be the same vector, so old and new mail answer the same queries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(pg_tests),
    ignore = "set MAILROOM_TEST_POSTGRES_URL to run the PostgreSQL tests"
)]
async fn word_vectors_equal_what_to_tsvector_made() {
    let database = TestDatabase::new(Engine::Postgres).await;
    let store = store::open(&database.url).await.unwrap();
    store.migrate().await.unwrap();
    let pool = sqlx::PgPool::connect(&database.url).await.unwrap();
    let long_word = "x".repeat(3_000);
    let texts = [
        "Factura de Noviembre: el crédito, la factura y el CRÉDITO otra vez".to_owned(),
        "número 0424242, v2 1e5 año 2024 ñandú Straße İstanbul ǅ 中文 字 ok".to_owned(),
        format!("antes {long_word} después"),
        "repetida ".repeat(300),
        String::new(),
    ];
    for text in texts {
        let payload = json!({ "text": text });
        let email = improvmx::parse(payload.to_string().as_bytes(), Utc::now()).unwrap();
        let words = mailroom::search::text::indexed_words([text.as_str()]);
        let id = store.insert_inbound(email).await.unwrap().id();
        let same: bool = sqlx::query_scalar(
            "SELECT words = to_tsvector('simple', $1) FROM emails WHERE id = $2",
        )
        .bind(&words)
        .bind(id.to_string())
        .fetch_one(&pool)
        .await
        .unwrap();
        assert!(same, "{text:.80}");
    }
    pool.close().await;
    store.close().await;
}
