//! The plans `q=` picks by how many emails a word matches (store/sqlite/search.rs,
//! store/postgres/search.rs), and the unread ones' partial indexes, give the same pages
//! as the model of the seeded mail, on both engines: a common word (500+ matches) whose
//! page is found by walking the newest emails and one whose matches are older than the
//! walk reaches, a rare word, a word in no email, negation, and `is:unread from:` inside
//! and outside a mailbox.

use crate::common;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use common::{Engine, TestDatabase};
use futures::future::join_all;
use mailroom::email::{EmailId, FlagChange};
use mailroom::inbound::improvmx;
use mailroom::search;
use mailroom::store::{self, EmailQuery, Store};
use serde_json::json;

/// One seeded email, as the test expects to find it.
#[derive(Clone)]
struct Seeded {
    id: EmailId,
    received_at: DateTime<Utc>,
    text: String,
    from: &'static str,
    mailbox: &'static str,
}

/// How many emails hold the common word: above the plans' threshold of 500.
const COMMON: usize = 600;

/// The seeded mail, in the order it is stored (which SQLite's walk bound follows):
/// first an email received an hour ago, then `COMMON` emails with "comun" received a day
/// before it (three of them also "raro"), then 5 with "comun" received after it. So a
/// walk of the newest emails finds 5 matches, and a page of more is found among the old.
async fn seed(store: &dyn Store) -> Vec<Seeded> {
    let start = Utc::now() - Duration::hours(1);
    let mut plan = vec![(start, "inicio".to_owned())];
    for i in 0..COMMON {
        let rare = if i % 200 == 7 { " raro" } else { "" };
        let at = start - Duration::days(1) - Duration::seconds(i as i64);
        plan.push((at, format!("comun viejo{rare} {i}")));
    }
    for i in 1..=5 {
        plan.push((start + Duration::minutes(i), format!("comun reciente {i}")));
    }
    let mut seeded = Vec::new();
    // In chunks, concurrently: the writers batch them.
    for chunk in plan.chunks(64) {
        let offset = seeded.len();
        let stored = chunk.iter().enumerate().map(|(n, (at, text))| {
            let n = offset + n;
            let from = if n % 3 == 0 {
                "ana@example.org"
            } else {
                "luis@example.net"
            };
            let mailbox = if n % 2 == 0 {
                "ventas@x.org"
            } else {
                "soporte@x.org"
            };
            let payload = json!({
                "subject": format!("correo {n}"),
                "from": {"email": from},
                "to": [{"email": mailbox}],
                "message-id": format!("<plan-{n}@test>"),
                "text": text,
            });
            async move {
                let email = improvmx::parse(payload.to_string().as_bytes(), *at).unwrap();
                let id = store.insert_inbound(email).await.unwrap().id();
                Seeded {
                    id,
                    received_at: *at,
                    text: text.clone(),
                    from,
                    mailbox,
                }
            }
        });
        seeded.extend(join_all(stored).await);
    }
    seeded
}

/// The ids of the emails `wanted` keeps, newest first.
fn newest_first(seeded: &[Seeded], wanted: impl Fn(&Seeded) -> bool) -> Vec<EmailId> {
    let mut kept: Vec<&Seeded> = seeded.iter().filter(|e| wanted(e)).collect();
    kept.sort_by_key(|e| std::cmp::Reverse((e.received_at, e.id.to_string())));
    kept.into_iter().map(|e| e.id).collect()
}

fn has_word(email: &Seeded, word: &str) -> bool {
    email.text.split(' ').any(|w| w == word)
}

/// A page of `q` as the API asks for it (trashed mail left out).
async fn page(store: &dyn Store, q: &str, limit: u32, skip: u64) -> Vec<EmailId> {
    let query = EmailQuery {
        limit,
        skip,
        trashed: Some(false),
        search: Some(search::parse(q).unwrap()),
        ..EmailQuery::default()
    };
    ids(store, &query).await
}

/// The ids of the page `query` asks for, in its order.
async fn ids(store: &dyn Store, query: &EmailQuery) -> Vec<EmailId> {
    let emails = store.list_emails(query).await;
    emails.unwrap().into_iter().map(|email| email.id).collect()
}

async fn open(engine: Engine) -> (Arc<dyn Store>, TestDatabase) {
    let database = TestDatabase::new(engine).await;
    let store = store::open(&database.url).await.expect("store opens");
    store.migrate().await.expect("migrations apply");
    (store, database)
}

