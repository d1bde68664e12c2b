//! Golden files: each ImprovMX fixture `x.json` decodes to exactly `x.expected.json`.
//! Run with `UPDATE_GOLDEN=1` to rewrite the expectations after an intended change.

use std::path::{Path, PathBuf};

use chrono::DateTime;
use mailroom::inbound::improvmx;
use serde_json::{Value, json};

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/improvmx");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            name.ends_with(".json") && !name.ends_with(".expected.json")
        })
        .collect();
    paths.sort();
    paths
}

fn decoded(path: &Path) -> Value {
    let body = std::fs::read(path).unwrap();
    let received_at = DateTime::from_timestamp(1_731_586_365, 123_000_000).unwrap();
    let email = improvmx::parse(&body, received_at).expect("fixtures are valid deliveries");
    let blobs: Vec<Value> = email
        .blobs
        .iter()
        .map(|(hash, bytes)| json!({"blake3": hash, "size": bytes.len()}))
        .collect();
    json!({
        "dedup_key": email.dedup_key,
        "from_email": email.from_email(),
        "subject": email.message.subject,
        "processed": email.processed,
        "document": email.document,
        "blobs": blobs,
    })
}

#[test]
fn fixtures_decode_to_their_golden_files() {
    let paths = fixtures();
    assert!(paths.len() >= 4, "the ImprovMX fixtures are missing");
    let mut mismatches = Vec::new();
    for path in paths {
        let actual = serde_json::to_string_pretty(&decoded(&path)).unwrap() + "\n";
        let golden = path.with_extension("expected.json");
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&golden, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&golden).unwrap_or_else(|_| {
            panic!("{} is missing: run with UPDATE_GOLDEN=1", golden.display())
        });
        if expected != actual {
            mismatches.push(format!(
                "{}:\n--- expected\n{expected}\n+++ actual\n{actual}",
                path.display()
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "golden mismatches:\n{}",
        mismatches.join("\n")
    );
}
