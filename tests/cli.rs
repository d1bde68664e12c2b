//! The `mailroom` binary itself: help, configuration errors, migrate, and a graceful stop.

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Child;
use std::time::Duration;

use common::process::{self, mailroom, send_sigterm, terminate};

#[test]
fn help_lists_the_commands_and_the_main_variables() {
    let dir = tempfile::tempdir().unwrap();
    let output = mailroom(dir.path()).arg("--help").output().unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    for word in ["serve", "migrate", "API_KEY", "DATABASE_URL", "--env-file"] {
        assert!(text.contains(word), "--help lacks {word}:\n{text}");
    }
}

#[test]
fn bad_configuration_is_reported_at_once_with_exit_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let output = mailroom(dir.path())
        .env("PORT", "http")
        .env("DATABASE_URL", "mysql://x")
        .env("API_KEY", "short")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let text = String::from_utf8(output.stderr).unwrap();
    for name in ["PORT", "DATABASE_URL", "API_KEY"] {
        assert!(text.contains(name), "stderr lacks {name}:\n{text}");
    }
    assert!(!text.contains("short\""), "a key value leaked:\n{text}");
}

#[test]
fn a_missing_env_file_is_an_error_but_a_missing_dot_env_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let output = mailroom(dir.path())
        .args(["--env-file", "nope.env", "migrate"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("nope.env"));
}

#[test]
fn migrate_creates_the_database_from_dot_env() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "DATABASE_URL=sqlite://mail/db.sqlite\n",
    )
    .unwrap();
    let output = mailroom(dir.path()).arg("migrate").output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(dir.path().join("mail/db.sqlite").exists());
}

/// Starts `mailroom serve` on a free port and waits until it listens.
fn serve(dir: &std::path::Path) -> (Child, u16) {
    let mut command = mailroom(dir);
    command.env("MONGO_HOST", "localhost");
    process::serve(command)
}

#[test]
fn sigterm_lets_an_in_flight_delivery_finish_and_store() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, port) = serve(dir.path());

    let body = br#"{"subject":"in flight during shutdown","text":"hello"}"#;
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "POST /webhook HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(&body[..10]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    send_sigterm(&child);
    std::thread::sleep(Duration::from_millis(300));
    stream.write_all(&body[10..]).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("Email received and stored"), "{response}");

    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    let mut logs = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .lines()
        .for_each(|l| {
            logs.push_str(&l.unwrap());
            logs.push('\n');
        });
    let base = format!("http://127.0.0.1:{port}/");
    assert!(
        logs.contains(&format!(
            "mailroom listening on {base} with the API docs at {base}docs"
        )),
        "URLs to open:\n{logs}"
    );
    assert!(
        logs.contains("api_key"),
        "the generated key's path is logged:\n{logs}"
    );
    assert!(
        logs.contains("import-mongo"),
        "MONGO_* gets a hint:\n{logs}"
    );
    let key = std::fs::read_to_string(dir.path().join("data/api_key")).unwrap();
    assert!(!logs.contains(key.trim()), "the key leaked into the log");

    // Restart on the same data: the email acknowledged during shutdown is there.
    let (mut child, port) = serve(dir.path());
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET /emails HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        key.trim()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.contains("in flight during shutdown"), "{response}");
    terminate(&mut child);
    assert!(child.wait().unwrap().success());
}
