//! The read API over real HTTP: auth, listing, filters, pagination, single emails, downloads.

use crate::common;

use base64::Engine as _;
use common::{API_KEY, Engine, TestApp, fixture, small_email};
use serde_json::Value;

fn base64_field(fixture_name: &str, list: &str) -> Vec<u8> {
    let payload: Value = serde_json::from_str(&fixture(fixture_name)).unwrap();
    let content = payload[list][0]["content"].as_str().unwrap();
    base64::engine::general_purpose::STANDARD
        .decode(content)
        .unwrap()
}

async fn protected_routes_need_a_key(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let id = app.deliver(fixture("full-arrays.json")).await;
    for path in [
        "/".to_owned(),
        "/emails".into(),
        format!("/emails/{id}"),
        format!("/emails/{id}/attachment/factura-0001.pdf"),
    ] {
        let missing = app.client.get(app.url(&path)).send().await.unwrap();
        assert_eq!(missing.status(), 401, "{path}");
        assert_eq!(missing.headers()["www-authenticate"], "Bearer");
        let json: Value = missing.json().await.unwrap();
        assert_eq!(json["success"], false);

        let wrong = app
            .client
            .get(app.url(&path))
            .bearer_auth("wrong-key")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 403, "{path}");
        let json: Value = wrong.json().await.unwrap();
        assert_eq!(json["error"], "Invalid API key");
    }
    let lowercase = app
        .client
        .get(app.url("/emails"))
        .header("authorization", format!("bearer {API_KEY}"))
        .send()
        .await
        .unwrap();
    assert_eq!(lowercase.status(), 200);
    let in_query = app
        .client
        .get(app.url(&format!("/emails?api_key={API_KEY}")))
        .send()
        .await
        .unwrap();
    assert_eq!(in_query.status(), 401);
}

async fn health_answers_the_old_shape(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let (status, json) = app.get_json("/").await;
    assert_eq!(status, 200);
    assert_eq!(json["status"], "healthy");
    assert_eq!(json["service"], "ImprovMX Webhook");
    let timestamp = json["timestamp"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(timestamp).is_ok(),
        "{timestamp}"
    );
}

async fn the_list_is_newest_first_with_metadata_not_base64(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let first = app.deliver(fixture("full-arrays.json")).await;
    let second = app.deliver(fixture("multi-recipient-unicode.json")).await;
    let (status, json) = app.get_json("/emails").await;
    assert_eq!(status, 200);
    assert_eq!(json["success"], true);
    assert_eq!(json["count"], 2);
    let emails = json["emails"].as_array().unwrap();
    assert_eq!(emails[0]["_id"], second);
    assert_eq!(emails[1]["_id"], first);
    let pdf = &emails[1]["attachments"][0];
    assert_eq!(pdf["name"], "factura-0001.pdf");
    assert_eq!(pdf["type"], "application/pdf");
    assert_eq!(pdf["size"], 586);
    assert!(pdf.get("content").is_none(), "no base64 in lists");
    assert_eq!(pdf["url"], format!("/emails/{first}/attachments/0"));
    assert_eq!(emails[1]["inlines"][0]["cid"], "logo-0001@example.org");
    assert_eq!(emails[1]["processed"], false);
    let received_at = emails[1]["received_at"].as_str().unwrap();
    assert!(received_at.ends_with('Z'), "{received_at}");
}

async fn limit_and_skip_paginate(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let mut ids = Vec::new();
    for i in 0..15 {
        ids.push(
            app.deliver(small_email(&format!("page {i}"), "a@example.org"))
                .await,
        );
    }
    ids.reverse();
    let (_, default) = app.get_json("/emails").await;
    assert_eq!(default["count"], 10);
    let (_, page) = app.get_json("/emails?limit=5&skip=5").await;
    let page_ids: Vec<&str> = page["emails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        page_ids,
        ids[5..10].iter().map(String::as_str).collect::<Vec<_>>()
    );
    let (_, clamped) = app.get_json("/emails?limit=1000").await;
    assert_eq!(clamped["count"], 15);
    let (_, zero) = app.get_json("/emails?limit=0").await;
    assert_eq!(zero["count"], 1);
    let (_, beyond) = app.get_json("/emails?skip=9223372036854775807").await;
    assert_eq!(beyond["count"], 0);
    for bad in [
        "/emails?skip=-1",
        "/emails?skip=9223372036854775808",
        "/emails?limit=ten",
        "/emails?skip=1e9",
        "/emails?limit=%ZZ",
    ] {
        let (status, json) = app.get_json(bad).await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(json["success"], false);
    }
}

