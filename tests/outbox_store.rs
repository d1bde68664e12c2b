//! The outbox store on both engines, driven directly: claims, transitions, recovery, limits.

use crate::common;
use crate::send_support;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use common::{Engine, TestApp, TestDatabase};
use mailroom::email::EmailId;
use mailroom::outbound::limits::{SendPolicy, Usage};
use mailroom::outbound::outbox::{
    AttemptOutcome, OutboxStatus, RetryPolicy, Transition, after_attempt,
};
use mailroom::store::outbox::{NewOutboxEmail, OutboxQuery, OutboxStore};
use send_support::*;
use serde_json::json;

async fn outbox(engine: Engine) -> (TestDatabase, Arc<dyn OutboxStore>) {
    let database = TestDatabase::new(engine).await;
    let store = mailroom::store::open(&database.url).await.unwrap();
    store.migrate().await.unwrap();
    store.close().await;
    let outbox = mailroom::store::open_outbox(&database.url).await.unwrap();
    (database, outbox)
}

fn new_email(ip: &str, recipients: usize) -> NewOutboxEmail {
    let now = Utc::now();
    NewOutboxEmail {
        id: EmailId::generate(now),
        client_ip: ip.into(),
        accepted_at: now,
        sender: "ventas@puntoa.ar".into(),
        recipients: (0..recipients)
            .map(|n| format!("r{n}@example.org"))
            .collect(),
        subject: "s".into(),
        summary: json!({"subject": "s"}),
        raw: b"Subject: s\r\n\r\nbody\r\n".to_vec(),
    }
}

async fn queue(outbox: &dyn OutboxStore, email: &NewOutboxEmail) {
    let admit_all = |_: &Usage| true;
    let queued = outbox
        .enqueue(email, Duration::from_secs(86_400), &admit_all)
        .await
        .unwrap();
    assert!(queued);
}

const RETRY: RetryPolicy = RetryPolicy {
    base: Duration::from_secs(60),
    max_delay: Duration::from_secs(3600),
    horizon: Duration::from_secs(86_400),
};

