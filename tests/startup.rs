//! Starting the binary: a start that fails leaves nothing behind, one that succeeds
//! creates its data files private.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::process::{self, mailroom, terminate};

#[test]
fn a_start_on_a_taken_port_fails_clearly_and_leaves_no_data_behind() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let missing = dir.path().join("missing");

    for data_dir in [&empty, &missing] {
        // The default DATABASE_URL, under DATA_DIR.
        let output = mailroom(dir.path())
            .env("DATA_DIR", data_dir)
            .env("PORT", port.to_string())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!(
                "failed to listen on 127.0.0.1:{port} (HOST, PORT)"
            )),
            "{stderr}"
        );
        assert!(stderr.contains("in use"), "{stderr}");
        if data_dir == &missing {
            assert!(!missing.exists(), "DATA_DIR was created");
        } else {
            let left: Vec<_> = std::fs::read_dir(&empty)
                .unwrap()
                .map(|entry| entry.unwrap().file_name())
                .collect();
            assert!(left.is_empty(), "left in DATA_DIR: {left:?}");
        }
    }
}

fn mode(path: &Path) -> u32 {
    let metadata = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    metadata.permissions().mode() & 0o777
}

#[test]
fn the_database_its_wal_and_shm_and_the_key_are_created_mode_0600() {
    let dir = tempfile::tempdir().unwrap();
    // Under the usual umask 022, which alone would leave the files world-readable.
    let mut command = Command::new("sh");
    command
        .args(["-c", "umask 022 && exec \"$0\""])
        .arg(env!("CARGO_BIN_EXE_mailroom"))
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RUST_LOG", "info");
    let (mut child, _port) = process::serve(command);

    let data = dir.path().join("data");
    for name in [
        "mailroom.db",
        "mailroom.db-wal",
        "mailroom.db-shm",
        "api_key",
        "setup-link",
    ] {
        assert_eq!(mode(&data.join(name)), 0o600, "{name}");
    }

    terminate(&mut child);
    assert!(child.wait().unwrap().success());
}
