//! Starting the binary: a start that fails leaves nothing behind.

mod common;

use common::process::mailroom;

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
