//! The `Store` conformance suite: the same use cases against SQLite and PostgreSQL.

use crate::common;

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use common::{Engine, TestDatabase, fixture, small_email};
use mailroom::email::EmailId;
use mailroom::inbound::improvmx;
use mailroom::store::{self, EmailQuery, Inserted, Store, StoreError};

async fn open(engine: Engine) -> (std::sync::Arc<dyn Store>, TestDatabase) {
    let database = TestDatabase::new(engine).await;
    let store = store::open(&database.url).await.expect("store opens");
    store.migrate().await.expect("migrations apply");
    (store, database)
}

fn all() -> EmailQuery {
    EmailQuery {
        limit: 100,
        ..EmailQuery::default()
    }
}

async fn an_inserted_email_reads_back_with_its_parts(engine: Engine) {
    let (store, _db) = open(engine).await;
    let email = improvmx::parse(fixture("full-arrays.json").as_bytes(), Utc::now()).unwrap();
    let (id, document, blobs) = (email.id, email.document.clone(), email.blobs.clone());
    assert_eq!(
        store.insert_inbound(email).await.unwrap(),
        Inserted::New(id)
    );
    let stored = store.email(id).await.unwrap().expect("stored");
    assert_eq!(stored.document, document);
    assert!(!stored.processed);
    for (hash, bytes) in blobs {
        assert_eq!(
            store.blob(&hash).await.unwrap().as_deref(),
            Some(bytes.as_slice())
        );
    }
    assert_eq!(
        store.email(EmailId::generate(Utc::now())).await.unwrap(),
        None
    );
    assert_eq!(store.blob("00").await.unwrap(), None);
    store.close().await;
}

async fn migrating_twice_is_harmless(engine: Engine) {
    let (store, _db) = open(engine).await;
    store.migrate().await.unwrap();
    store.close().await;
}

async fn redelivery_returns_the_first_id(engine: Engine) {
    let (store, _db) = open(engine).await;
    let body = fixture("legacy-string-headers.json");
    let first = store
        .insert_inbound(improvmx::parse(body.as_bytes(), Utc::now()).unwrap())
        .await
        .unwrap();
    let again = store
        .insert_inbound(improvmx::parse(body.as_bytes(), Utc::now()).unwrap())
        .await
        .unwrap();
    assert!(matches!(first, Inserted::New(_)));
    assert_eq!(again, Inserted::Duplicate(first.id()));
    assert_eq!(store.list_emails(&all()).await.unwrap().len(), 1);
    store.close().await;
}

/// As a rerun of `import-mongo` does: the same email under its own id again, alone and
/// twice in one batch. Nothing but the first copy is written (mailbox row, change log).
async fn the_same_email_under_its_id_is_stored_once(engine: Engine) {
    let (store, _db) = open(engine).await;
    let email = improvmx::parse(fixture("full-arrays.json").as_bytes(), Utc::now()).unwrap();
    let id = email.id;
    assert_eq!(
        store.insert_inbound(email.clone()).await.unwrap(),
        Inserted::New(id)
    );
    let (again, twice) = tokio::join!(
        store.insert_inbound(email.clone()),
        store.insert_inbound(email)
    );
    assert_eq!(again.unwrap(), Inserted::Duplicate(id));
    assert_eq!(twice.unwrap(), Inserted::Duplicate(id));
    let mailboxes = store.mail_state().mailboxes().await.unwrap();
    assert!(!mailboxes.is_empty());
    assert!(
        mailboxes.iter().all(|mailbox| mailbox.total == 1),
        "{mailboxes:?}"
    );
    assert_eq!(store.changes().events_after(0, 10).await.unwrap().len(), 1);
    store.close().await;
}

