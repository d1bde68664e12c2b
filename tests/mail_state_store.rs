//! The store conformance suite for mail state (DESIGN §7): mailboxes, per-mailbox
//! flags, deletes that keep shared blobs, and the filing of emails stored before
//! mailboxes, on SQLite and PostgreSQL.

use crate::common;

use std::sync::Arc;

use chrono::Utc;
use common::{Engine, TestDatabase};
use mailroom::email::{EmailId, FlagChange, MailboxCount, NewEmail};
use mailroom::inbound::{filing, improvmx};
use mailroom::store::{self, EmailQuery, Store};
use serde_json::json;
use sqlx::Connection;

async fn open(engine: Engine) -> (Arc<dyn Store>, TestDatabase) {
    let database = TestDatabase::new(engine).await;
    let store = store::open(&database.url).await.expect("store opens");
    store.migrate().await.expect("migrations apply");
    (store, database)
}

/// An email to `to`, with one attachment whose bytes are `attachment` (base64).
fn email(to: &[&str], attachment: &str) -> NewEmail {
    let to: Vec<_> = to.iter().map(|a| json!({ "email": a })).collect();
    let payload = json!({
        "to": to,
        "from": {"email": "sender@example.net"},
        "subject": "hello",
        "message-id": format!("<{}@test>", hex::encode(rand::random::<[u8; 8]>())),
        "text": "hi",
        "attachments": [{"type": "text/plain", "name": "a.txt", "content": attachment}],
    });
    improvmx::parse(payload.to_string().as_bytes(), Utc::now()).unwrap()
}

async fn insert(store: &dyn Store, email: NewEmail) -> EmailId {
    store.insert_inbound(email).await.unwrap().id()
}

fn in_mailbox(mailbox: &str) -> EmailQuery {
    EmailQuery {
        limit: 100,
        mailbox: Some(mailbox.into()),
        ..EmailQuery::default()
    }
}

const READ: FlagChange = FlagChange {
    read: Some(true),
    starred: None,
    trashed: None,
};