async fn the_state_machine_moves_rows_through_every_state(engine: Engine) {
    let (_db, outbox) = outbox(engine).await;
    let email = new_email("192.0.2.1", 1);
    queue(outbox.as_ref(), &email).await;
    assert_eq!(
        outbox.entry(email.id).await.unwrap().unwrap().status,
        OutboxStatus::Queued
    );

    // Queued → Sending → TemporaryFailure.
    let now = Utc::now();
    let claimed = outbox.claim_due(now).await.unwrap().expect("due");
    assert_eq!((claimed.id, claimed.attempts), (email.id, 1));
    assert_eq!(claimed.recipients, email.recipients);
    assert_eq!(claimed.raw, email.raw);
    assert!(
        outbox.claim_due(now).await.unwrap().is_none(),
        "claimed twice"
    );
    let entry = outbox.entry(email.id).await.unwrap().unwrap();
    assert_eq!(entry.status, OutboxStatus::Sending);
    let t = after_attempt(
        AttemptOutcome::Transient("421 busy".into()),
        1,
        claimed.accepted_at,
        now,
        &RETRY,
    );
    outbox.record(email.id, &t, now).await.unwrap();
    let entry = outbox.entry(email.id).await.unwrap().unwrap();
    assert!(
        matches!(entry.status, OutboxStatus::TemporaryFailure { .. }),
        "{entry:?}"
    );
    assert_eq!(entry.last_error.as_deref(), Some("421 busy"));

    // Not due before its retry time; due after it.
    assert!(outbox.claim_due(now).await.unwrap().is_none());
    let due = outbox.next_due().await.unwrap().unwrap();
    assert!(due > now + chrono::Duration::seconds(59), "{due}");
    let later = now + chrono::Duration::seconds(61);
    let claimed = outbox.claim_due(later).await.unwrap().expect("due again");
    assert_eq!(claimed.attempts, 2);

    // Sending → Sent, into the sent folder.
    let t = after_attempt(
        AttemptOutcome::Delivered("250 OK queued".into()),
        2,
        claimed.accepted_at,
        later,
        &RETRY,
    );
    outbox.record(email.id, &t, later).await.unwrap();
    let entry = outbox.entry(email.id).await.unwrap().unwrap();
    assert_eq!(entry.status, OutboxStatus::Sent);
    assert_eq!(entry.smtp_reply.as_deref(), Some("250 OK queued"));
    assert!(entry.sent_at.is_some());
    let sent = outbox
        .list(&OutboxQuery {
            status: Some("sent".into()),
            limit: 10,
            skip: 0,
        })
        .await
        .unwrap();
    assert_eq!(sent.len(), 1);

    // A recorded row is no longer `sending`: a late duplicate record changes nothing.
    let t = after_attempt(
        AttemptOutcome::Permanent("550 no".into()),
        3,
        claimed.accepted_at,
        later,
        &RETRY,
    );
    outbox.record(email.id, &t, later).await.unwrap();
    assert_eq!(
        outbox.entry(email.id).await.unwrap().unwrap().status,
        OutboxStatus::Sent
    );

    // Sending → PermanentFailure.
    let bounce = new_email("192.0.2.1", 1);
    queue(outbox.as_ref(), &bounce).await;
    let claimed = outbox.claim_due(later).await.unwrap().unwrap();
    let t = after_attempt(
        AttemptOutcome::Permanent("550 5.1.1 no such user".into()),
        1,
        claimed.accepted_at,
        later,
        &RETRY,
    );
    outbox.record(bounce.id, &t, later).await.unwrap();
    let entry = outbox.entry(bounce.id).await.unwrap().unwrap();
    assert_eq!(entry.status, OutboxStatus::PermanentFailure);
    assert_eq!(entry.last_error.as_deref(), Some("550 5.1.1 no such user"));
    outbox.close().await;
}

async fn rows_stuck_in_sending_are_recovered_after_the_lease(engine: Engine) {
    let (_db, outbox) = outbox(engine).await;
    let email = new_email("192.0.2.1", 1);
    queue(outbox.as_ref(), &email).await;
    let now = Utc::now();
    outbox.claim_due(now).await.unwrap().unwrap();
    assert_eq!(
        outbox
            .recover_stuck(now - chrono::Duration::seconds(600), now)
            .await
            .unwrap(),
        0
    );
    assert_eq!(outbox.recover_stuck(now, now).await.unwrap(), 1);
    let entry = outbox.entry(email.id).await.unwrap().unwrap();
    assert!(matches!(
        entry.status,
        OutboxStatus::TemporaryFailure { .. }
    ));
    assert_eq!(outbox.claim_due(now).await.unwrap().unwrap().attempts, 2);
    outbox.close().await;
}

/// Several workers (instances) claiming at once: every row is claimed exactly once.
async fn concurrent_claims_take_each_row_once(engine: Engine) {
    let (db, first) = outbox(engine).await;
    let second = mailroom::store::open_outbox(&db.url).await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..20 {
        let email = new_email("192.0.2.7", 1);
        queue(first.as_ref(), &email).await;
        ids.push(email.id.to_string());
    }
    let now = Utc::now();
    let claim_all = |outbox: Arc<dyn OutboxStore>| async move {
        let mut claimed = Vec::new();
        while let Some(email) = outbox.claim_due(now).await.unwrap() {
            claimed.push(email.id.to_string());
        }
        claimed
    };
    let (a, b, c) = tokio::join!(
        claim_all(first.clone()),
        claim_all(second.clone()),
        claim_all(first.clone())
    );
    let mut all: Vec<String> = a.into_iter().chain(b).chain(c).collect();
    all.sort();
    ids.sort();
    assert_eq!(all, ids);
    first.close().await;
    second.close().await;
}

