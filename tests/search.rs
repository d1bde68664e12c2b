//! `GET /emails?subject=`: a literal, case-insensitive substring, newest first, served by
//! the trigram index (FTS5 on SQLite, pg_trgm on PostgreSQL) on both engines.

use crate::common;

use common::{Engine, TestApp, small_email};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

/// The subjects of the matching emails, in the order the API lists them.
async fn subjects_matching(app: &TestApp, query: &str) -> Vec<String> {
    let query = utf8_percent_encode(query, NON_ALPHANUMERIC);
    let (status, json) = app
        .get_json(&format!("/emails?limit=100&subject={query}"))
        .await;
    assert_eq!(status, 200, "{json}");
    json["emails"]
        .as_array()
        .expect("an emails array")
        .iter()
        .map(|email| email["subject"].as_str().unwrap_or_default().to_owned())
        .collect()
}

const SUBJECTS: [&str; 10] = [
    "Factura 0001 de Enero",
    "factura 0002 de febrero",
    "Re: FACTURA 0003 (urgente)",
    "100% off [promo] a_b",
    "100 percent off, promo ab",
    "abcd cde",
    "Ñandú Überweisung",
    "quote \"x\" and it's fine",
    "no subject match here",
    "zz",
];

/// Runs `check` on the `SUBJECTS` twice: just delivered, when SQLite has not indexed them
/// yet (it indexes subjects in bulk) and checks them directly, and after a restart, which
/// indexes them, when the trigram index finds them.
async fn with_all_delivered(engine: Engine, check: impl AsyncFn(&TestApp)) {
    let app = TestApp::spawn(engine).await;
    for subject in SUBJECTS {
        app.deliver(small_email(subject, "ana@example.org")).await;
    }
    check(&app).await;
    let app = TestApp::spawn_on(app.stop().await, common::UNLIMITED).await;
    check(&app).await;
}

async fn matches_are_case_insensitive_literal_substrings_newest_first(engine: Engine) {
    with_all_delivered(engine, async |app: &TestApp| {
        assert_eq!(
            subjects_matching(app, "FACTURA").await,
            [
                "Re: FACTURA 0003 (urgente)",
                "factura 0002 de febrero",
                "Factura 0001 de Enero"
            ]
        );
        assert_eq!(
            subjects_matching(app, "tura 0002 de f").await,
            ["factura 0002 de febrero"]
        );
        assert_eq!(
            subjects_matching(app, "ñANDÚ über").await,
            ["Ñandú Überweisung"]
        );
    })
    .await;
}

async fn wildcard_and_syntax_characters_match_only_themselves(engine: Engine) {
    with_all_delivered(engine, async |app: &TestApp| {
        assert_eq!(
            subjects_matching(app, "100% off").await,
            ["100% off [promo] a_b"]
        );
        assert_eq!(
            subjects_matching(app, "a_b").await,
            ["100% off [promo] a_b"]
        );
        assert_eq!(
            subjects_matching(app, "[promo]").await,
            ["100% off [promo] a_b"]
        );
        assert_eq!(
            subjects_matching(app, "(urgente)").await,
            ["Re: FACTURA 0003 (urgente)"]
        );
        assert_eq!(
            subjects_matching(app, "\"x\" and it's").await,
            ["quote \"x\" and it's fine"]
        );
        for nothing in ["100_", "%off", "a%b", "NEAR", "factura AND enero", "*"] {
            assert!(
                subjects_matching(app, nothing).await.is_empty(),
                "{nothing:?} matched"
            );
        }
    })
    .await;
}

async fn trigrams_that_are_not_contiguous_do_not_match(engine: Engine) {
    with_all_delivered(engine, async |app: &TestApp| {
        assert!(subjects_matching(app, "abcde").await.is_empty());
        assert_eq!(subjects_matching(app, "abcd c").await, ["abcd cde"]);
    })
    .await;
}

async fn queries_shorter_than_a_trigram_still_match(engine: Engine) {
    with_all_delivered(engine, async |app: &TestApp| {
        assert_eq!(subjects_matching(app, "zz").await, ["zz"]);
        assert_eq!(subjects_matching(app, "Ñ").await, ["Ñandú Überweisung"]);
        assert_eq!(subjects_matching(app, "%").await, ["100% off [promo] a_b"]);
        assert_eq!(subjects_matching(app, "_").await, ["100% off [promo] a_b"]);
    })
    .await;
}

async fn search_combines_with_the_sender_filter_and_paging(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    for subject in SUBJECTS {
        app.deliver(small_email(subject, "ana@example.org")).await;
    }
    app.deliver(small_email("Factura 0004", "otro@example.org"))
        .await;
    let (_, json) = app
        .get_json("/emails?subject=factura&from_email=ana@example.org&limit=1&skip=1")
        .await;
    assert_eq!(json["count"], 1);
    assert_eq!(json["emails"][0]["subject"], "factura 0002 de febrero");
}

