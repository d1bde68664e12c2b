//! PostgreSQL going away (reliability review): requests fail fast with 503 and
//! `Retry-After`, so ImprovMX retries, instead of hanging for 30 s; `/readyz` answers
//! within a second; and service comes back by itself when the database does. The outage
//! is a TCP relay in front of the real server that starts refusing, so the shared
//! PostgreSQL of the other tests is never stopped.
#![cfg_attr(not(pg_tests), allow(dead_code, unused_imports))]

use crate::common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Engine, TestApp, TestDatabase, small_email};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Relays connections to `upstream` while up; going down cuts every relayed connection
/// and closes the listening socket, so new connections are refused, as they are by a
/// stopped server.
struct Relay {
    address: SocketAddr,
    upstream: String,
    accepting: Option<JoinHandle<()>>,
    cut: watch::Sender<u64>,
}

impl Relay {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut relay = Self {
            address,
            upstream,
            accepting: None,
            cut: watch::channel(0u64).0,
        };
        relay.accept_on(listener);
        relay
    }

    fn accept_on(&mut self, listener: TcpListener) {
        let (upstream, cuts) = (self.upstream.clone(), self.cut.clone());
        self.accepting = Some(tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let mut cut = cuts.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        }));
    }

    async fn go_down(&mut self) {
        if let Some(task) = self.accepting.take() {
            task.abort();
            let _ = task.await;
        }
        self.cut.send_modify(|n| *n += 1);
    }

    async fn come_back(&mut self) {
        let listener = TcpListener::bind(self.address).await.unwrap();
        self.accept_on(listener);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(pg_tests),
    ignore = "set MAILROOM_TEST_POSTGRES_URL to run the PostgreSQL tests"
)]
async fn a_missing_database_gets_a_prompt_503_and_service_resumes_by_itself() {
    let mut database = TestDatabase::new(Engine::Postgres).await;
    let mut url = url::Url::parse(&database.url).unwrap();
    let upstream = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
    let mut relay = Relay::start(upstream).await;
    url.set_port(Some(relay.address.port())).unwrap();
    database.url = url.to_string();
    let app = TestApp::spawn_on(database, common::UNLIMITED).await;
    app.deliver(small_email("before the outage", "a@example.org"))
        .await;

    relay.go_down().await;
    let started = Instant::now();
    let response = app
        .post_webhook(small_email("during the outage", "a@example.org"))
        .await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );

    let started = Instant::now();
    let ready = reqwest::get(app.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 503);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    relay.come_back().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let response = app
            .post_webhook(small_email("after the outage", "a@example.org"))
            .await;
        if response.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "service did not resume");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        reqwest::get(app.url("/readyz")).await.unwrap().status(),
        200
    );
}

/// While the database is away, the shared rate limits fall back to this instance's
/// memory within the check's timeout (fail open to one instance's limits, never to none
/// and never to a refusal), and go back to the database once it answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(pg_tests),
    ignore = "set MAILROOM_TEST_POSTGRES_URL to run the PostgreSQL tests"
)]
async fn limits_fall_back_to_memory_while_the_database_is_away() {
    let mut database = TestDatabase::new(Engine::Postgres).await;
    let direct = database.url.clone();
    let mut url = url::Url::parse(&database.url).unwrap();
    let upstream = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
    let mut relay = Relay::start(upstream).await;
    url.set_port(Some(relay.address.port())).unwrap();
    database.url = url.to_string();
    let app = TestApp::spawn_on(database, &[("RATE_LIMIT_HEALTH", "3/minute")]).await;

    relay.go_down().await;
    let started = Instant::now();
    for n in 0..3 {
        assert_eq!(app.get("/").await.status(), 200, "request {n}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(app.get("/").await.status(), 429, "counted in memory");
    let response = app
        .post_webhook(small_email("during the outage", "a@example.org"))
        .await;
    assert_eq!(
        response.status(),
        503,
        "the store's answer, not the limiter's"
    );

    relay.come_back().await;
    let pool = sqlx::PgPool::connect(&direct).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        app.get("/").await;
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM rate_limit_windows")
            .fetch_one(&pool)
            .await
            .unwrap();
        if rows > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the shared limits never came back"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    pool.close().await;
}
