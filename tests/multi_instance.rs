//! Three `mailroom` processes on one PostgreSQL database behind a real Caddy with
//! `lb_policy round_robin` (README, "Several instances"): they start together on an
//! empty database, share their rate limits, lockouts, deduplication and webmail
//! sessions, and send each outbox email once while instances are killed with -9.
//!
//! One test, one cluster: starting three debug binaries is most of its cost. Ignored (and
//! reported so) unless PostgreSQL and `caddy` were found at build time; `.ci/run` has both.
#![cfg_attr(not(all(pg_tests, caddy_tests)), allow(dead_code, unused_imports))]

use crate::common;
use crate::multi_instance_support;
use crate::security_support;
use crate::send_support;
use crate::webmail_support;

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use common::{API_KEY, small_email};
use mailroom::security::passwords::Password;
use mailroom::store::{NewUser, Role};
use multi_instance_support::sink::Hold;
use multi_instance_support::{Cluster, HEALTH_LIMIT, LOCKOUT_FAILURES};
use security_support::{client_from, get};
use webmail_support::{Client, PASSWORD};

const WRONG: &str = "wrong-key-0123456789abcdef";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(all(pg_tests, caddy_tests)),
    ignore = "needs PostgreSQL (MAILROOM_TEST_POSTGRES_URL) and caddy"
)]
async fn three_instances_on_one_database_behave_as_one() {
    let mut cluster = Cluster::start(3).await;
    migrations_were_applied_once(&cluster).await;
    a_per_ip_limit_holds_across_instances(&cluster).await;
    a_lockout_made_on_one_instance_holds_on_the_others(&cluster).await;
    a_redelivery_to_another_instance_is_deduplicated(&cluster).await;
    a_webmail_session_works_on_every_instance(&cluster).await;
    outbox_mail_is_sent_once_while_instances_are_killed(&mut cluster).await;
}

/// The three started at once on an empty schema and all came up (`Cluster::start`
/// panics otherwise): sqlx's migrator holds a PostgreSQL advisory lock while it
/// migrates, so one applied each migration and the others found it done.
async fn migrations_were_applied_once(cluster: &Cluster) {
    let pool = sqlx::PgPool::connect(&cluster.database.url).await.unwrap();
    let versions: Vec<(i64, bool)> =
        sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&pool)
            .await
            .unwrap();
    let folder = format!("{}/migrations/postgres", env!("CARGO_MANIFEST_DIR"));
    let files = std::fs::read_dir(folder).unwrap().count();
    assert_eq!(versions.len(), files, "{versions:?}");
    assert!(versions.iter().all(|(_, success)| *success), "{versions:?}");
    pool.close().await;
}

/// Twice the limit through Caddy from one client: round robin gives each instance fewer
/// requests than the limit, yet exactly the limit passes in all.
async fn a_per_ip_limit_holds_across_instances(cluster: &Cluster) {
    let client = client_from("127.0.0.2");
    let url = format!("{}/", cluster.api);
    let mut passed = 0;
    for n in 0..HEALTH_LIMIT * 2 {
        match get(&client, &url, Some(API_KEY)).await.status().as_u16() {
            200 => passed += 1,
            429 => {}
            other => panic!("request {n}: {other}"),
        }
    }
    assert_eq!(passed, HEALTH_LIMIT);
    for (n, instance) in cluster.instances.iter().enumerate() {
        let served = instance
            .metric("mailroom_http_requests_total", &["route=\"/\""])
            .await;
        assert!(served >= 1.0, "instance {n} served none of them");
        assert!(
            served < f64::from(HEALTH_LIMIT),
            "instance {n} served {served}"
        );
    }
}

/// Failures on one instance lock the client out of the others; so do failures spread
/// over all three by Caddy, fewer on each than the threshold.
async fn a_lockout_made_on_one_instance_holds_on_the_others(cluster: &Cluster) {
    let direct = client_from("127.0.0.3");
    let emails = |n: usize| format!("{}/emails", cluster.instances[n].api);
    for _ in 0..LOCKOUT_FAILURES {
        assert_eq!(get(&direct, &emails(0), Some(WRONG)).await.status(), 403);
    }
    for n in 1..3 {
        let response = get(&direct, &emails(n), Some(API_KEY)).await;
        assert_eq!(response.status(), 429, "instance {n}");
    }
    let proxied = client_from("127.0.0.4");
    let url = format!("{}/emails", cluster.api);
    for _ in 0..LOCKOUT_FAILURES {
        assert_eq!(get(&proxied, &url, Some(WRONG)).await.status(), 403);
    }
    for _ in 0..3 {
        assert_eq!(get(&proxied, &url, Some(API_KEY)).await.status(), 429);
    }
    // Another client is not affected.
    let bystander = client_from("127.0.0.5");
    assert_eq!(get(&bystander, &url, Some(API_KEY)).await.status(), 200);
}