async fn each_mailbox_has_its_own_flags(engine: Engine) {
    let (store, _db) = open(engine).await;
    let id = insert(
        store.as_ref(),
        email(&["Ana+news@x.org", "luis@x.org"], "YQ=="),
    )
    .await;
    let mail = store.mail_state();
    assert_eq!(
        mail.mailboxes().await.unwrap(),
        [
            MailboxCount {
                address: "ana@x.org".into(),
                total: 1,
                unread: 1
            },
            MailboxCount {
                address: "luis@x.org".into(),
                total: 1,
                unread: 1
            },
        ]
    );

    assert_eq!(
        mail.set_flags(&[id], Some("ana@x.org"), READ)
            .await
            .unwrap(),
        1
    );
    assert!(
        mail.email_in(id, "ana@x.org")
            .await
            .unwrap()
            .unwrap()
            .processed
    );
    assert!(
        !mail
            .email_in(id, "luis@x.org")
            .await
            .unwrap()
            .unwrap()
            .processed
    );
    // Read in one of two mailboxes: not read as a whole.
    assert!(!store.email(id).await.unwrap().unwrap().processed);
    assert_eq!(mail.mailboxes().await.unwrap()[0].unread, 0);
    assert_eq!(mail.mailboxes().await.unwrap()[1].unread, 1);
    let unread = |mailbox: &str| EmailQuery {
        read: Some(false),
        ..in_mailbox(mailbox)
    };
    assert!(
        store
            .list_emails(&unread("ana@x.org"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .list_emails(&unread("luis@x.org"))
            .await
            .unwrap()
            .len(),
        1
    );

    // Everywhere: every mailbox, and so the email.
    assert_eq!(mail.set_flags(&[id], None, READ).await.unwrap(), 1);
    assert!(store.email(id).await.unwrap().unwrap().processed);
    let star = FlagChange {
        starred: Some(true),
        ..FlagChange::default()
    };
    mail.set_flags(&[id], Some("luis@x.org"), star)
        .await
        .unwrap();
    assert!(
        store.email(id).await.unwrap().unwrap().starred,
        "starred in any"
    );
    let flags = mail.mailboxes_of(id).await.unwrap();
    assert_eq!(flags.len(), 2);
    assert!(!flags[0].starred && flags[1].starred);

    // An unknown id or a mailbox the email is not in finds nothing.
    let other = EmailId::generate(Utc::now());
    assert_eq!(mail.set_flags(&[other], None, READ).await.unwrap(), 0);
    assert_eq!(
        mail.set_flags(&[id], Some("zoe@x.org"), READ)
            .await
            .unwrap(),
        0
    );
    assert_eq!(mail.email_in(id, "zoe@x.org").await.unwrap(), None);
    store.close().await;
}

async fn trashed_mail_is_filtered_and_counted_apart(engine: Engine) {
    let (store, _db) = open(engine).await;
    let kept = insert(store.as_ref(), email(&["ana@x.org"], "YQ==")).await;
    let trashed = insert(store.as_ref(), email(&["ana@x.org"], "Yg==")).await;
    let trash = FlagChange {
        trashed: Some(true),
        ..FlagChange::default()
    };
    let mail = store.mail_state();
    mail.set_flags(&[trashed], None, trash).await.unwrap();
    let ids = |query: EmailQuery| {
        let store = store.clone();
        async move {
            let emails = store.list_emails(&query).await.unwrap();
            emails.into_iter().map(|e| e.id).collect::<Vec<_>>()
        }
    };
    let not_trashed = EmailQuery {
        trashed: Some(false),
        ..in_mailbox("ana@x.org")
    };
    assert_eq!(ids(not_trashed.clone()).await, [kept]);
    let summary = EmailQuery {
        mailbox: None,
        ..not_trashed
    };
    assert_eq!(ids(summary).await, [kept]);
    let only_trash = EmailQuery {
        trashed: Some(true),
        ..in_mailbox("ana@x.org")
    };
    assert_eq!(ids(only_trash).await, [trashed]);
    assert_eq!(mail.mailboxes().await.unwrap()[0].total, 1);
    store.close().await;
}

async fn emails_in_no_mailbox_keep_flags_of_their_own(engine: Engine) {
    let (store, _db) = open(engine).await;
    let mut unfiled = email(&["someone@elsewhere.net"], "YQ==");
    unfiled.keep_mailboxes_in(&["x.org".into()]);
    assert!(unfiled.mailboxes.is_empty());
    let id = insert(store.as_ref(), unfiled).await;
    let mail = store.mail_state();
    assert!(mail.mailboxes().await.unwrap().is_empty());
    assert_eq!(mail.set_flags(&[id], None, READ).await.unwrap(), 1);
    assert!(store.email(id).await.unwrap().unwrap().processed);
    store.close().await;
}

async fn deletes_keep_blobs_that_other_emails_share(engine: Engine) {
    let (store, _db) = open(engine).await;
    let shared = email(&["ana@x.org"], "c2hhcmVk");
    let shared_blob = shared.blobs[0].0.clone();
    let first = insert(store.as_ref(), shared).await;
    let second = insert(store.as_ref(), email(&["luis@x.org"], "c2hhcmVk")).await;
    let own = email(&["ana@x.org"], "b3du");
    let own_blob = own.blobs[0].0.clone();
    let third = insert(store.as_ref(), own).await;
    let mail = store.mail_state();

    assert_eq!(mail.delete(&[first, third]).await.unwrap(), 2);
    assert_eq!(store.email(first).await.unwrap(), None);
    assert!(
        store.blob(&shared_blob).await.unwrap().is_some(),
        "still used"
    );
    assert_eq!(store.blob(&own_blob).await.unwrap(), None, "used by no one");
    assert_eq!(mail.mailboxes_of(first).await.unwrap(), []);
    assert_eq!(mail.delete(&[first]).await.unwrap(), 0);

    assert_eq!(mail.delete(&[second]).await.unwrap(), 1);
    assert_eq!(store.blob(&shared_blob).await.unwrap(), None);
    assert!(mail.mailboxes().await.unwrap().is_empty());
    store.close().await;
}

/// Deletes of emails that share a blob with emails being stored at the same moment: no
/// stored email may lose its bytes.
async fn deletes_never_race_ingests_reusing_a_blob(engine: Engine) {
    let (store, _db) = open(engine).await;
    let blob = email(&["ana@x.org"], "cmFjZQ==").blobs[0].0.clone();
    let mut previous = insert(store.as_ref(), email(&["ana@x.org"], "cmFjZQ==")).await;
    for _ in 0..40 {
        let ingest = tokio::spawn({
            let store = store.clone();
            async move { insert(store.as_ref(), email(&["ana@x.org"], "cmFjZQ==")).await }
        });
        let delete = store.mail_state().delete(&[previous]).await;
        let ingest = ingest.await.unwrap();
        assert_eq!(delete.unwrap(), 1);
        assert!(
            store.blob(&blob).await.unwrap().is_some(),
            "the new email's attachment survives"
        );
        previous = ingest;
    }
    store.close().await;
}

async fn a_redelivery_after_a_delete_is_new_mail(engine: Engine) {
    let (store, _db) = open(engine).await;
    let body = common::fixture("full-arrays.json");
    let parse = || improvmx::parse(body.as_bytes(), Utc::now()).unwrap();
    let first = insert(store.as_ref(), parse()).await;
    store.mail_state().delete(&[first]).await.unwrap();
    let again = store.insert_inbound(parse()).await.unwrap();
    assert!(matches!(again, store::Inserted::New(id) if id != first));
    for (hash, bytes) in parse().blobs {
        assert_eq!(store.blob(&hash).await.unwrap(), Some(bytes));
    }
    store.close().await;
}

/// Emails stored before this version have no mailbox or part rows; the background pass
/// files them, with their old flag, and only then do deletes drop blobs.
async fn emails_stored_before_mailboxes_are_filed(engine: Engine) {
    let (store, db) = open(engine).await;
    let mut old = Vec::new();
    for _ in 0..450 {
        old.push(insert(store.as_ref(), email(&["ana@x.org"], "b2xk")).await);
    }
    store
        .mail_state()
        .set_flags(&old[..1], None, READ)
        .await
        .unwrap();
    store.migrate().await.unwrap(); // the old emails are in the word index too
    forget_filing(engine, &db.url).await;
    assert!(store.mail_state().mailboxes().await.unwrap().is_empty());
    let by_word = EmailQuery {
        limit: 1,
        search: Some(mailroom::search::parse("hi from:sender").unwrap()),
        ..EmailQuery::default()
    };
    assert!(store.list_emails(&by_word).await.unwrap().is_empty());

    // Not filed yet: the blob has users that `email_parts` does not list.
    let blob = email(&["ana@x.org"], "b2xk").blobs[0].0.clone();
    store.mail_state().delete(&old[449..]).await.unwrap();
    assert!(store.blob(&blob).await.unwrap().is_some());

    filing::file_all(store.clone(), vec!["x.org".into()]).await;
    let counts = store.mail_state().mailboxes().await.unwrap();
    assert_eq!((counts[0].total, counts[0].unread), (449, 448));
    assert!(store.mail_state().filing_mark().await.unwrap().is_none());
    assert_eq!(store.list_emails(&by_word).await.unwrap().len(), 1);
    store.mail_state().delete(&old[..449]).await.unwrap();
    assert_eq!(store.blob(&blob).await.unwrap(), None);
    store.close().await;
}

/// SQLite hands the rowid of a deleted newest email out again; the subject index must
/// not take the new email for one it has indexed already.
async fn subjects_stay_searchable_after_deletes(engine: Engine) {
    let (store, _db) = open(engine).await;
    let newest = insert(store.as_ref(), email(&["ana@x.org"], "YQ==")).await;
    store.migrate().await.unwrap(); // indexes every subject stored so far
    store.mail_state().delete(&[newest]).await.unwrap();
    let mut later = email(&["ana@x.org"], "Yg==");
    later.message.subject = Some("Quarterly figures".into());
    later
        .document
        .insert("subject".into(), "Quarterly figures".into());
    let later = insert(store.as_ref(), later).await;
    let query = EmailQuery {
        limit: 10,
        subject: Some("quarterly".into()),
        ..EmailQuery::default()
    };
    let found: Vec<EmailId> = store
        .list_emails(&query)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(found, [later]);
    store.close().await;
}

/// Makes the database look as if its emails were stored before mailboxes existed.
async fn forget_filing(engine: Engine, url: &str) {
    let statements = [
        "DELETE FROM mailbox_emails",
        "DELETE FROM email_parts",
        "UPDATE mail_state_backfill SET done = false, after_id = ''",
        "UPDATE emails SET sender_folded = NULL, recipients_folded = NULL",
    ];
    let search = match engine {
        Engine::Sqlite => "DELETE FROM email_words",
        Engine::Postgres => "UPDATE emails SET words = NULL",
    };
    match engine {
        Engine::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
            for sql in statements.into_iter().chain([search]) {
                sqlx::query(sql).execute(&mut conn).await.unwrap();
            }
        }
        Engine::Postgres => {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            for sql in statements.into_iter().chain([search]) {
                sqlx::query(sql).execute(&mut conn).await.unwrap();
            }
        }
    }
}

engine_tests!(
    each_mailbox_has_its_own_flags,
    trashed_mail_is_filtered_and_counted_apart,
    emails_in_no_mailbox_keep_flags_of_their_own,
    deletes_keep_blobs_that_other_emails_share,
    deletes_never_race_ingests_reusing_a_blob,
    a_redelivery_after_a_delete_is_new_mail,
    emails_stored_before_mailboxes_are_filed,
    subjects_stay_searchable_after_deletes,
);
