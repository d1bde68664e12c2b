//! `/docs` renders from the binary alone, `/openapi.json` is OpenAPI 3.1, and the spec
//! describes every route the router serves (and nothing it does not).

use crate::common;

use std::path::Path;

use common::{Engine, TestApp};
use serde_json::Value;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

async fn spec(app: &TestApp) -> Value {
    let response = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Every `.route("<path>", <method>(…)…)` in `src/api`, as (method, path); but for
/// `GET /metrics`, which is served on `METRICS_PORT` only, never on the API's port.
fn routes_in_source() -> Vec<(String, String)> {
    let api = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
    let metrics = api.join("metrics.rs");
    let mut routes = Vec::new();
    let mut pending = vec![api];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") && path != metrics {
                routes.extend(routes_in(&std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    routes.sort();
    routes
}

fn routes_in(source: &str) -> Vec<(String, String)> {
    let mut routes = Vec::new();
    for (start, _) in source.match_indices(".route(") {
        let call = &source[start + ".route(".len()..];
        // The call's arguments, up to the matching parenthesis.
        let mut depth = 1;
        let end = call
            .char_indices()
            .find(|&(_, c)| {
                depth += match c {
                    '(' => 1,
                    ')' => -1,
                    _ => 0,
                };
                depth == 0
            })
            .map(|(i, _)| i)
            .expect("a closed .route( call");
        let call = &call[..end];
        let path = call.split('"').nth(1).expect("a literal route path");
        for method in METHODS {
            let called = call.match_indices(&format!("{method}(")).any(|(i, _)| {
                !call[..i]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_')
            });
            if called {
                routes.push((method.to_owned(), path.to_owned()));
            }
        }
    }
    routes
}

#[test]
fn the_route_scanner_finds_methods() {
    let source = r#"Router::new().route("/a/{id}", get(show).post(create))
        .route("/b", routing::delete(remove)).layer(x)"#;
    assert_eq!(
        routes_in(source),
        [
            ("get".to_owned(), "/a/{id}".to_owned()),
            ("post".to_owned(), "/a/{id}".to_owned()),
            ("delete".to_owned(), "/b".to_owned())
        ]
    );
}

async fn every_route_is_documented(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let spec = spec(&app).await;
    let routes = routes_in_source();
    assert!(routes.len() >= 9, "{routes:?}");
    for (method, path) in routes {
        assert!(
            spec["paths"][&path][&method].is_object(),
            "{} {path} is served but not in ApiDoc: annotate its handler with #[utoipa::path] and list it in src/api/docs.rs",
            method.to_uppercase()
        );
    }
}

/// Each documented operation reaches a handler: never the "Endpoint not found" fallback
/// nor 405.
async fn every_documented_route_is_served(engine: Engine) {
    const SECRET: &str = "docs-test-secret-0123456789";
    let mut vars = common::UNLIMITED.to_vec();
    vars.push(("WEBHOOK_SECRET", SECRET));
    let app = TestApp::spawn_with(engine, &vars).await;
    let spec = spec(&app).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (path, item) in spec["paths"].as_object().unwrap() {
        let concrete = path
            .replace("{id}", "6735f1a08c1e4b2a9f0a1b2c")
            .replace("{name}", "x.pdf")
            .replace("{index}", "0")
            .replace("{secret}", SECRET)
            .replace("{file}", "swagger-ui.css");
        for method in METHODS.into_iter().filter(|m| item.get(*m).is_some()) {
            let request =
                client.request(method.to_uppercase().parse().unwrap(), app.url(&concrete));
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let body = response.text().await.unwrap();
            assert!(
                status != 405 && !body.contains("Endpoint not found"),
                "{method} {path} is documented but not served: {status} {body}"
            );
        }
    }
}

async fn the_spec_is_openapi_3_1_with_bearer_auth_errors_and_limits(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let spec = spec(&app).await;
    assert_eq!(spec["openapi"], "3.1.0");
    assert_eq!(
        spec["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(spec["components"]["schemas"]["ErrorBody"].is_object());

    let list = &spec["paths"]["/emails"]["get"];
    assert_eq!(list["security"][0]["bearer"], serde_json::json!([]));
    for status in ["200", "400", "401", "403", "429", "500"] {
        assert!(list["responses"][status].is_object(), "/emails {status}");
    }
    assert!(list["responses"]["401"]["headers"]["WWW-Authenticate"].is_object());
    assert!(list["responses"]["429"]["headers"]["Retry-After"].is_object());
    assert!(
        list["responses"]["429"]["description"]
            .as_str()
            .unwrap()
            .contains("20/minute")
    );
    let names: Vec<&str> = list["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "limit",
            "skip",
            "from_email",
            "subject",
            "mailbox",
            "processed",
            "starred",
            "trashed",
            "q"
        ]
    );

    let webhook = &spec["paths"]["/webhook"]["post"];
    assert!(webhook.get("security").is_none());
    assert!(webhook["requestBody"]["content"]["application/json"].is_object());
    assert!(webhook["responses"].get("401").is_none());

    let healthz = &spec["paths"]["/healthz"]["get"];
    assert!(healthz["responses"].get("429").is_none());
    assert!(healthz["responses"].get("401").is_none());
}

async fn docs_render_from_the_binary_with_the_validator_off(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // `/docs` is the page itself, so `curl …/docs` gets it; `/docs/` leads there.
    let page = client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    let slash = client.get(app.url("/docs/")).send().await.unwrap();
    assert!(slash.status().is_redirection(), "{}", slash.status());
    assert_eq!(slash.headers()["location"], "/docs");
    // The page's asset links resolve, relative to `/docs`.
    let base = reqwest::Url::parse(&app.url("/docs")).unwrap();
    for asset in [
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
    ] {
        let link = format!("docs/{asset}");
        assert!(
            html.contains(&format!("\"{link}\"")),
            "{asset} not linked:\n{html}"
        );
        let response = client.get(base.join(&link).unwrap()).send().await.unwrap();
        assert_eq!(response.status(), 200, "{asset}");
        assert!(response.bytes().await.unwrap().len() > 10_000, "{asset}");
    }
    let initializer = app
        .client
        .get(app.url("/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(initializer.contains("/openapi.json"), "{initializer}");
    assert!(
        initializer.contains(r#""validatorUrl": "none""#)
            || initializer.contains(r#""validatorUrl":"none""#),
        "{initializer}"
    );
    let missing = client.get(app.url("/docs/nope.js")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
}

/// The docs run under a CSP that allows only their own files, no inline script, and no
/// framing by anyone.
async fn docs_carry_a_strict_csp_and_refuse_framing(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let page = app.client.get(app.url("/docs")).send().await.unwrap();
    let html = page.text().await.unwrap();
    for tag in html.split("<script").skip(1) {
        assert!(tag.trim_start().starts_with("src="), "inline script: {tag}");
    }
    for path in [
        "/docs",
        "/docs/swagger-ui-bundle.js",
        "/docs/swagger-initializer.js",
    ] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers();
        let csp = headers
            .get("content-security-policy")
            .unwrap_or_else(|| panic!("{path} has no CSP: {headers:?}"))
            .to_str()
            .unwrap();
        let directive = |name: &str| {
            csp.split(';')
                .map(str::trim)
                .find(|d| d.split_whitespace().next() == Some(name))
                .unwrap_or_else(|| panic!("{path}: no {name} in {csp}"))
                .to_owned()
        };
        assert_eq!(directive("default-src"), "default-src 'none'", "{path}");
        assert_eq!(directive("script-src"), "script-src 'self'", "{path}");
        assert_eq!(
            directive("frame-ancestors"),
            "frame-ancestors 'none'",
            "{path}"
        );
        assert!(!csp.contains("unsafe-eval"), "{csp}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
    }
}

engine_tests!(
    every_route_is_documented,
    every_documented_route_is_served,
    the_spec_is_openapi_3_1_with_bearer_auth_errors_and_limits,
    docs_render_from_the_binary_with_the_validator_off,
    docs_carry_a_strict_csp_and_refuse_framing,
);