/// Every word page, checked against the model; `when` names the index's state.
async fn check_words(store: &dyn Store, seeded: &[Seeded], when: &str) {
    let common = newest_first(seeded, |e| has_word(e, "comun"));
    let rare = newest_first(seeded, |e| has_word(e, "raro"));
    let common_not_rare = newest_first(seeded, |e| has_word(e, "comun") && !has_word(e, "raro"));
    let cases: [(&str, u32, u64, &[EmailId]); 7] = [
        // The newest-first walk fills these…
        ("comun", 3, 0, &common[..3]),
        ("comun", 3, 2, &common[2..5]),
        // … not these: the matches past the 5th are older than the walk reaches.
        ("comun", 10, 0, &common[..10]),
        ("comun", 10, 300, &common[300..310]),
        ("raro", 10, 0, &rare),
        ("comun raro", 10, 0, &rare),
        ("comun -raro", 10, 0, &common_not_rare[..10]),
    ];
    for (q, limit, skip, expected) in cases {
        let found = page(store, q, limit, skip).await;
        assert_eq!(
            found, expected,
            "{q:?}, limit {limit}, skip {skip} ({when})"
        );
    }
    assert_eq!(rare.len(), 3);
    assert!(page(store, "ninguno", 10, 0).await.is_empty(), "{when}");
    assert!(
        page(store, "raro ninguno", 10, 0).await.is_empty(),
        "{when}"
    );
}

async fn words_common_and_rare_page_newest_first(engine: Engine) {
    let (store, db) = open(engine).await;
    let seeded = seed(store.as_ref()).await;
    check_words(store.as_ref(), &seeded, "just stored").await;
    store.migrate().await.unwrap(); // indexes every email stored so far
    check_words(store.as_ref(), &seeded, "indexed").await;
    if engine == Engine::Postgres {
        // With statistics, PostgreSQL skips the lookup of a word they count as common.
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        sqlx::query("ANALYZE emails").execute(&pool).await.unwrap();
        let common: Option<f64> = sqlx::query_scalar(
            "SELECT f.freq::float8 FROM pg_stats s CROSS JOIN LATERAL \
             unnest(s.most_common_elems::text::text[], s.most_common_elem_freqs) \
             AS f(lexeme, freq) WHERE s.tablename = 'emails' AND f.lexeme = 'comun'",
        )
        .fetch_optional(&pool)
        .await
        .unwrap();
        assert!(common.is_some_and(|f| f > 0.9), "statistics: {common:?}");
        pool.close().await;
        check_words(store.as_ref(), &seeded, "analyzed").await;
    }
    store.close().await;
}

/// `is:unread from:` with some of the sender's emails read (one only in its mailbox) and
/// one trashed, inside a mailbox and outside.
async fn unread_from_a_sender_inside_and_outside_a_mailbox(engine: Engine) {
    let (store, _db) = open(engine).await;
    let seeded = seed(store.as_ref()).await;
    let ana: Vec<&Seeded> = seeded
        .iter()
        .filter(|e| e.from == "ana@example.org")
        .collect();
    let mail = store.mail_state();
    let change = |read, trashed| FlagChange {
        read,
        starred: None,
        trashed,
    };
    // Read everywhere, then the same in their mailbox only, then trashed.
    let read: Vec<EmailId> = ana.iter().step_by(4).map(|e| e.id).collect();
    mail.set_flags(&read, None, change(Some(true), None))
        .await
        .unwrap();
    let read_in_mailbox = ana[1];
    mail.set_flags(
        &[read_in_mailbox.id],
        Some(read_in_mailbox.mailbox),
        change(Some(true), None),
    )
    .await
    .unwrap();
    let trashed = ana[2].id;
    mail.set_flags(&[trashed], None, change(None, Some(true)))
        .await
        .unwrap();
    let unread = |e: &Seeded| {
        e.from == "ana@example.org"
            && !read.contains(&e.id)
            && e.id != read_in_mailbox.id
            && e.id != trashed
    };
    let expected = newest_first(&seeded, unread);
    assert_eq!(
        page(store.as_ref(), "is:unread from:ana", 10, 0).await,
        expected[..10]
    );
    let all = page(store.as_ref(), "is:unread from:ana", 500, 0).await;
    assert_eq!(all, expected);
    for mailbox in ["ventas@x.org", "soporte@x.org"] {
        let expected = newest_first(&seeded, |e| unread(e) && e.mailbox == mailbox);
        let query = EmailQuery {
            limit: 500,
            mailbox: Some(mailbox.into()),
            trashed: Some(false),
            search: Some(search::parse("is:unread from:ana").unwrap()),
            ..EmailQuery::default()
        };
        assert_eq!(ids(store.as_ref(), &query).await, expected, "in {mailbox}");
    }
    store.close().await;
}

engine_tests!(
    words_common_and_rare_page_newest_first,
    unread_from_a_sender_inside_and_outside_a_mailbox,
);
