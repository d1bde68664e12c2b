//! The outbox worker against a real SMTP server: late servers, bounces, restarts, stalls.

use crate::common;
use crate::send_support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Engine, TestApp};
use mailroom::config::Settings;
use mailroom::outbound::outbox::AttemptOutcome;
use mailroom::outbound::smtp::Relay;
use send_support::*;
use serde_json::json;

async fn mail_waits_until_the_smtp_server_comes_up(engine: Engine) {
    let port = reserve_port();
    let base = relay_env(port);
    let app = TestApp::spawn_with(engine, &env_with(&base, &[])).await;
    let id = send_ok(&app, &email("Patience")).await;

    let retrying = wait_for_status(&app, &id, |e| e["status"] == "retrying").await;
    assert!(retrying["attempts"].as_u64().unwrap() >= 1, "{retrying}");
    assert!(
        retrying["lastError"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "{retrying}"
    );
    assert!(retrying["retryAt"].is_string(), "{retrying}");

    let smtp = SmtpServer::start_on_port(port);
    let sent = wait_for_status(&app, &id, |e| e["status"] == "sent").await;
    assert!(sent["attempts"].as_u64().unwrap() >= 2, "{sent}");
    assert_eq!(smtp.wait_for(1).await.len(), 1);
}

async fn a_permanent_failure_is_recorded_with_the_server_reply(engine: Engine) {
    let smtp = SmtpServer::start();
    let base = relay_env(smtp.port);
    let app = TestApp::spawn_with(engine, &env_with(&base, &[])).await;
    let mut body = email("Nobody home");
    body["to"] = json!("bounce@example.org");
    let id = send_ok(&app, &body).await;

    let failed = wait_for_status(&app, &id, |e| e["status"] == "failed").await;
    assert_eq!(
        failed["attempts"], 1,
        "a permanent failure is not retried: {failed}"
    );
    let error = failed["lastError"].as_str().unwrap();
    assert!(
        error.contains("550") && error.contains("Mailbox unavailable"),
        "{error}"
    );
    let (_, list) = app.get_json("/api/email/outbox?status=failed").await;
    assert_eq!(list["count"], 1);
    assert!(smtp.received().is_empty());
}

async fn transient_failures_give_up_at_the_horizon(engine: Engine) {
    let port = reserve_port();
    let base = relay_env(port);
    let app = TestApp::spawn_with(
        engine,
        &env_with(&base, &[("OUTBOX_RETRY_HORIZON_SECS", "1")]),
    )
    .await;
    let id = send_ok(&app, &email("Never")).await;
    let failed = wait_for_status(&app, &id, |e| e["status"] == "failed").await;
    assert!(
        failed["lastError"]
            .as_str()
            .unwrap()
            .starts_with("gave up after"),
        "{failed}"
    );
}

/// Mail accepted before a stop is delivered after the restart, including a row that a
/// crash left in `sending`.
async fn accepted_mail_survives_a_restart(engine: Engine) {
    let port = reserve_port();
    let base = relay_env(port);
    let app = TestApp::spawn_with(engine, &env_with(&base, &[])).await;
    let first = send_ok(&app, &email("Before the restart")).await;
    let second = send_ok(&app, &email("Interrupted")).await;
    for id in [&first, &second] {
        wait_for_status(&app, id, |e| e["status"] == "retrying").await;
    }
    let database = app.stop().await;

    // A crash in the middle of an attempt leaves the row in `sending`.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let outbox = mailroom::store::open_outbox(&database.url).await.unwrap();
    let claimed = outbox
        .claim_due(chrono::Utc::now())
        .await
        .unwrap()
        .expect("a due row");
    outbox.close().await;

    let smtp = SmtpServer::start_on_port(port);
    let restart = env_with(&base, &[("OUTBOX_SENDING_LEASE_SECS", "0")]);
    let app = TestApp::spawn_on(database, &restart).await;
    for id in [&first, &second] {
        wait_for_status(&app, id, |e| e["status"] == "sent").await;
    }
    assert!([&first, &second].contains(&&claimed.id.to_string()));
    assert_eq!(smtp.wait_for(2).await.len(), 2);
    app.stop().await;
}

/// A listener on [::1] that accepts and never greets, and the real server on 127.0.0.1:
/// the message goes through the IPv4 address long before any timeout.
async fn a_stalled_ipv6_address_does_not_hold_up_delivery(engine: Engine) {
    let smtp = SmtpServer::start();
    let staller = match tokio::net::TcpListener::bind(("::1", smtp.port)).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("no IPv6 loopback here ({e}); skipping");
            return;
        }
    };
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = staller.accept().await {
            held.push(socket);
        }
    });
    let settings = settings(&[
        ("SMTP_CONNECT_TIMEOUT_SECS", "10"),
        ("SMTP_COMMAND_TIMEOUT_SECS", "30"),
    ]);
    let relay = Relay::new(&settings.outbound).unwrap();
    let addresses: Vec<SocketAddr> = vec![
        SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, smtp.port)),
        smtp.address(),
    ];
    let started = Instant::now();
    let outcome = relay
        .deliver_via(
            addresses,
            &format!("ventas@{DOMAIN}"),
            &["ana@example.org".into()],
            b"Subject: hi\r\n\r\nhello\r\n",
        )
        .await;
    let took = started.elapsed();
    assert!(
        matches!(outcome, AttemptOutcome::Delivered(_)),
        "{outcome:?}"
    );
    assert!(
        took < Duration::from_secs(3),
        "took {took:?}, the fallback timeout is 10 s"
    );
    assert_eq!(smtp.received().len(), 1);

    // Through the whole app, where `localhost` names both loopbacks (not on every host).
    let resolved: Vec<SocketAddr> = tokio::net::lookup_host(("localhost", smtp.port))
        .await
        .map(Iterator::collect)
        .unwrap_or_default();
    if resolved.iter().any(SocketAddr::is_ipv6) && resolved.iter().any(SocketAddr::is_ipv4) {
        let base = relay_env(smtp.port);
        let vars = env_with(
            &base,
            &[
                ("SMTP_SERVER", "localhost"),
                ("SMTP_CONNECT_TIMEOUT_SECS", "10"),
                ("SMTP_COMMAND_TIMEOUT_SECS", "30"),
            ],
        );
        let app = TestApp::spawn_with(engine, &vars).await;
        let started = Instant::now();
        let id = send_ok(&app, &email("Via localhost")).await;
        wait_for_status(&app, &id, |e| e["status"] == "sent").await;
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "took {:?}",
            started.elapsed()
        );
        assert_eq!(smtp.received().len(), 2);
    } else {
        eprintln!("localhost is not both ::1 and 127.0.0.1 here: the app-level variant is skipped");
    }

    // With SMTP_IP_FAMILY=ipv6 only the stalled address is tried, and the attempt times out
    // as a transient failure rather than hanging.
    let settings = settings_for(
        &[
            ("SMTP_IP_FAMILY", "ipv6"),
            ("SMTP_CONNECT_TIMEOUT_SECS", "0.3"),
            ("SMTP_COMMAND_TIMEOUT_SECS", "0.3"),
        ],
        smtp.port,
    );
    let relay = Relay::new(&settings.outbound).unwrap();
    let outcome = relay
        .deliver(
            &format!("ventas@{DOMAIN}"),
            &["ana@example.org".into()],
            b"x",
        )
        .await;
    assert!(
        matches!(outcome, AttemptOutcome::Transient(_)),
        "{outcome:?}"
    );
}

fn settings(vars: &[(&str, &str)]) -> Settings {
    settings_for(vars, 25)
}

fn settings_for(vars: &[(&str, &str)], port: u16) -> Settings {
    let port = port.to_string();
    let mut all: Vec<(&str, &str)> = vec![
        ("DOMINIO", DOMAIN),
        ("SMTP_SERVER", "::1"),
        ("SMTP_PORT", &port),
        ("SMTP_SEC_TYPE", "NONE"),
    ];
    all.extend_from_slice(vars);
    Settings::from_lookup(
        |name| {
            all.iter()
                .rev()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        },
        &[],
    )
    .unwrap()
}

engine_tests!(
    mail_waits_until_the_smtp_server_comes_up,
    a_permanent_failure_is_recorded_with_the_server_reply,
    transient_failures_give_up_at_the_horizon,
    accepted_mail_survives_a_restart,
    a_stalled_ipv6_address_does_not_hold_up_delivery,
);
