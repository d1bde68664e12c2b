//! The `mailroom` binary as a child process: for tests of the binary itself and of what
//! only a separate process shows (its memory, its exit status).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The binary, run in `dir` with a clean environment.
pub fn mailroom(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mailroom"));
    command
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        // Tests run side by side: the webmail's default port would clash.
        .env("WEBMAIL_PORT", "0");
    command
}

/// Starts `command` as a server on a free port and waits until it answers HTTP.
pub fn serve(mut command: Command) -> (Child, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let webmail_port_set = command.get_envs().any(|(name, _)| name == "WEBMAIL_PORT");
    if !webmail_port_set {
        command.env("WEBMAIL_PORT", "0");
    }
    let mut child = command
        .env("PORT", port.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !answers(port) {
        assert!(Instant::now() < deadline, "the server did not start");
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the server exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, port)
}

/// Whether `GET /healthz` on `port` gets a 200. A connection alone is not enough: the
/// port is bound before the store opens and the key is prepared.
fn answers(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let mut head = [0u8; 12];
    stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .is_ok()
        && stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .is_ok()
        && stream.read_exact(&mut head).is_ok()
        && &head == b"HTTP/1.1 200"
}

/// Sends SIGTERM, as systemd does to stop a service, and returns at once.
pub fn send_sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// How long a server may take to stop after SIGTERM (systemd's default is 90 s).
const STOP_WITHIN: Duration = Duration::from_secs(30);

/// Asks the server to stop, as systemd does, and waits until it has: a test must not
/// leave it running (it would outlive the test and its database), and a server that
/// ignores SIGTERM fails the test.
pub fn terminate(child: &mut Child) {
    send_sigterm(child);
    let deadline = Instant::now() + STOP_WITHIN;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server did not stop within {STOP_WITHIN:?} of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A line of `/proc/<pid>/status` in KiB: `VmHWM` is the peak resident size.
pub fn status_kib(child: &Child, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc status"))
}
