//! Helpers for the security tests: clients that connect from a chosen loopback address.
#![allow(dead_code)]

use std::net::IpAddr;

use crate::common::API_KEY;

/// A client whose connections come from `ip` (any 127.0.0.x works on Linux).
pub fn client_from(ip: &str) -> reqwest::Client {
    let ip: IpAddr = ip.parse().expect("an IP address");
    reqwest::Client::builder()
        .local_address(ip)
        .no_proxy()
        .build()
        .expect("a client")
}

/// GET `url` from `client`, with `key` as the bearer token when given.
pub async fn get(client: &reqwest::Client, url: &str, key: Option<&str>) -> reqwest::Response {
    let mut request = client.get(url);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request.send().await.expect("request sent")
}

pub async fn status(client: &reqwest::Client, url: &str) -> u16 {
    get(client, url, Some(API_KEY)).await.status().as_u16()
}

/// Asserts a rate-limit refusal: 429, the old service's body, `Retry-After`, IETF headers.
pub async fn assert_rate_limited(response: reqwest::Response, limit: &str) {
    assert_eq!(response.status(), 429);
    let headers = response.headers().clone();
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after >= 1, "Retry-After {retry_after}");
    assert!(headers.contains_key("ratelimit-policy"), "{headers:?}");
    assert!(
        headers["ratelimit"].to_str().unwrap().contains(";r=0;"),
        "{headers:?}"
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"success": false, "error": format!("Rate limit exceeded: {limit}")})
    );
}
