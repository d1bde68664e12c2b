//! A real Caddy in front of a test server: `caddy run` on one of the fixture
//! Caddyfiles, configured through its environment, with its state in a temporary home.

use std::process::{Child, Command, Stdio};

/// A free port on loopback, for Caddy to listen on.
pub fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    probe.local_addr().unwrap().port()
}

/// Starts Caddy on `tests/fixtures/caddy/<caddyfile>` with `vars`; the caller waits until
/// it answers, kills the child when done, and keeps the home alive as long as Caddy runs.
pub fn spawn(caddyfile: &str, vars: &[(&str, String)]) -> (Child, tempfile::TempDir) {
    let home = tempfile::tempdir().unwrap();
    let config = format!(
        "{}/tests/fixtures/caddy/{caddyfile}",
        env!("CARGO_MANIFEST_DIR")
    );
    let child = Command::new("caddy")
        .args(["run", "--adapter", "caddyfile", "--config", &config])
        .envs(vars.iter().map(|(name, value)| (*name, value.as_str())))
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path())
        .env("XDG_DATA_HOME", home.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("`caddy` runs (install Debian's caddy package, as .ci/run does)");
    (child, home)
}