/// One email delivered to all three at once, then again to one of them: one id, one row.
async fn a_redelivery_to_another_instance_is_deduplicated(cluster: &Cluster) {
    let payload = small_email("delivered thrice", "sender@example.org");
    let client = reqwest::Client::new();
    let deliveries = cluster.instances.iter().map(|instance| {
        let request = client
            .post(format!("{}/webhook", instance.api))
            .header("content-type", "application/json")
            .body(payload.clone());
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200);
            let json: serde_json::Value = response.json().await.unwrap();
            json["email_id"].as_str().unwrap().to_owned()
        }
    });
    let mut ids = futures::future::join_all(deliveries).await;
    let again = client
        .post(format!("{}/webhook", cluster.instances[1].api))
        .header("content-type", "application/json")
        .body(payload)
        .send()
        .await
        .unwrap();
    let json: serde_json::Value = again.json().await.unwrap();
    ids.push(json["email_id"].as_str().unwrap().to_owned());
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let pool = sqlx::PgPool::connect(&cluster.database.url).await.unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM emails")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 1);
    pool.close().await;
}

/// A login through Caddy (its form from one instance, its POST to the next) opens a
/// session that every instance honours, and a logout on one ends it on all. Failed
/// logins spread over the instances lock the client out of all of them.
async fn a_webmail_session_works_on_every_instance(cluster: &Cluster) {
    let users = mailroom::store::open_users(&cluster.database.url)
        .await
        .unwrap();
    let user = NewUser {
        login: "ana@puntoa.ar".into(),
        password_hash: Password::new(PASSWORD).unwrap().hash(),
        role: Role::User,
        addresses: vec!["ventas@puntoa.ar".into()],
    };
    users.add_user(&user, Utc::now()).await.unwrap().unwrap();
    users.close().await;
    let mut client = Client::at(cluster.webmail.clone());
    assert_eq!(client.login("ana@puntoa.ar", PASSWORD).await.status(), 303);
    for instance in &cluster.instances {
        client.base = instance.webmail.clone();
        assert_eq!(client.get("/").await.status(), 200, "{}", instance.webmail);
    }
    client.base = cluster.instances[0].webmail.clone();
    let token = client.csrf("/").await;
    assert_eq!(
        client.post("/logout", &[("csrf", &token)]).await.status(),
        303
    );
    client.base = cluster.instances[1].webmail.clone();
    assert_eq!(client.get("/").await.status(), 303, "logged out everywhere");

    let mut guesser = Client::at(cluster.webmail.clone());
    for _ in 0..LOCKOUT_FAILURES {
        let response = guesser.login("ana@puntoa.ar", "wrong password!").await;
        assert_eq!(response.status(), 200);
    }
    let response = guesser.login("ana@puntoa.ar", PASSWORD).await;
    assert_eq!(response.status(), 429, "locked out on whichever instance");
}

/// Emails queued on the cluster are sent exactly once while two instances are killed
/// with -9 in the middle of a send: the kill lands while the relay holds the message
/// before accepting it, so the killed instance delivered nothing, and its row, left in
/// `sending`, is taken over by a live instance once `OUTBOX_SENDING_LEASE_SECS` has
/// passed.
///
/// The one double send the design allows (README, "The outbox") is then shown on
/// purpose: an instance killed after the relay accepted a message but before it
/// recorded `sent` never learned of the delivery, so the message goes out again after
/// the lease. SMTP has no way to ask a relay whether it already took a message.
async fn outbox_mail_is_sent_once_while_instances_are_killed(cluster: &mut Cluster) {
    let sink = cluster.sink.clone();
    sink.hold(Some((Hold::BeforeAccepting, Duration::from_millis(300))));
    let recipients: Vec<String> = (0..9).map(|n| format!("n{n}@example.org")).collect();
    for recipient in &recipients {
        queue(cluster, recipient).await;
    }
    for victim in [0, 1] {
        sink.holding(Some(victim)).await;
        cluster.instances[victim].kill();
    }
    wait_until_all_sent(cluster, recipients.len()).await;
    assert_eq!(times_each(&sink.accepted()), times_each(&recipients));

    cluster.restart(0).await;
    sink.hold(Some((Hold::AfterAccepting, Duration::from_millis(300))));
    queue(cluster, "twice@example.org").await;
    let (victim, recipient) = sink.holding(None).await;
    assert_eq!(recipient, "twice@example.org");
    cluster.instances[victim].kill();
    wait_until_all_sent(cluster, recipients.len() + 1).await;
    let accepted = times_each(&sink.accepted());
    assert_eq!(accepted["twice@example.org"], 2, "{accepted:?}");
    assert!(recipients.iter().all(|r| accepted[r] == 1), "{accepted:?}");
}

/// Queues an email to `recipient` through the live instance 2.
async fn queue(cluster: &Cluster, recipient: &str) {
    let mut email = send_support::email(recipient);
    email["to"] = recipient.into();
    let response = reqwest::Client::new()
        .post(format!("{}/api/email/send", cluster.instances[2].api))
        .bearer_auth(API_KEY)
        .json(&email)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
}

async fn wait_until_all_sent(cluster: &Cluster, count: usize) {
    let pool = sqlx::PgPool::connect(&cluster.database.url).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let sent: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE status = 'sent'")
            .fetch_one(&pool)
            .await
            .unwrap();
        if sent as usize >= count {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{sent} of {count} sent"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    pool.close().await;
}

fn times_each(recipients: &[String]) -> HashMap<String, usize> {
    let mut times = HashMap::new();
    for recipient in recipients {
        *times.entry(recipient.clone()).or_default() += 1;
    }
    times
}