async fn concurrent_inserts_and_redeliveries_do_not_race(engine: Engine) {
    let (store, _db) = open(engine).await;
    let repeated = fixture("full-arrays.json");
    let mut tasks = Vec::new();
    for i in 0..60 {
        let store = store.clone();
        let body = if i % 2 == 0 {
            repeated.clone()
        } else {
            small_email(&format!("n{i}"), "a@b.c")
        };
        tasks.push(tokio::spawn(async move {
            store
                .insert_inbound(improvmx::parse(body.as_bytes(), Utc::now()).unwrap())
                .await
                .unwrap()
        }));
    }
    let results: Vec<Inserted> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let repeated_ids: BTreeSet<EmailId> = results.iter().step_by(2).map(|r| r.id()).collect();
    assert_eq!(repeated_ids.len(), 1, "every redelivery got the same id");
    assert_eq!(
        results
            .iter()
            .filter(|r| matches!(r, Inserted::New(_)))
            .count(),
        31
    );
    assert_eq!(store.list_emails(&all()).await.unwrap().len(), 31);
    store.close().await;
}

async fn identical_attachments_are_stored_once_and_shared(engine: Engine) {
    let (store, _db) = open(engine).await;
    let mut one: serde_json::Value = serde_json::from_str(&fixture("full-arrays.json")).unwrap();
    let first = improvmx::parse(one.to_string().as_bytes(), Utc::now()).unwrap();
    one["subject"] = "another email, same PDF".into();
    let second = improvmx::parse(one.to_string().as_bytes(), Utc::now()).unwrap();
    let sha = first.blobs[0].0.clone();
    let (a, b) = (
        store.insert_inbound(first).await.unwrap(),
        store.insert_inbound(second).await.unwrap(),
    );
    assert_ne!(a.id(), b.id());
    assert!(store.blob(&sha).await.unwrap().is_some());
    store.close().await;
}

async fn lists_sort_by_receive_time_not_by_id(engine: Engine) {
    let (store, _db) = open(engine).await;
    let now = Utc::now();
    let older = DateTime::<Utc>::from_timestamp(1_600_000_000, 0).unwrap();
    let mut late_import = improvmx::parse(
        small_email("imported later, received earlier", "a@b.c").as_bytes(),
        older,
    )
    .unwrap();
    late_import.id = EmailId::generate(now + Duration::days(1));
    let recent = improvmx::parse(small_email("received now", "a@b.c").as_bytes(), now).unwrap();
    store.insert_inbound(recent.clone()).await.unwrap();
    store.insert_inbound(late_import.clone()).await.unwrap();
    let listed: Vec<EmailId> = store
        .list_emails(&all())
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(listed, [recent.id, late_import.id]);
    let stored = store.email(late_import.id).await.unwrap().unwrap();
    assert_eq!(stored.received_at, older);
    store.close().await;
}

async fn keyset_pages_walk_both_ways_in_a_list_and_a_mailbox(engine: Engine) {
    let (store, _db) = open(engine).await;
    let start = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
    let mut ids = Vec::new();
    for n in 0..7 {
        // Pairs share a receive time: the id breaks the tie.
        let at = start + Duration::seconds(n / 2);
        let email = improvmx::parse(small_email(&format!("n{n}"), "a@b.c").as_bytes(), at).unwrap();
        ids.push((at, email.id));
        store.insert_inbound(email).await.unwrap();
    }
    ids.sort();
    ids.reverse(); // newest first, as lists go
    let cursor = |(received_at, id): (DateTime<Utc>, EmailId)| store::Cursor { received_at, id };
    for mailbox in [None, Some("ventas@puntoa.ar".to_owned())] {
        let page = |after, before| EmailQuery {
            limit: 3,
            mailbox: mailbox.clone(),
            after,
            before,
            ..EmailQuery::default()
        };
        let listed = |query: EmailQuery| {
            let store = store.clone();
            async move {
                let emails = store.list_emails(&query).await.unwrap();
                emails.iter().map(|e| e.id).collect::<Vec<_>>()
            }
        };
        let expect = |range: std::ops::Range<usize>| {
            ids[range].iter().map(|(_, id)| *id).collect::<Vec<_>>()
        };
        assert_eq!(listed(page(None, None)).await, expect(0..3), "{mailbox:?}");
        assert_eq!(listed(page(Some(cursor(ids[2])), None)).await, expect(3..6));
        assert_eq!(listed(page(Some(cursor(ids[5])), None)).await, expect(6..7));
        // Backwards from the sixth: the three newer ones next to it, oldest first.
        let mut newer = expect(2..5);
        newer.reverse();
        assert_eq!(listed(page(None, Some(cursor(ids[5])))).await, newer);
    }
    store.close().await;
}

