//! The webmail behind a real Caddy over HTTPS: the cookies are `Secure` with `__Host-`
//! names. Ignored (and reported so) without a `caddy` binary on the `PATH` at build
//! time; `.ci/run` installs Debian's `caddy` package. HTTPS is spoken by `curl`.

use crate::common;
use crate::webmail_support;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::{Engine, TestApp, caddy};
use mailroom::store::Role;
use webmail_support::{PASSWORD, add_user, csrf_in};

/// A Caddy process terminating TLS in front of the webmail, killed on drop.
struct Caddy {
    child: Child,
    port: u16,
    home: tempfile::TempDir,
}

impl Drop for Caddy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Caddy {
    fn start(upstream: &str) -> Self {
        let (port, http_port) = (caddy::free_port(), caddy::free_port());
        let (child, home) = caddy::spawn(
            "Caddyfile-webmail",
            &[
                ("CADDY_PORT", port.to_string()),
                ("CADDY_HTTP_PORT", http_port.to_string()),
                ("MAILROOM_UPSTREAM", upstream.to_owned()),
            ],
        );
        let caddy = Self { child, port, home };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !caddy.answers() {
            assert!(Instant::now() < deadline, "caddy did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
        caddy
    }

    /// Whether the webmail answers through Caddy (no cookie jar: the test starts clean).
    fn answers(&self) -> bool {
        let output = Command::new("curl")
            .args(["-sk", &format!("https://localhost:{}/health", self.port)])
            .output()
            .expect("curl runs");
        output.stdout == b"ok"
    }

    /// `curl` over HTTPS (Caddy's own CA, so `-k`) with a cookie jar; answers the
    /// response headers and body.
    fn curl(&self, args: &[&str]) -> (String, String) {
        let jar = self.home.path().join("cookies");
        let (path, rest) = args.split_first().unwrap();
        let output = Command::new("curl")
            .args(["-sk", "-D", "-", "-b"])
            .arg(&jar)
            .arg("-c")
            .arg(&jar)
            .args(rest)
            .arg(format!("https://localhost:{}{path}", self.port))
            .output()
            .expect("curl runs");
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        (head.to_lowercase(), body.to_owned())
    }
}

fn set_cookie(head: &str, name: &str) -> String {
    head.lines()
        .find(|line| line.starts_with(&format!("set-cookie: {}=", name.to_lowercase())))
        .unwrap_or_else(|| panic!("no {name} cookie in {head}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(caddy_tests),
    ignore = "install caddy (Debian package) to run the end-to-end test"
)]
async fn behind_caddy_over_https_the_cookies_are_secure_host_cookies() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    add_user(&app, "ana@puntoa.ar", Role::User, &["ventas@puntoa.ar"]).await;
    let upstream = app.webmail_address.clone().unwrap().replace("http://", "");
    let caddy = tokio::task::spawn_blocking(move || Caddy::start(&upstream))
        .await
        .unwrap();

    let (head, body) = caddy.curl(&["/login"]);
    let pre_session = set_cookie(&head, "__Host-mailroom-csrf");
    for flag in ["secure", "httponly", "samesite=lax", "path=/"] {
        assert!(pre_session.contains(flag), "{pre_session}");
    }
    assert!(!pre_session.contains("domain"), "{pre_session}");
    let form = format!(
        "csrf={}&email=ana%40puntoa.ar&password={}",
        csrf_in(&body),
        PASSWORD.replace(' ', "+")
    );
    let (head, _) = caddy.curl(&["/login", "--data", &form]);
    assert!(
        head.starts_with("http/2 303") || head.starts_with("http/1.1 303"),
        "{head}"
    );
    let session = set_cookie(&head, "__Host-mailroom");
    for flag in ["secure", "httponly", "samesite=lax", "path=/"] {
        assert!(session.contains(flag), "{session}");
    }
    let (head, body) = caddy.curl(&["/"]);
    assert!(head.contains(" 200"), "{head}");
    assert!(
        body.contains("ana@puntoa.ar"),
        "logged in through the proxy"
    );
}
