//! Per-IP rate limits, webhook authenticity, auth hardening and CORS, over real HTTP.
//! Clients connect from distinct 127.0.0.x addresses, so each is its own client IP.

use crate::common;
use crate::security_support;

use std::time::Duration;

use common::{API_KEY, Engine, TestApp, small_email};
use futures::future::join_all;
use security_support::{assert_rate_limited, client_from, get, status};

const SECRET: &str = "webhook-secret-0123456789";

async fn spawn(vars: &[(&str, &str)]) -> TestApp {
    spawn_on(Engine::Sqlite, vars).await
}

/// The limits' tests run on both engines: PostgreSQL keeps the counters in the database.
async fn spawn_on(engine: Engine, vars: &[(&str, &str)]) -> TestApp {
    TestApp::spawn_with(engine, vars).await
}

async fn every_route_counts_against_its_own_limit(engine: Engine) {
    let app = spawn_on(
        engine,
        &[
            ("RATE_LIMIT_HEALTH", "2/minute"),
            ("RATE_LIMIT_LIST", "3/minute"),
            ("RATE_LIMIT_GET", "4/minute"),
            ("RATE_LIMIT_ATTACHMENT", "1/minute"),
            ("RATE_LIMIT_GLOBAL", "2/hour,5/day"),
        ],
    )
    .await;
    let client = client_from("127.0.0.2");
    let id = "0123456789abcdef01234567";
    let routes = [
        ("/".to_owned(), 2, "2 per 1 minute"),
        ("/emails".to_owned(), 3, "3 per 1 minute"),
        (format!("/emails/{id}"), 4, "4 per 1 minute"),
        (
            format!("/emails/{id}/attachment/a.pdf"),
            1,
            "1 per 1 minute",
        ),
        ("/no/such/route".to_owned(), 2, "2 per 1 hour"),
    ];
    for (path, allowed, limit) in routes {
        for n in 0..allowed {
            let response = get(&client, &app.url(&path), Some(API_KEY)).await;
            assert_ne!(response.status(), 429, "{path} request {n}");
            assert!(response.headers().contains_key("ratelimit"), "{path}");
        }
        let refused = get(&client, &app.url(&path), Some(API_KEY)).await;
        assert_rate_limited(refused, limit).await;
    }
    // Another client starts afresh everywhere.
    let other = client_from("127.0.0.3");
    assert_eq!(status(&other, &app.url("/")).await, 200);
    assert_eq!(status(&other, &app.url("/emails")).await, 200);
}

async fn headers_announce_the_policy_and_what_is_left(engine: Engine) {
    let app = spawn_on(engine, &[("RATE_LIMIT_GLOBAL", "50/hour,200/day")]).await;
    let response = get(&client_from("127.0.0.2"), &app.url("/nowhere"), None).await;
    assert_eq!(response.status(), 404);
    let headers = response.headers();
    assert_eq!(
        headers["ratelimit-policy"],
        "\"global-3600\";q=50;w=3600, \"global-86400\";q=200;w=86400"
    );
    assert_eq!(
        headers["ratelimit"],
        "\"global-3600\";r=49;t=3600, \"global-86400\";r=199;t=86400"
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["cache-control"], "no-store");
}

