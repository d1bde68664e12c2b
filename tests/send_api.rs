//! The send API end to end: HTTP in, a real SMTP server out.

use crate::common;
use crate::send_support;

use common::{Engine, TestApp};
use send_support::*;
use serde_json::{Value, json};

async fn app_with_relay(
    engine: Engine,
    smtp: &SmtpServer,
    extra: &[(&'static str, &str)],
) -> TestApp {
    let base = relay_env(smtp.port);
    TestApp::spawn_with(engine, &env_with(&base, extra)).await
}

async fn accepted_mail_arrives_with_envelope_headers_and_body(engine: Engine) {
    let smtp = SmtpServer::start();
    let app = app_with_relay(engine, &smtp, &[]).await;
    let id = send_ok(
        &app,
        &json!({
            "from": format!("Ventas Punto A <ventas@{DOMAIN}>"),
            "to": ["Ana <ana@example.org>", "luis@EXAMPLE.net"],
            "cc": "eva@example.com",
            "bcc": ["hidden@example.com"],
            "subject": "Tu pedido ñandú",
            "body": "Hola Ana,\nyour order has shipped.",
            "isHtml": false,
        }),
    )
    .await;

    let received = smtp.wait_for(1).await;
    let message = &received[0];
    assert_eq!(message.from, format!("ventas@{DOMAIN}"));
    assert_eq!(
        message.to,
        [
            "ana@example.org",
            "luis@example.net",
            "eva@example.com",
            "hidden@example.com"
        ]
    );
    let data = &message.data;
    assert!(
        data.contains(&format!("From: \"Ventas Punto A\" <ventas@{DOMAIN}>")),
        "{data}"
    );
    assert!(
        data.contains("To: Ana <ana@example.org>, luis@example.net"),
        "{data}"
    );
    assert!(data.contains("Cc: eva@example.com"), "{data}");
    assert!(
        !data.to_ascii_lowercase().contains("hidden@"),
        "bcc leaked into the headers: {data}"
    );
    assert!(
        data.contains("Subject: Tu pedido =?utf-8?b?w7FhbmTDug==?="),
        "{data}"
    );
    assert!(
        data.contains(&format!("Message-ID: <{id}@{DOMAIN}>")),
        "{data}"
    );
    assert!(
        data.contains("Content-Type: text/plain; charset=utf-8"),
        "{data}"
    );

    let entry = wait_for_status(&app, &id, |e| e["status"] == "sent").await;
    assert_eq!(entry["attempts"], 1);
    assert_eq!(entry["lastError"], Value::Null);
    assert!(
        entry["smtpReply"].as_str().unwrap().starts_with("250"),
        "{entry}"
    );
    assert_eq!(entry["subject"], "Tu pedido ñandú");
    assert_eq!(entry["bcc"], json!(["hidden@example.com"]));

    let (status, sent) = app.get_json("/api/email/outbox?status=sent").await;
    assert_eq!(status, 200);
    assert_eq!(sent["count"], 1);
    assert_eq!(sent["emails"][0]["id"], id.as_str());
    let (_, failed) = app.get_json("/api/email/outbox?status=failed").await;
    assert_eq!(failed["count"], 0);
    let (status, _) = app.get_json("/api/email/outbox?status=bogus").await;
    assert_eq!(status, 400);
}

async fn html_is_sanitised_as_the_receiving_server_sees_it(engine: Engine) {
    let smtp = SmtpServer::start();
    let app = app_with_relay(engine, &smtp, &[]).await;
    let html = concat!(
        r#"<h1 style="x">Hi</h1><p onclick="steal()">Hello <strong>friend</strong></p>"#,
        r#"<script>alert(1)</script><iframe src="https://evil.example/"></iframe>"#,
        r#"<a href="javascript:alert(1)">bad</a><a href="https://example.org/x">good</a>"#,
        r#"<img src="https://tracker.example/p.gif"><div><em>kept</em></div>"#,
    );
    let mut body = email("Newsletter");
    body["body"] = html.into();
    body["isHtml"] = true.into();
    send_ok(&app, &body).await;

    let data = smtp.wait_for(1).await[0].data.replace("=\r\n", "");
    assert!(
        data.contains("Content-Type: text/html; charset=utf-8"),
        "{data}"
    );
    for kept in [
        "<h1>Hi</h1>",
        "<p>Hello <strong>friend</strong></p>",
        "<em>kept</em>",
        "href=3D\"https://example.org/x\"",
    ] {
        let kept_qp = kept.replace("=\"", "=3D\"");
        assert!(
            data.contains(kept) || data.contains(&kept_qp),
            "missing {kept}: {data}"
        );
    }
    for gone in [
        "script",
        "alert",
        "iframe",
        "evil.example",
        "onclick",
        "style",
        "tracker",
        "<img",
        "<div",
        "javascript",
    ] {
        assert!(!data.contains(gone), "{gone} survived: {data}");
    }
}

/// Every check, each with hostile variants: all 400, naming the check; nothing delivered or queued.
async fn every_validation_rule_refuses_its_hostile_variants(engine: Engine) {
    let smtp = SmtpServer::start();
    let app = app_with_relay(
        engine,
        &smtp,
        &[
            ("SEND_ALLOWED_DOMAINS", "example.org,bücher.example"),
            ("SEND_MAX_URLS", "2"),
        ],
    )
    .await;
    let long_body = "a".repeat(10_001);
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "subject",
            json!("Hi\r\nBcc: victim@example.org"),
            "Header injection detected",
        ),
        (
            "subject",
            json!("Hi\nBcc: victim@example.org"),
            "Header injection detected",
        ),
        ("subject", json!("Hi\rX"), "Header injection detected"),
        ("subject", json!("Hi\u{0}X"), "Header injection detected"),
        ("subject", json!("Hi\u{0B}X"), "Header injection detected"),
        ("subject", json!("Hi\u{0C}X"), "Header injection detected"),
        ("subject", json!("Hi\u{85}X"), "Header injection detected"),
        ("subject", json!("Hi\u{2028}X"), "Header injection detected"),
        ("subject", json!("Hi\u{2029}X"), "Header injection detected"),
        (
            "subject",
            json!("=?utf-8?B?aGkNCkJjYzogdmljdGltQGV4YW1wbGUub3Jn?="),
            "Header injection detected",
        ),
        (
            "subject",
            json!("=?utf-8?Q?hi=0D=0ABcc:_victim@example.org?="),
            "Header injection detected",
        ),
        (
            "to",
            json!("ana@example.org\r\nBcc: victim@example.org"),
            "Header injection detected",
        ),
        (
            "to",
            json!(["Ana\n <ana@example.org>"]),
            "Header injection detected",
        ),
        (
            "from",
            json!(format!("Ventas\r\n <ventas@{DOMAIN}>")),
            "Header injection detected",
        ),
        (
            "cc",
            json!(["ok@example.org", "x@example.org\u{2028}Bcc: y@example.org"]),
            "Header injection detected",
        ),
        ("to", json!("victim!ana@example.org"), "Invalid address"),
        (
            "to",
            json!("ana%victim.example@example.org"),
            "Invalid address",
        ),
        (
            "to",
            json!("@relay.example:ana@example.org"),
            "Invalid address",
        ),
        ("to", json!("\"a@b\"@example.org"), "Invalid address"),
        (
            "to",
            json!("ana@example.org, eve@example.org"),
            "Invalid address",
        ),
        (
            "to",
            json!("Ana <ana@example.org>, Eve <eve@example.org>"),
            "Invalid address",
        ),
        (
            "bcc",
            json!(["ana@example.org;eve@example.org"]),
            "Invalid address",
        ),
        ("to", json!("not-an-address"), "Invalid address"),
        ("to", json!("ana@[127.0.0.1]"), "Invalid address"),
        ("to", json!([]), "Missing field"),
        ("to", json!(null), "Missing field"),
        ("from", json!("ventas@evil.example"), "Sender not allowed"),
        (
            "from",
            json!(format!("ventas@sub.{DOMAIN}")),
            "Sender not allowed",
        ),
        (
            "from",
            json!(format!("ventas@{DOMAIN}.evil.example")),
            "Sender not allowed",
        ),
        ("to", json!("ana@example.com"), "Recipient not allowed"),
        (
            "to",
            json!("ana@EXAMPLE.org.evil.example"),
            "Recipient not allowed",
        ),
        (
            "cc",
            json!(["x@example.org", "y@elsewhere.example"]),
            "Recipient not allowed",
        ),
        (
            "to",
            json!([
                "a@example.org",
                "b@example.org",
                "c@example.org",
                "d@example.org",
                "e@example.org",
                "f@example.org"
            ]),
            "Too many recipients",
        ),
        ("body", json!(long_body), "Body too long"),
        ("subject", json!("Buy now, limited time"), "Spam detected"),
        ("body", json!("Try our VIAGRA today"), "Spam detected"),
        ("body", json!("Amazing offer!!!"), "Spam detected"),
        ("body", json!("Earn $$$ fast"), "Spam detected"),
        (
            "body",
            json!("THIS IS A VERY LOUD MESSAGE FOR YOU"),
            "Spam detected",
        ),
        (
            "body",
            json!("See https://bit.ly/abc"),
            "URL shortener not allowed",
        ),
        (
            "body",
            json!("See https://go.BIT.ly./abc"),
            "URL shortener not allowed",
        ),
        (
            "body",
            json!("See bit.ly/abc please"),
            "URL shortener not allowed",
        ),
        (
            "body",
            json!("https://a.example/ https://b.example/ https://c.example/"),
            "Too many URLs",
        ),
        ("subject", json!(""), "Missing field"),
        ("body", json!("   "), "Missing field"),
    ];
    for (field, value, expected) in &cases {
        let mut body = email("Order update");
        body["to"] = json!("ana@example.org");
        body[*field] = value.clone();
        let (status, json) = send(&app, &body).await;
        assert_eq!(status, 400, "{field}={value}: {json}");
        assert_eq!(json["success"], false, "{json}");
        assert_eq!(json["error"], *expected, "{field}={value}: {json}");
        assert!(
            json["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{json}"
        );
    }
    // Shorteners hidden in an HTML link, entity-encoded or protocol-relative.
    for html in [
        r#"<a href="https://t.co/x">x</a>"#,
        r#"<a href="&#104;ttps://bit&#46;ly/x">x</a>"#,
        r#"<a href="//tinyurl.com/x">x</a>"#,
    ] {
        let mut body = email("Links");
        body["body"] = html.into();
        body["isHtml"] = true.into();
        let (status, json) = send(&app, &body).await;
        assert_eq!(status, 400, "{html}: {json}");
        assert_eq!(json["error"], "URL shortener not allowed", "{html}: {json}");
    }
    // HTML is judged as the text it becomes: tags removed, entities decoded.
    let mut passed = Vec::new();
    for (html, expected) in [
        (
            "vi<span></span>agra cl&#105;ck here!&#33;!",
            "Spam detected",
        ),
        ("<p>vi<b>ag</b>ra</p>", "Spam detected"),
        ("<p>Hello &#36;&#36;&#x24; today</p>", "Spam detected"),
        ("see bit&#46;ly/abc", "URL shortener not allowed"),
        (
            "<p>see <em>bit</em>.ly/abc</p>",
            "URL shortener not allowed",
        ),
    ] {
        let mut body = email("Html");
        body["body"] = html.into();
        body["isHtml"] = true.into();
        let (status, json) = send(&app, &body).await;
        if status != 400 || json["error"] != expected {
            passed.push(format!("{html} -> {status} {json}"));
        }
    }
    assert!(passed.is_empty(), "not refused as expected: {passed:#?}");
    // Bodies that are not the request shape.
    for raw in ["not json", "[]", r#"{"to": 5}"#] {
        let response = app
            .client
            .post(app.url("/api/email/send"))
            .bearer_auth(common::API_KEY)
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{raw}");
    }
    // An IDNA domain in the allowlist matches its Unicode and punycode spellings alike.
    let mut body = email("IDNA");
    body["to"] = json!(["ana@BÜCHER.example", "luis@xn--bcher-kva.example"]);
    send_ok(&app, &body).await;
    smtp.wait_for(1).await;

    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let received = smtp.received();
    assert_eq!(
        received.len(),
        1,
        "a refused request was delivered: {received:?}"
    );
    assert_eq!(
        received[0].to,
        ["ana@xn--bcher-kva.example", "luis@xn--bcher-kva.example"]
    );
    let (_, all) = app.get_json("/api/email/outbox?limit=100").await;
    assert_eq!(all["count"], 1, "a refused request was queued: {all}");
}

async fn limits_answer_429_and_stats_count_accepted_emails(engine: Engine) {
    let smtp = SmtpServer::start();
    let app = app_with_relay(
        engine,
        &smtp,
        &[("SEND_RATE_LIMIT", "2/minute,10/hour,50/day")],
    )
    .await;
    let (_, stats) = app.get_json("/api/email/stats").await;
    assert_eq!(
        stats,
        json!({"success": true, "stats": {
            "ip": "127.0.0.1", "sentLastMinute": 0, "sentLastHour": 0, "sentLastDay": 0,
            "remainingMinute": 2, "remainingHour": 10, "remainingDay": 50,
        }})
    );
    // Refused requests do not count.
    let mut spam = email("x");
    spam["body"] = "FREE MONEY!!!".into();
    assert_eq!(send(&app, &spam).await.0, 400);

    send_ok(&app, &email("one")).await;
    send_ok(&app, &email("two")).await;
    let response = app
        .client
        .post(app.url("/api/email/send"))
        .bearer_auth(common::API_KEY)
        .json(&email("three"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let json: Value = response.json().await.unwrap();
    assert_eq!(json["success"], false);
    assert_eq!(json["error"], "Rate limit exceeded");
    assert_eq!(json["message"], "Limit of 2 emails per minute exceeded");
    let body_retry = json["retryAfter"].as_u64().unwrap();
    assert_eq!(body_retry, retry_after);
    assert!((55..=60).contains(&body_retry), "{json}");

    let (_, stats) = app.get_json("/api/email/stats").await;
    assert_eq!(stats["stats"]["sentLastMinute"], 2);
    assert_eq!(stats["stats"]["remainingMinute"], 0);
    assert_eq!(stats["stats"]["sentLastHour"], 2);
    assert_eq!(stats["stats"]["remainingHour"], 8);
    assert_eq!(stats["stats"]["remainingDay"], 48);
    smtp.wait_for(2).await;
}

async fn the_daily_quota_counts_recipients(engine: Engine) {
    let smtp = SmtpServer::start();
    let app = app_with_relay(engine, &smtp, &[("SMTP_DAILY_QUOTA", "3")]).await;
    let mut two = email("two recipients");
    two["to"] = json!(["a@example.org", "b@example.org"]);
    send_ok(&app, &two).await;
    let (status, json) = send(&app, &two).await;
    assert_eq!(status, 429, "{json}");
    assert!(
        json["message"]
            .as_str()
            .unwrap()
            .contains("SMTP_DAILY_QUOTA"),
        "{json}"
    );
    send_ok(&app, &email("one more")).await;
}

async fn sending_needs_the_api_key(engine: Engine) {
    let smtp = SmtpServer::start();
    let app = app_with_relay(engine, &smtp, &[]).await;
    let response = app
        .client
        .post(app.url("/api/email/send"))
        .json(&email("no key"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let response = app
        .client
        .get(app.url("/api/email/stats"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let (status, _) = app
        .get_json("/api/email/outbox/0123456789abcdef01234567")
        .await;
    assert_eq!(status, 404);
}

/// A bare CR or LF in a plain-text body is never relayed as such: a relay that ends lines
/// at a bare CR would otherwise see `<CR>.<CRLF>` end the message (SMTP smuggling).
async fn plain_text_line_endings_reach_the_relay_as_crlf(engine: Engine) {
    let smtp = SmtpServer::start();
    let app = app_with_relay(engine, &smtp, &[]).await;
    let smuggling = concat!(
        "Hola.\r.\r\nMAIL FROM:<ceo@bank.example>\r\nRCPT TO:<victim@example.org>\r\n",
        "DATA\r\nSubject: urgent\r\n\r\nPlease wire the money.\r\n.\r\n",
    );
    let bodies = [
        smuggling,
        "one\rtwo\nthree\r\n\r\nfour\n\r",
        "caf\u{e9}\r.\rsecond line\n\rthird",
    ];
    for body in bodies {
        let mut request = email("Line endings");
        request["body"] = body.into();
        send_ok(&app, &request).await;
    }
    let received = smtp.wait_for(bodies.len()).await;
    for message in &received {
        assert_eq!(message.to, ["ana@example.org"], "{message:?}");
        let bare = bare_line_breaks(&message.raw);
        assert!(
            bare.is_empty(),
            "bare CR or LF at {bare:?}: {:?}",
            message.data
        );
    }
    let smuggled = received
        .iter()
        .find(|m| m.data.contains("MAIL FROM:<ceo@bank.example>"))
        .expect("the smuggling attempt arrives as the body of one message");
    assert!(
        smuggled.data.contains(
            "\r\n\r\nHola.\r\n.\r\nMAIL FROM:<ceo@bank.example>\r\nRCPT TO:<victim@example.org>\r\n"
        ),
        "{:?}",
        smuggled.data
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(smtp.received().len(), bodies.len(), "{:?}", smtp.received());
}

/// A subject of the longest accepted length still fits SMTP's line limit, however it is
/// made, and reads back as sent.
async fn the_longest_subjects_are_delivered_and_decode_to_the_original(engine: Engine) {
    let smtp = SmtpServer::start();
    // Polling the outbox is under the global limit.
    let app = app_with_relay(engine, &smtp, &[("RATE_LIMIT_GLOBAL", "off")]).await;
    let subjects = [
        "a".repeat(998),
        format!("Informe {}", "x".repeat(990)),
        format!("Pedido {}", "ñandú".repeat(198)),
        "palabra ".repeat(124) + "fin123",
        format!("{} {}", "b".repeat(500), "ñ".repeat(497)),
    ];
    for subject in &subjects {
        assert!(
            subject.chars().count() <= 998,
            "{}",
            subject.chars().count()
        );
        let id = send_ok(&app, &email(subject)).await;
        let entry = wait_for_status(&app, &id, |e| {
            e["status"] != "queued" && e["status"] != "sending"
        })
        .await;
        assert_eq!(entry["status"], "sent", "{:.300}", entry.to_string());
        let received = smtp.received();
        let message = received
            .iter()
            .find(|m| m.data.contains(&format!("<{id}@{DOMAIN}>")))
            .expect("delivered");
        for line in message.data.split("\r\n") {
            assert!(line.len() <= 998, "a line of {} octets", line.len());
        }
        let header = raw_header(&message.data, "Subject").expect("a Subject header");
        assert_eq!(&decode_header(&header), subject, "sent as {header:?}");
    }
}

async fn send_as(app: &TestApp, client: &str, body: &Value) -> (u16, Value) {
    let response = app
        .client
        .post(app.url("/api/email/send"))
        .bearer_auth(common::API_KEY)
        .header("x-forwarded-for", client)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Send limits count an IPv6 client by its /64, as the HTTP limits do: one subscriber
/// cannot take a fresh quota from each of its 2^64 addresses. (The test client is the
/// trusted proxy, loopback, so its `X-Forwarded-For` names the client.)
async fn send_limits_count_ipv6_clients_per_64(engine: Engine) {
    let smtp = SmtpServer::start();
    let app = app_with_relay(engine, &smtp, &[("SEND_RATE_LIMIT", "2/minute")]).await;
    let mut statuses = Vec::new();
    for client in ["2001:db8:0:1::2", "2001:db8:0:1::3", "2001:db8:0:1:ffff::4"] {
        statuses.push(send_as(&app, client, &email("per 64")).await);
    }
    assert_eq!(statuses[0].0, 202, "{statuses:?}");
    assert_eq!(statuses[1].0, 202, "{statuses:?}");
    assert_eq!(
        statuses[2].0, 429,
        "a third address of the /64: {statuses:?}"
    );
    assert_eq!(
        statuses[2].1["message"],
        "Limit of 2 emails per minute exceeded"
    );
    // Another /64 and an IPv4 client have their own quotas.
    assert_eq!(
        send_as(&app, "2001:db8:0:2::2", &email("next 64")).await.0,
        202
    );
    assert_eq!(send_as(&app, "192.0.2.7", &email("ipv4")).await.0, 202);

    let response = app
        .client
        .get(app.url("/api/email/stats"))
        .bearer_auth(common::API_KEY)
        .header("x-forwarded-for", "2001:db8:0:1::99")
        .send()
        .await
        .unwrap();
    let stats: Value = response.json().await.unwrap();
    assert_eq!(stats["stats"]["ip"], "2001:db8:0:1::99", "{stats}");
    assert_eq!(stats["stats"]["sentLastMinute"], 2, "{stats}");
    assert_eq!(stats["stats"]["remainingMinute"], 0, "{stats}");
}

engine_tests!(
    send_limits_count_ipv6_clients_per_64,
    plain_text_line_endings_reach_the_relay_as_crlf,
    the_longest_subjects_are_delivered_and_decode_to_the_original,
    accepted_mail_arrives_with_envelope_headers_and_body,
    html_is_sanitised_as_the_receiving_server_sees_it,
    every_validation_rule_refuses_its_hostile_variants,
    limits_answer_429_and_stats_count_accepted_emails,
    the_daily_quota_counts_recipients,
    sending_needs_the_api_key,
);