async fn from_email_filter_is_case_insensitive(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let ana = app.deliver(small_email("one", "Ana@Example.org")).await;
    app.deliver(small_email("two", "bob@example.org")).await;
    let (_, json) = app.get_json("/emails?from_email=ANA@example.ORG").await;
    assert_eq!(json["count"], 1);
    assert_eq!(json["emails"][0]["_id"], ana);
}

async fn subject_filter_is_a_literal_case_insensitive_substring(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let subjects = [
        "Factura de Noviembre",
        "100% off_sale (now) [x]",
        "plain",
        "Ünïcödé ÉTÉ",
        "100 percent offXsale",
    ];
    let mut ids = std::collections::HashMap::new();
    for subject in subjects {
        ids.insert(
            subject,
            app.deliver(small_email(subject, "a@example.org")).await,
        );
    }
    let cases: [(&str, &[&str]); 8] = [
        ("factura", &["Factura de Noviembre"]),
        ("NOVIEMBRE", &["Factura de Noviembre"]),
        ("%", &["100% off_sale (now) [x]"]),
        ("_", &["100% off_sale (now) [x]"]),
        ("(now)", &["100% off_sale (now) [x]"]),
        ("[x]", &["100% off_sale (now) [x]"]),
        ("été", &["Ünïcödé ÉTÉ"]),
        ("no such subject", &[]),
    ];
    for (query, expected) in cases {
        let encoded: String = url_encode(query);
        let (status, json) = app.get_json(&format!("/emails?subject={encoded}")).await;
        assert_eq!(status, 200, "{query}");
        let mut found: Vec<&str> = json["emails"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["_id"].as_str().unwrap())
            .collect();
        let mut wanted: Vec<&str> = expected.iter().map(|s| ids[s].as_str()).collect();
        found.sort();
        wanted.sort();
        assert_eq!(found, wanted, "subject={query}");
    }
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn one_email_by_id(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let id = app.deliver(fixture("full-arrays.json")).await;
    let (status, json) = app.get_json(&format!("/emails/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(json["success"], true);
    let email = &json["email"];
    assert_eq!(email["_id"], id);
    assert_eq!(email["subject"], "Factura de noviembre");
    assert_eq!(
        email["message-id"],
        "<CAF0001.invoice-nov@mail.example.org>"
    );
    assert_eq!(
        email["headers"]["Received-SPF"].as_array().unwrap().len(),
        1
    );
    assert_eq!(email["return-path"]["email"], "bounces@example.org");
    assert_eq!(email["timestamp"], 1_731_586_364);

    let (status, json) = app.get_json("/emails/not-an-id").await;
    assert_eq!(status, 400);
    assert_eq!(json["success"], false);
    let (status, json) = app.get_json("/emails/0123456789abcdef01234567").await;
    assert_eq!(status, 404);
    assert_eq!(json["error"], "Email not found");
}

async fn attachments_and_inlines_download_with_identical_bytes(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let id = app.deliver(fixture("full-arrays.json")).await;

    let pdf = app
        .get(&format!("/emails/{id}/attachment/factura-0001.pdf"))
        .await;
    assert_eq!(pdf.status(), 200);
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    assert_eq!(pdf.headers()["x-content-type-options"], "nosniff");
    assert_eq!(
        pdf.headers()["content-disposition"],
        "attachment; filename=\"factura-0001.pdf\"",
        "parts of `attachments` download, as the old service's did"
    );
    assert_eq!(
        pdf.bytes().await.unwrap(),
        base64_field("full-arrays.json", "attachments")
    );

    let png = app.get(&format!("/emails/{id}/attachment/logo.png")).await;
    assert_eq!(png.status(), 200, "inlines are found by name too");
    assert_eq!(png.headers()["content-type"], "image/png");
    assert!(
        png.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("inline;"),
        "an inline image may show in place"
    );
    assert_eq!(
        png.bytes().await.unwrap(),
        base64_field("full-arrays.json", "inlines")
    );

    let by_index = app.get(&format!("/emails/{id}/inlines/0")).await;
    assert_eq!(
        by_index.bytes().await.unwrap(),
        base64_field("full-arrays.json", "inlines")
    );

    for missing in [
        format!("/emails/{id}/attachment/nope.pdf"),
        format!("/emails/{id}/attachments/5"),
        "/emails/0123456789abcdef01234567/attachment/x".into(),
    ] {
        let response = app.get(&missing).await;
        assert_eq!(response.status(), 404, "{missing}");
        let json: Value = response.json().await.unwrap();
        assert_eq!(json["success"], false);
    }
    let (status, _) = app
        .get_json(&format!("/emails/{id}/attachments/minus-one"))
        .await;
    assert_eq!(status, 400);
}

async fn names_are_percent_decoded_and_duplicates_reachable_by_index(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let body = serde_json::json!({
        "attachments": [
            {"type": "text/plain", "name": "notas de la reunión.txt", "content": "b25l"},
            {"type": "text/plain", "name": "same.txt", "content": "Zmlyc3Q="},
            {"type": "text/plain", "name": "same.txt", "content": "c2Vjb25k"},
            {"type": "text/html", "name": "page.html", "content": "PGgxPmhpPC9oMT4="},
            {"type": "image/svg+xml", "name": "a\"b.svg", "content": "PHN2Zy8+"},
        ]
    });
    let id = app.deliver(body.to_string()).await;

    let unicode = app
        .get(&format!(
            "/emails/{id}/attachment/notas%20de%20la%20reuni%C3%B3n.txt"
        ))
        .await;
    assert_eq!(unicode.status(), 200);
    let disposition = unicode.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.contains("filename*=UTF-8''notas%20de%20la%20reuni%C3%B3n.txt"),
        "{disposition}"
    );
    assert_eq!(unicode.text().await.unwrap(), "one");

    assert_eq!(
        app.get(&format!("/emails/{id}/attachment/same.txt"))
            .await
            .text()
            .await
            .unwrap(),
        "first"
    );
    assert_eq!(
        app.get(&format!("/emails/{id}/attachments/2"))
            .await
            .text()
            .await
            .unwrap(),
        "second"
    );

    let html = app.get(&format!("/emails/{id}/attachment/page.html")).await;
    assert_eq!(html.headers()["content-type"], "text/html");
    assert!(
        html.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;")
    );
    let svg = app.get(&format!("/emails/{id}/attachment/a%22b.svg")).await;
    assert_eq!(svg.status(), 200);
    assert_eq!(
        svg.headers()["content-disposition"],
        "attachment; filename=\"a_b.svg\"; filename*=UTF-8''a%22b.svg"
    );
}

async fn unknown_routes_and_wrong_methods_answer_json(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let unknown = app.get("/nope").await;
    assert_eq!(unknown.status(), 404);
    let json: Value = unknown.json().await.unwrap();
    assert_eq!(
        json,
        serde_json::json!({"success": false, "error": "Endpoint not found"})
    );

    let wrong = app
        .client
        .delete(app.url("/emails"))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 405);
    let json: Value = wrong.json().await.unwrap();
    assert_eq!(json["success"], false);
    let get_webhook = app.get("/webhook").await;
    assert_eq!(get_webhook.status(), 405);
}

engine_tests!(
    protected_routes_need_a_key,
    health_answers_the_old_shape,
    the_list_is_newest_first_with_metadata_not_base64,
    limit_and_skip_paginate,
    from_email_filter_is_case_insensitive,
    subject_filter_is_a_literal_case_insensitive_substring,
    one_email_by_id,
    attachments_and_inlines_download_with_identical_bytes,
    names_are_percent_decoded_and_duplicates_reachable_by_index,
    unknown_routes_and_wrong_methods_answer_json,
);