/// Makes the store refuse any email whose subject is `poison`, as a failing insert would.
async fn poison_subject(engine: Engine, url: &str) {
    use sqlx::Connection;
    match engine {
        Engine::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
            sqlx::raw_sql(
                "CREATE TRIGGER poison BEFORE INSERT ON emails WHEN new.subject_folded = 'poison' \
                 BEGIN SELECT RAISE(ABORT, 'poisoned email'); END",
            )
            .execute(&mut conn)
            .await
            .unwrap();
            conn.close().await.unwrap();
        }
        Engine::Postgres => {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::raw_sql(
                "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                   IF NEW.subject_folded = 'poison' THEN RAISE EXCEPTION 'poisoned email'; END IF; \
                   RETURN NEW; END $$; \
                 CREATE TRIGGER poison BEFORE INSERT ON emails \
                   FOR EACH ROW EXECUTE FUNCTION poison();",
            )
            .execute(&mut conn)
            .await
            .unwrap();
            conn.close().await.unwrap();
        }
    }
}

async fn one_failing_email_does_not_fail_its_batch(engine: Engine) {
    let (store, db) = open(engine).await;
    poison_subject(engine, &db.url).await;
    let mut bodies: Vec<String> = (0..8)
        .map(|i| small_email(&format!("fine {i}"), "a@b.c"))
        .collect();
    bodies.insert(4, small_email("poison", "a@b.c"));
    bodies.push(fixture("full-arrays.json"));
    // Queued together, so that the SQLite writer takes them as one batch.
    let results =
        futures::future::join_all(bodies.iter().map(|body| {
            store.insert_inbound(improvmx::parse(body.as_bytes(), Utc::now()).unwrap())
        }))
        .await;
    for (i, result) in results.iter().enumerate() {
        if i == 4 {
            assert!(matches!(result, Err(StoreError::Database(_))), "{result:?}");
        } else {
            assert!(
                matches!(result, Ok(Inserted::New(_))),
                "email {i}: {result:?}"
            );
        }
    }
    let stored = store.list_emails(&all()).await.unwrap();
    assert_eq!(stored.len(), 9);
    let full = store
        .email(results[9].as_ref().unwrap().id())
        .await
        .unwrap()
        .unwrap();
    for part in mailroom::inbound::parts_of(&full) {
        let part = part.meta;
        assert!(
            store.blob(&part.blake3).await.unwrap().is_some(),
            "{part:?}"
        );
    }
    store.close().await;
}

async fn a_closed_store_refuses_writes(engine: Engine) {
    let (store, _db) = open(engine).await;
    store.close().await;
    let email = improvmx::parse(b"{}", Utc::now()).unwrap();
    let result = store.insert_inbound(email).await;
    assert!(
        matches!(result, Err(StoreError::Closed | StoreError::Database(_))),
        "{result:?}"
    );
}

/// An email whose every indexed text (sender, subject, message-id, recipient, part name)
/// is `length` bytes long.
fn email_with_long_values(length: usize) -> String {
    let long = |tag: &str| format!("{tag}{}", "x".repeat(length));
    serde_json::json!({
        "from": {"email": format!("{}@example.org", long("sender"))},
        "to": [{"email": format!("{}@puntoa.ar", long("to"))}],
        "subject": long("subject"),
        "message-id": format!("<{}@test>", long("id")),
        "attachments": [{"name": long("name"), "content": "aGk="}],
    })
    .to_string()
}