async fn usage_counts_this_clients_emails_and_everyones_recipients(engine: Engine) {
    let (_db, outbox) = outbox(engine).await;
    queue(outbox.as_ref(), &new_email("192.0.2.1", 2)).await;
    queue(outbox.as_ref(), &new_email("192.0.2.1", 1)).await;
    queue(outbox.as_ref(), &new_email("198.51.100.9", 3)).await;
    let usage = outbox
        .usage("192.0.2.1", Utc::now(), Duration::from_secs(86_400))
        .await
        .unwrap();
    assert_eq!(usage.accepted.len(), 2);
    assert_eq!(usage.recipients_last_day, 6);
    let policy = SendPolicy {
        windows: mailroom::config::parse_rate_windows("2/minute").unwrap(),
        daily_quota: None,
    };
    let admit = |usage: &Usage| policy.admit(usage, 1, Utc::now()).is_ok();
    let refused = outbox
        .enqueue(&new_email("192.0.2.1", 1), policy.lookback(), &admit)
        .await
        .unwrap();
    assert!(!refused);
    let accepted = outbox
        .enqueue(&new_email("198.51.100.9", 1), policy.lookback(), &admit)
        .await
        .unwrap();
    assert!(accepted);
    outbox.close().await;
}

/// Simultaneous requests cannot share out the last slot twice.
async fn concurrent_sends_respect_the_limit_exactly(engine: Engine) {
    let smtp = SmtpServer::start();
    let base = relay_env(smtp.port);
    let app =
        TestApp::spawn_with(engine, &env_with(&base, &[("SEND_RATE_LIMIT", "3/minute")])).await;
    let body = email("Race");
    let requests = (0..10).map(|_| send(&app, &body));
    let results = futures::future::join_all(requests).await;
    let accepted = results.iter().filter(|(status, _)| *status == 202).count();
    let limited = results.iter().filter(|(status, _)| *status == 429).count();
    assert_eq!((accepted, limited), (3, 7), "{results:?}");
    smtp.wait_for(3).await;
}

async fn counts_cover_every_status_and_the_oldest_waiting_email(engine: Engine) {
    let (_db, outbox) = outbox(engine).await;
    let empty = outbox.counts().await.unwrap();
    assert_eq!(empty.by_status.len(), OutboxStatus::NAMES.len());
    assert!(empty.by_status.iter().all(|(_, rows)| *rows == 0));
    assert_eq!(empty.oldest_waiting, None);

    let mut first = new_email("192.0.2.1", 1);
    first.accepted_at -= chrono::Duration::minutes(5);
    let second = new_email("192.0.2.1", 1);
    queue(outbox.as_ref(), &first).await;
    queue(outbox.as_ref(), &second).await;
    let claimed = outbox.claim_due(Utc::now()).await.unwrap().expect("due");
    let sent = Transition {
        status: OutboxStatus::Sent,
        detail: "250 ok".into(),
    };
    outbox.record(claimed.id, &sent, Utc::now()).await.unwrap();

    let counts = outbox.counts().await.unwrap();
    let rows = |name| counts.by_status.iter().find(|(n, _)| *n == name).unwrap().1;
    assert_eq!((rows("queued"), rows("sent"), rows("failed")), (1, 1, 0));
    let waiting = if claimed.id == first.id {
        &second
    } else {
        &first
    };
    let oldest = counts.oldest_waiting.expect("one email waits");
    assert_eq!(
        oldest.timestamp_micros(),
        waiting.accepted_at.timestamp_micros()
    );
}

engine_tests!(
    counts_cover_every_status_and_the_oldest_waiting_email,
    the_state_machine_moves_rows_through_every_state,
    rows_stuck_in_sending_are_recovered_after_the_lease,
    concurrent_claims_take_each_row_once,
    usage_counts_this_clients_emails_and_everyones_recipients,
    concurrent_sends_respect_the_limit_exactly,
);