async fn the_window_resets(engine: Engine) {
    let app = spawn_on(engine, &[("RATE_LIMIT_HEALTH", "2/second")]).await;
    let client = client_from("127.0.0.2");
    assert_eq!(status(&client, &app.url("/")).await, 200);
    assert_eq!(status(&client, &app.url("/")).await, 200);
    let refused = get(&client, &app.url("/"), Some(API_KEY)).await;
    assert_eq!(refused.headers()["retry-after"], "1");
    assert_rate_limited(refused, "2 per 1 second").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(status(&client, &app.url("/")).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_disables_a_limit() {
    let app = spawn(&[("RATE_LIMIT_HEALTH", "off")]).await;
    let client = client_from("127.0.0.2");
    for _ in 0..40 {
        let response = get(&client, &app.url("/"), Some(API_KEY)).await;
        assert_eq!(response.status(), 200);
        assert!(!response.headers().contains_key("ratelimit"));
    }
}

async fn a_hundred_concurrent_requests_never_pass_more_than_the_limit(engine: Engine) {
    let app = spawn_on(engine, &[("RATE_LIMIT_HEALTH", "50/minute")]).await;
    let client = client_from("127.0.0.2");
    let url = app.url("/");
    let statuses = join_all((0..100).map(|_| {
        let (client, url) = (client.clone(), url.clone());
        tokio::spawn(async move { status(&client, &url).await })
    }))
    .await;
    let statuses: Vec<u16> = statuses.into_iter().map(Result::unwrap).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 50);
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_client_cannot_pick_its_ip_with_forwarding_headers() {
    let app = spawn(&[("RATE_LIMIT_HEALTH", "2/minute")]).await;
    let client = client_from("127.0.0.2");
    for n in 0..5 {
        let spoof = format!("198.51.100.{n}");
        let response = client
            .get(app.url("/"))
            .bearer_auth(API_KEY)
            .header("x-forwarded-for", &spoof)
            .header("x-real-ip", &spoof)
            .header("forwarded", format!("for={spoof}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), if n < 2 { 200 } else { 429 }, "{n}");
    }
}

async fn an_open_webhook_is_limited_per_ip(engine: Engine) {
    let app = spawn_on(engine, &[("RATE_LIMIT_WEBHOOK", "2/minute")]).await;
    let client = client_from("127.0.0.2");
    let post = || {
        client
            .post(app.url("/webhook"))
            .header("content-type", "application/json")
            .body(small_email("hi", "a@example.org"))
            .send()
    };
    assert_eq!(post().await.unwrap().status(), 200);
    assert_eq!(post().await.unwrap().status(), 200);
    assert_rate_limited(post().await.unwrap(), "2 per 1 minute").await;
}

async fn with_a_secret_only_the_secret_path_delivers_and_it_is_never_limited(engine: Engine) {
    let app = spawn_on(
        engine,
        &[
            ("WEBHOOK_SECRET", SECRET),
            ("RATE_LIMIT_WEBHOOK", "1/minute"),
        ],
    )
    .await;
    let client = client_from("127.0.0.2");
    let post = |path: String| {
        client
            .post(app.url(&path))
            .header("content-type", "application/json")
            .body(small_email("hi", "a@example.org"))
            .send()
    };
    for _ in 0..5 {
        let response = post(format!("/webhook/{SECRET}")).await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(!response.headers().contains_key("ratelimit"));
    }
    let plain = post("/webhook".into()).await.unwrap();
    assert_eq!(plain.status(), 403);
    let body: serde_json::Value = plain.json().await.unwrap();
    assert_eq!(body["error"], "Invalid webhook secret");
    // Wrong secrets are anonymous traffic: refused, and limited.
    let wrong = post("/webhook/webhook-secret-0123456788".into())
        .await
        .unwrap();
    assert_rate_limited(wrong, "1 per 1 minute").await;
    let query = mailroom::store::EmailQuery {
        limit: 100,
        ..Default::default()
    };
    let stored = app.store.list_emails(&query).await.unwrap();
    assert_eq!(stored.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_secret_a_secret_path_is_not_a_route() {
    let app = spawn(&[]).await;
    let response = client_from("127.0.0.2")
        .post(app.url(&format!("/webhook/{SECRET}")))
        .body(small_email("hi", "a@example.org"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_come_before_the_body_is_read() {
    let app = spawn(&[("WEBHOOK_SECRET", SECRET), ("MAX_WEBHOOK_BYTES", "1024")]).await;
    let big = format!("{{\"text\":\"{}\"}}", "x".repeat(64 * 1024));
    let response = client_from("127.0.0.2")
        .post(app.url("/webhook/not-the-secret-000000"))
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    // The same body on the right path reaches the body limit.
    let response = client_from("127.0.0.2")
        .post(app.url(&format!("/webhook/{SECRET}")))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_allowlist_admits_only_its_addresses_and_they_are_not_limited() {
    let app = spawn(&[
        ("WEBHOOK_ALLOWED_IPS", "127.0.0.2, 10.0.0.0/8"),
        ("RATE_LIMIT_WEBHOOK", "1/minute"),
    ])
    .await;
    let deliver = |ip: &str| {
        client_from(ip)
            .post(app.url("/webhook"))
            .header("content-type", "application/json")
            .body(small_email("hi", "a@example.org"))
            .send()
    };
    for _ in 0..3 {
        assert_eq!(deliver("127.0.0.2").await.unwrap().status(), 200);
    }
    let stranger = deliver("127.0.0.3").await.unwrap();
    assert_eq!(stranger.status(), 403);
    assert_rate_limited(deliver("127.0.0.3").await.unwrap(), "1 per 1 minute").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_come_only_from_one_sane_authorization_header() {
    let app = spawn(&[]).await;
    let client = client_from("127.0.0.2");
    let in_query = get(
        &client,
        &app.url(&format!("/emails?api_key={API_KEY}")),
        None,
    )
    .await;
    assert_eq!(in_query.status(), 401);
    assert_eq!(in_query.headers()["www-authenticate"], "Bearer");
    let in_query = get(
        &client,
        &app.url(&format!("/?token={API_KEY}&key={API_KEY}")),
        None,
    )
    .await;
    assert_eq!(in_query.status(), 401);
    let lower = client
        .get(app.url("/"))
        .header("authorization", format!("bearer {API_KEY}"))
        .send()
        .await
        .unwrap();
    assert_eq!(lower.status(), 200);
    let two = client
        .get(app.url("/"))
        .header("authorization", format!("Bearer {API_KEY}"))
        .header("authorization", format!("Bearer {API_KEY}"))
        .send()
        .await
        .unwrap();
    assert_eq!(two.status(), 400);
    let huge = client
        .get(app.url("/"))
        .header("authorization", format!("Bearer {}", "k".repeat(64 * 1024)))
        .send()
        .await
        .unwrap();
    assert!(huge.status().is_client_error(), "{}", huge.status());
    // The server is still fine.
    assert_eq!(status(&client, &app.url("/")).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_answers_preflights_without_credentials() {
    let app = spawn(&[("RATE_LIMIT_LIST", "1/minute")]).await;
    let client = client_from("127.0.0.2");
    let preflight = |origin: &'static str| {
        client
            .request(reqwest::Method::OPTIONS, app.url("/emails"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    for _ in 0..3 {
        let response = preflight("https://anywhere.example").await.unwrap();
        assert_eq!(response.status(), 200);
        let headers = response.headers();
        assert_eq!(headers["access-control-allow-origin"], "*");
        assert!(!headers.contains_key("access-control-allow-credentials"));
        let allowed = headers["access-control-allow-headers"].to_str().unwrap();
        assert!(allowed.contains("authorization"), "{allowed}");
    }
    // Preflights did not use up the limit; a refusal is readable cross-origin.
    let simple = |()| {
        client
            .get(app.url("/emails"))
            .bearer_auth(API_KEY)
            .header("origin", "https://anywhere.example")
            .send()
    };
    assert_eq!(simple(()).await.unwrap().status(), 200);
    let refused = simple(()).await.unwrap();
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["access-control-allow-origin"], "*");
    let exposed = refused.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap();
    assert!(exposed.contains("retry-after"), "{exposed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_with_a_list_only_names_listed_origins() {
    let app = spawn(&[("CORS_ORIGINS", "https://app.example.org")]).await;
    let client = client_from("127.0.0.2");
    let preflight = |origin: &'static str| {
        client
            .request(reqwest::Method::OPTIONS, app.url("/emails"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .send()
    };
    let listed = preflight("https://app.example.org").await.unwrap();
    assert_eq!(
        listed.headers()["access-control-allow-origin"],
        "https://app.example.org"
    );
    assert!(
        !listed
            .headers()
            .contains_key("access-control-allow-credentials")
    );
    let other = preflight("https://evil.example").await.unwrap();
    assert!(!other.headers().contains_key("access-control-allow-origin"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_answers_no_cors_at_all() {
    let app = spawn(&[("WEBHOOK_SECRET", SECRET)]).await;
    let open = spawn(&[]).await;
    let client = client_from("127.0.0.2");
    for url in [
        app.url(&format!("/webhook/{SECRET}")),
        app.url("/webhook"),
        open.url("/webhook"),
    ] {
        let preflight = client
            .request(reqwest::Method::OPTIONS, &url)
            .header("origin", "https://evil.example")
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
            .await
            .unwrap();
        assert!(
            !preflight.status().is_success(),
            "{url}: preflight {}",
            preflight.status()
        );
        let cors: Vec<_> = preflight
            .headers()
            .keys()
            .filter(|name| name.as_str().starts_with("access-control-"))
            .collect();
        assert!(cors.is_empty(), "{url}: {cors:?}");
    }
    let delivered = client
        .post(app.url(&format!("/webhook/{SECRET}")))
        .header("origin", "https://evil.example")
        .header("content-type", "application/json")
        .body(small_email("hi", "a@example.org"))
        .send()
        .await
        .unwrap();
    assert_eq!(delivered.status(), 200);
    let cors: Vec<_> = delivered
        .headers()
        .keys()
        .filter(|name| name.as_str().starts_with("access-control-"))
        .collect();
    assert!(cors.is_empty(), "{cors:?}");
    // The API keeps its CORS.
    let api = client
        .request(reqwest::Method::OPTIONS, app.url("/emails"))
        .header("origin", "https://anywhere.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(api.headers()["access-control-allow-origin"], "*");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_takes_only_json() {
    let app = spawn(&[("WEBHOOK_SECRET", SECRET)]).await;
    let client = client_from("127.0.0.2");
    let post = |content_type: Option<&'static str>| {
        let mut request = client
            .post(app.url(&format!("/webhook/{SECRET}")))
            .body(small_email("hi", "a@example.org"));
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        request.send()
    };
    // What a browser form or a no-cors fetch can send without a preflight is refused.
    for refused in [
        Some("text/plain"),
        Some("text/plain; charset=utf-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/jsonp"),
        None,
    ] {
        let response = post(refused).await.unwrap();
        assert_eq!(response.status(), 415, "{refused:?}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["success"], false, "{refused:?}");
        assert_eq!(body["error"], "Unsupported media type", "{refused:?}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("application/json")
        );
    }
    for accepted in [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON;charset=UTF-8",
    ] {
        let response = post(Some(accepted)).await.unwrap();
        assert_eq!(response.status(), 200, "{accepted}");
    }
    let query = mailroom::store::EmailQuery {
        limit: 100,
        ..Default::default()
    };
    assert_eq!(app.store.list_emails(&query).await.unwrap().len(), 3);
}

engine_tests!(
    every_route_counts_against_its_own_limit,
    headers_announce_the_policy_and_what_is_left,
    the_window_resets,
    a_hundred_concurrent_requests_never_pass_more_than_the_limit,
    an_open_webhook_is_limited_per_ip,
    with_a_secret_only_the_secret_path_delivers_and_it_is_never_limited,
);
