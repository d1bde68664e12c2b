//! A full disk refuses the delivery with a 5xx (so ImprovMX retries), loses nothing that
//! was acknowledged, and the server keeps running. Needs root to mount a tiny tmpfs.

use crate::common;

use std::process::Command;

use common::{Engine, TestApp, TestDatabase};
use serde_json::Value;

/// A 3 MiB tmpfs mounted over a temporary directory, unmounted on drop.
struct TinyDisk(tempfile::TempDir);

impl TinyDisk {
    fn mount() -> Option<Self> {
        let dir = tempfile::tempdir().ok()?;
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=3m", "tmpfs"])
            .arg(dir.path())
            .output()
            .ok()?
            .status
            .success();
        mounted.then_some(Self(dir))
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

fn email_with_attachment(i: usize, size: usize) -> String {
    use base64::Engine as _;
    let bytes: Vec<u8> = (0..size).map(|n| (n * 31 + i * 7) as u8).collect();
    serde_json::json!({
        "subject": format!("filler {i}"),
        "attachments": [{"name": "fill.bin", "content": base64::engine::general_purpose::STANDARD.encode(bytes)}],
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_507_and_keeps_what_was_acknowledged() {
    let Some(disk) = TinyDisk::mount() else {
        eprintln!(
            "SKIPPED: cannot mount a tmpfs here (needs root); the full-disk test did not run"
        );
        return;
    };
    let data = disk.0.path().to_path_buf();
    let database = TestDatabase {
        url: format!("sqlite://{}/mailroom.db", data.display()),
        dir: tempfile::tempdir().unwrap(),
    };
    let mut vars = common::UNLIMITED.to_vec();
    vars.push(("DATA_DIR", data.to_str().unwrap()));
    let app = TestApp::spawn_on(database, &vars).await;
    assert_eq!(app.store.engine(), Engine::Sqlite.name());

    let mut acknowledged = Vec::new();
    let mut refused = None;
    for i in 0..40 {
        let response = app.post_webhook(email_with_attachment(i, 200 * 1024)).await;
        let status = response.status().as_u16();
        let json: Value = response.json().await.unwrap();
        if status == 200 {
            acknowledged.push(json["email_id"].as_str().unwrap().to_owned());
        } else {
            refused = Some((status, json));
            break;
        }
    }
    let (status, json) = refused.expect("the 3 MiB disk filled up");
    assert_eq!(status, 507, "{json}");
    assert_eq!(json["success"], false);
    assert!(!acknowledged.is_empty());

    // Still serving, and every acknowledged email is intact.
    for id in &acknowledged {
        let (status, _) = app.get_json(&format!("/emails/{id}")).await;
        assert_eq!(status, 200);
        let download = app.get(&format!("/emails/{id}/attachments/0")).await;
        assert_eq!(download.bytes().await.unwrap().len(), 200 * 1024);
    }
    let database = app.stop().await;
    drop(database);
    drop(disk);
}