async fn long_values_store_and_filter(engine: Engine) {
    let (store, _db) = open(engine).await;
    for length in [10 * 1024, 1024 * 1024] {
        let email = improvmx::parse(email_with_long_values(length).as_bytes(), Utc::now()).unwrap();
        let (id, sender) = (email.id, email.from_email().unwrap());
        assert_eq!(
            store.insert_inbound(email).await.unwrap(),
            Inserted::New(id),
            "{length} bytes"
        );
        let by_sender = EmailQuery {
            from_email: Some(sender),
            ..all()
        };
        let found = store.list_emails(&by_sender).await.unwrap();
        assert_eq!(found.iter().map(|e| e.id).collect::<Vec<_>>(), [id]);
        let by_subject = EmailQuery {
            subject: Some("subjectxxx".into()),
            ..all()
        };
        assert!(
            store
                .list_emails(&by_subject)
                .await
                .unwrap()
                .iter()
                .any(|e| e.id == id)
        );
        let stored = store.email(id).await.unwrap().unwrap();
        assert_eq!(
            stored.document["subject"].as_str().unwrap().len(),
            length + 7
        );
    }
    store.close().await;
}

engine_tests!(
    long_values_store_and_filter,
    an_inserted_email_reads_back_with_its_parts,
    migrating_twice_is_harmless,
    redelivery_returns_the_first_id,
    the_same_email_under_its_id_is_stored_once,
    concurrent_inserts_and_redeliveries_do_not_race,
    identical_attachments_are_stored_once_and_shared,
    lists_sort_by_receive_time_not_by_id,
    keyset_pages_walk_both_ways_in_a_list_and_a_mailbox,
    a_closed_store_refuses_writes,
    one_failing_email_does_not_fail_its_batch,
);

/// Several instances may start together on an empty database: sqlx's migrator takes a
/// PostgreSQL advisory lock, so one applies the migrations and the others find them done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(pg_tests),
    ignore = "set MAILROOM_TEST_POSTGRES_URL to run the PostgreSQL tests"
)]
async fn instances_starting_together_migrate_one_database_without_racing() {
    let database = TestDatabase::new(Engine::Postgres).await;
    let starts = (0..3).map(|_| async {
        let store = store::open(&database.url).await?;
        store.migrate().await?;
        Ok::<_, StoreError>(store)
    });
    for started in futures::future::join_all(starts).await {
        let store = started.expect("every instance starts");
        assert!(store.list_emails(&all()).await.unwrap().is_empty());
        store.close().await;
    }
}

#[test]
fn both_engines_have_the_same_migration_versions() {
    let versions = |engine: &str| -> BTreeSet<String> {
        let dir = format!("{}/migrations/{engine}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(versions("sqlite"), versions("postgres"));
}

/// SQLite keeps documents LZ4-compressed (as BLOBs), and reads them back whole; rows
/// of JSON text, as stored before, still read (`search::sqlite_lists_a_common_phrase…`).
#[tokio::test]
async fn sqlite_documents_are_stored_compressed_and_read_back_whole() {
    use sqlx::Connection;
    let (store, db) = open(Engine::Sqlite).await;
    let html = "<p>Estimado cliente, adjuntamos la factura del mes.</p>".repeat(200);
    let mut body: serde_json::Value = serde_json::from_str(&fixture("full-arrays.json")).unwrap();
    body["html"] = html.into();
    let email = improvmx::parse(body.to_string().as_bytes(), Utc::now()).unwrap();
    let (id, document) = (email.id, email.document.clone());
    store.insert_inbound(email).await.unwrap();
    let stored = store.email(id).await.unwrap().expect("stored");
    assert_eq!(stored.document, document);
    store.close().await;
    let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
    let (kind, bytes): (String, i64) =
        sqlx::query_as("SELECT typeof(document), length(document) FROM emails")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(kind, "blob");
    let json = serde_json::to_string(&document).unwrap().len() as i64;
    assert!(bytes * 5 < json, "{bytes} bytes for {json} of JSON");
}

#[tokio::test]
async fn sqlite_files_are_in_wal_mode() {
    use sqlx::Connection;
    let (store, db) = open(Engine::Sqlite).await;
    store.close().await;
    let mut conn = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn unsupported_database_urls_are_refused_with_the_password_hidden() {
    let error = store::open("mysql://root:hunter2@db/mail")
        .await
        .err()
        .expect("refused");
    let text = error.to_string();
    assert!(text.contains("mysql://root:***@db/mail"), "{text}");
    assert!(!text.contains("hunter2"));
}
