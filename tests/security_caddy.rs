//! End to end through a real Caddy, as deployed: clients on distinct 127.0.0.x addresses
//! talk to Caddy, Caddy to mailroom, which trusts Caddy's `X-Forwarded-For` only.
//!
//! Ignored (and reported so) when no `caddy` binary was on the `PATH` at build time;
//! `.ci/run` installs Debian's `caddy` package.

use crate::common;
use crate::security_support;

use std::process::Child;
use std::time::{Duration, Instant};

use common::{API_KEY, Engine, TestApp, caddy};
use security_support::client_from;

const WRONG: &str = "wrong-key-0123456789abcdef";

/// A Caddy process in front of `upstream`, killed on drop.
struct Caddy {
    child: Child,
    address: String,
    _home: tempfile::TempDir,
}

impl Caddy {
    async fn start(upstream: &str) -> Self {
        let port = caddy::free_port();
        let (child, home) = caddy::spawn(
            "Caddyfile",
            &[
                ("CADDY_PORT", port.to_string()),
                ("MAILROOM_UPSTREAM", upstream.to_owned()),
            ],
        );
        let caddy = Self {
            child,
            address: format!("http://127.0.0.1:{port}"),
            _home: home,
        };
        caddy.wait_until_ready().await;
        caddy
    }

    async fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = client_from("127.0.0.1");
        while Instant::now() < deadline {
            if client.get(self.url("/docs")).send().await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("caddy did not start listening on {}", self.address);
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }
}

impl Drop for Caddy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn setup(vars: &[(&str, &str)]) -> (TestApp, Caddy) {
    let app = TestApp::spawn_with(Engine::Sqlite, vars).await;
    let upstream = app.address.trim_start_matches("http://").to_owned();
    let caddy = Caddy::start(&upstream).await;
    (app, caddy)
}

/// A request through Caddy from `from`, with every forwarding header naming `spoof`.
async fn spoofed(caddy: &Caddy, from: &str, key: &str, spoof: &str) -> u16 {
    client_from(from)
        .get(caddy.url("/"))
        .bearer_auth(key)
        .header("x-forwarded-for", spoof)
        .header("x-real-ip", spoof)
        .header("forwarded", format!("for={spoof}"))
        .send()
        .await
        .expect("request through caddy")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(caddy_tests),
    ignore = "install caddy (Debian package) to run the end-to-end test"
)]
async fn spoofed_forwarding_headers_neither_escape_a_lockout_nor_lock_out_a_victim() {
    let (_app, caddy) = setup(&[
        ("LOCKOUT_MAX_FAILURES", "3"),
        ("LOCKOUT_SECS", "60"),
        ("RATE_LIMIT_HEALTH", "off"),
    ])
    .await;
    let (attacker, victim) = ("127.0.0.2", "127.0.0.3");
    // The attacker rotates spoofed addresses, and names the victim too.
    for (n, spoof) in ["10.0.0.1", victim, "10.0.0.2", victim].iter().enumerate() {
        let status = spoofed(&caddy, attacker, WRONG, spoof).await;
        assert_eq!(status, if n < 3 { 403 } else { 429 }, "guess {n}");
    }
    for n in 0..5 {
        let spoof = format!("198.51.100.{n}");
        assert_eq!(spoofed(&caddy, attacker, API_KEY, &spoof).await, 429);
    }
    assert_eq!(spoofed(&caddy, attacker, API_KEY, "127.0.0.1").await, 429);
    // The victim, whose address the attacker named, is not locked out.
    assert_eq!(spoofed(&caddy, victim, API_KEY, victim).await, 200);
    let plain = client_from(victim)
        .get(caddy.url("/"))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(caddy_tests),
    ignore = "install caddy (Debian package) to run the end-to-end test"
)]
async fn different_real_clients_get_separate_buckets_behind_the_proxy() {
    let (_app, caddy) = setup(&[("RATE_LIMIT_HEALTH", "2/minute")]).await;
    let (first, second) = ("127.0.0.4", "127.0.0.5");
    for n in 0..4 {
        let spoof = format!("203.0.113.{n}");
        let status = spoofed(&caddy, first, API_KEY, &spoof).await;
        assert_eq!(status, if n < 2 { 200 } else { 429 }, "request {n}");
    }
    // Naming the exhausted client does not cost the second one anything, nor the reverse.
    assert_eq!(spoofed(&caddy, second, API_KEY, first).await, 200);
    assert_eq!(spoofed(&caddy, second, API_KEY, second).await, 200);
    assert_eq!(spoofed(&caddy, second, API_KEY, second).await, 429);
}