/// Past `RARE_MATCHES` (2,000) SQLite stops sorting index matches and walks the newest
/// emails instead; both paths must give the same page.
async fn a_common_subject_pages_newest_first(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let start = chrono::Utc::now() - chrono::Duration::days(1);
    // 2,000 of 2,200 share "common news".
    let inserts = (0..2_200).map(|i| {
        let subject = if i % 11 != 0 { "Common news" } else { "other" };
        let body = small_email(&format!("{subject} {i:04}"), "ana@example.org");
        let at = start + chrono::Duration::milliseconds(i);
        let email = mailroom::inbound::improvmx::parse(body.as_bytes(), at).unwrap();
        app.store.insert_inbound(email)
    });
    for inserted in futures::future::join_all(inserts).await {
        inserted.unwrap();
    }
    for (query, expected) in [
        ("COMMON NEWS", ["common news 2195", "common news 2194"]),
        ("news 20", ["common news 2095", "common news 2094"]),
        ("n news 0", ["common news 0995", "common news 0994"]),
    ] {
        let query = utf8_percent_encode(query, NON_ALPHANUMERIC);
        let (_, json) = app
            .get_json(&format!("/emails?subject={query}&limit=2&skip=4"))
            .await;
        let subjects: Vec<String> = json["emails"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["subject"].as_str().unwrap().to_lowercase())
            .collect();
        assert_eq!(subjects, expected, "{query}");
    }
}

engine_tests!(
    matches_are_case_insensitive_literal_substrings_newest_first,
    wildcard_and_syntax_characters_match_only_themselves,
    trigrams_that_are_not_contiguous_do_not_match,
    queries_shorter_than_a_trigram_still_match,
    search_combines_with_the_sender_filter_and_paging,
    a_common_subject_pages_newest_first,
);

/// SQLite: a phrase with many matches, all older than the newest 20,000 emails, is not
/// found by walking the newest emails; its matches are sorted instead.
#[tokio::test]
async fn sqlite_lists_a_common_phrase_whose_matches_are_all_old() {
    use mailroom::store::{self, EmailQuery};
    use sqlx::Connection;
    let database = common::TestDatabase::new(Engine::Sqlite).await;
    let store = store::open(&database.url).await.unwrap();
    store.migrate().await.unwrap();
    store.close().await;
    // The oldest 1,000 of 22,000 emails hold "old common".
    let mut conn = sqlx::SqliteConnection::connect(&database.url)
        .await
        .unwrap();
    sqlx::raw_sql(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 22000)
         INSERT INTO emails (id, dedup_key, received_at, processed, from_email, subject_folded, document)
         SELECT printf('%024x', i), 'k' || i, 1700000000000000 + i * 1000, 0, 'a@b.c', s,
                json_object('subject', s)
         FROM (SELECT i, CASE WHEN i <= 1000 THEN printf('old common %04d', i)
                              ELSE printf('recent %05d', i) END AS s FROM n)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    // Migrating indexes them, as a restart would.
    let store = store::open(&database.url).await.unwrap();
    store.migrate().await.unwrap();
    let page = store
        .list_emails(&EmailQuery {
            limit: 3,
            skip: 2,
            subject: Some("old common".into()),
            ..EmailQuery::default()
        })
        .await
        .unwrap();
    let subjects: Vec<&str> = page
        .iter()
        .map(|email| email.document["subject"].as_str().unwrap())
        .collect();
    assert_eq!(
        subjects,
        ["old common 0998", "old common 0997", "old common 0996"]
    );
    store.close().await;
}

/// SQLite: a subject search while new emails join the index in bulk still finds every
/// email stored before it began. The index's matches and its mark are read together: read
/// apart, an index run committing between them hid the emails it had just indexed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_subject_search_misses_nothing_while_emails_are_indexed() {
    use mailroom::store::{self, EmailQuery};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let database = common::TestDatabase::new(Engine::Sqlite).await;
    let store = store::open(&database.url).await.unwrap();
    store.migrate().await.unwrap();
    // Groups of 16, 2 of them "race …": 480 matches (fewer than the 500 that switch to
    // another plan) among 3,840 emails, so about 30 index runs.
    let stored = Arc::new(AtomicUsize::new(0));
    let writer = tokio::spawn({
        let (store, stored) = (store.clone(), stored.clone());
        async move {
            for group in 0..240 {
                let inserts = (0..16).map(|i| {
                    let subject = match i < 2 {
                        true => format!("race {group:03} {i}"),
                        false => format!("filler {group:03} {i:02}"),
                    };
                    let body = small_email(&subject, "ana@example.org");
                    let email =
                        mailroom::inbound::improvmx::parse(body.as_bytes(), chrono::Utc::now());
                    store.insert_inbound(email.unwrap())
                });
                for inserted in futures::future::join_all(inserts).await {
                    inserted.unwrap();
                }
                stored.store((group + 1) * 2, Ordering::SeqCst);
            }
        }
    });
    let query = EmailQuery {
        limit: 1_000,
        subject: Some("race".into()),
        ..EmailQuery::default()
    };
    let mut searches = 0;
    while !writer.is_finished() {
        let before = stored.load(Ordering::SeqCst);
        let found = store.list_emails(&query).await.unwrap().len();
        assert!(
            found >= before,
            "search {searches}: {found} of {before} stored"
        );
        searches += 1;
    }
    writer.await.unwrap();
    assert_eq!(store.list_emails(&query).await.unwrap().len(), 480);
    assert!(searches > 20, "only {searches} searches ran");
    store.close().await;
}
