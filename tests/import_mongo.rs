//! `mailroom import-mongo`: the old service's exports come in with their ids, dates and
//! parts, a re-run imports nothing, and bad documents are reported and skipped.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use common::{Engine, TestApp, TestDatabase};
use mailroom::import::mongo::{BadDocument, Position, import_file};
use serde_json::Value;

const RELAXED: &str = "emails-relaxed.jsonl";
const CANONICAL: &str = "emails-canonical-array.json";

/// The fixtures' ids with their `received_at`, oldest first.
const EXPORTED: [(&str, &str); 3] = [
    ("6735f1a08c1e4b2a9f0a1b2c", "2024-11-14T12:12:45.123Z"),
    ("6735f1b18c1e4b2a9f0a1b2d", "2024-11-14T12:13:02.004Z"),
    ("67373a048c1e4b2a9f0a1b2e", "2024-11-15T13:03:00.500Z"),
];

fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/mongoexport")
        .join(name)
}

/// The relaxed export's documents, by id.
fn exported_documents() -> Vec<Value> {
    std::fs::read_to_string(fixture_path(RELAXED))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

async fn both_exports_import_with_their_ids_dates_and_flags(engine: Engine) {
    for name in [RELAXED, CANONICAL] {
        let app = TestApp::spawn(engine).await;
        let report = import_file(app.store.clone(), &fixture_path(name))
            .await
            .unwrap();
        assert_eq!(
            (
                report.imported,
                report.already_present,
                report.skipped.len()
            ),
            (3, 0, 0),
            "{name}"
        );
        for (id, received_at) in EXPORTED {
            let (status, json) = app.get_json(&format!("/emails/{id}")).await;
            assert_eq!(status, 200, "{name}: {id}");
            let email = &json["email"];
            assert_eq!(email["_id"], id);
            assert_eq!(email["received_at"], received_at, "{name}: {id}");
            assert_eq!(email["processed"], false);
            assert_eq!(
                email["timestamp"].as_i64().map(|t| t > 1_700_000_000),
                Some(true)
            );
            assert!(email.get("payload__id").is_none());
        }
        let (_, list) = app.get_json("/emails").await;
        let order: Vec<&str> = list["emails"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["_id"].as_str().unwrap())
            .collect();
        assert_eq!(order, [EXPORTED[2].0, EXPORTED[1].0, EXPORTED[0].0]);
        let (_, by_sender) = app.get_json("/emails?from_email=zhang@example.cn").await;
        assert_eq!(by_sender["count"], 1);
    }
}

async fn relaxed_and_canonical_exports_store_the_same_emails(engine: Engine) {
    let relaxed = TestApp::spawn(engine).await;
    let canonical = TestApp::spawn(engine).await;
    import_file(relaxed.store.clone(), &fixture_path(RELAXED))
        .await
        .unwrap();
    import_file(canonical.store.clone(), &fixture_path(CANONICAL))
        .await
        .unwrap();
    for (id, _) in EXPORTED {
        let path = format!("/emails/{id}");
        assert_eq!(
            relaxed.get_json(&path).await.1,
            canonical.get_json(&path).await.1,
            "{id}"
        );
    }
}

async fn a_second_run_imports_nothing(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    import_file(app.store.clone(), &fixture_path(RELAXED))
        .await
        .unwrap();
    for name in [RELAXED, CANONICAL] {
        let again = import_file(app.store.clone(), &fixture_path(name))
            .await
            .unwrap();
        assert_eq!((again.imported, again.already_present), (0, 3), "{name}");
    }
    let (_, list) = app.get_json("/emails?limit=100").await;
    assert_eq!(list["count"], 3);
}

async fn imported_parts_download_with_identical_bytes(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    import_file(app.store.clone(), &fixture_path(RELAXED))
        .await
        .unwrap();
    let mut checked = 0;
    for document in exported_documents() {
        let id = document["_id"]["$oid"].as_str().unwrap();
        let (_, json) = app.get_json(&format!("/emails/{id}")).await;
        for kind in ["attachments", "inlines"] {
            let exported = document[kind].as_array().unwrap();
            let stored = json["email"][kind].as_array().unwrap();
            assert_eq!(exported.len(), stored.len(), "{id} {kind}");
            for (part, meta) in exported.iter().zip(stored) {
                let expected = base64::engine::general_purpose::STANDARD
                    .decode(part["content"].as_str().unwrap())
                    .unwrap();
                assert!(meta.get("content").is_none());
                assert_eq!(meta["name"], part["name"]);
                let by_index = app.get(meta["url"].as_str().unwrap()).await;
                assert_eq!(by_index.status(), 200);
                assert_eq!(by_index.bytes().await.unwrap(), expected, "{id} {kind}");
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 5);
    // The old service's route, by (percent-encoded) name.
    let response = app
        .get("/emails/67373a048c1e4b2a9f0a1b2e/attachment/notas%20de%20la%20reuni%C3%B3n.txt")
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.bytes().await.unwrap().as_ref(),
        "Orden del día\n1. Presupuesto\n".as_bytes()
    );
}

/// A copy of the relaxed export with three bad lines mixed in.
fn export_with_bad_lines(dir: &Path) -> PathBuf {
    let lines: Vec<String> = std::fs::read_to_string(fixture_path(RELAXED))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let text = [
        lines[0].as_str(),
        "{\"_id\": {\"$oid\": \"6735f1a08c1e4b2a9f0a1b99\"}, \"subject\": \"cut short",
        lines[1].as_str(),
        "{\"_id\": \"not-an-object-id\", \"subject\": \"x\"}",
        "",
        "[1, 2]",
        lines[2].as_str(),
    ]
    .join("\n");
    let path = dir.join("with-bad-lines.jsonl");
    std::fs::write(&path, text).unwrap();
    path
}

async fn bad_lines_are_reported_and_skipped(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let path = export_with_bad_lines(app.database.dir.path());
    let report = import_file(app.store.clone(), &path).await.unwrap();
    assert_eq!(report.imported, 3);
    let skipped: Vec<Position> = report.skipped.iter().map(|(p, _)| *p).collect();
    assert_eq!(
        skipped,
        [Position::Line(2), Position::Line(4), Position::Line(6)]
    );
    assert!(matches!(report.skipped[0].1, BadDocument::NotJson(_)));
    assert_eq!(report.skipped[1].1, BadDocument::Id);
    assert_eq!(report.skipped[2].1, BadDocument::NotAnObject);
    let (_, list) = app.get_json("/emails?limit=100").await;
    assert_eq!(list["count"], 3);
}

/// Runs the real binary in an empty directory (so no `.env` is picked up).
fn run_cli(args: &[&str], cwd: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mailroom"))
        .args(args)
        .current_dir(cwd)
        .env_remove("DATABASE_URL")
        .env_remove("API_KEY")
        .env_remove("API_KEYS")
        .output()
        .expect("the mailroom binary runs")
}

async fn the_command_exits_non_zero_when_it_skipped_documents(engine: Engine) {
    let database = TestDatabase::new(engine).await;
    let cwd = database.dir.path();
    let path = export_with_bad_lines(cwd);
    let output = run_cli(
        &[
            "import-mongo",
            path.to_str().unwrap(),
            "--database-url",
            &database.url,
        ],
        cwd,
    );
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert_eq!(output.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("3 imported, 0 already present, 3 skipped"),
        "{stdout}"
    );
    for line in [
        "skipped line 2: not valid JSON",
        "skipped line 4: `_id`",
        "skipped line 6",
    ] {
        assert!(stderr.contains(line), "{line} in {stderr}");
    }

    let store = mailroom::store::open(&database.url).await.unwrap();
    for (id, _) in EXPORTED {
        assert!(
            store.email(id.parse().unwrap()).await.unwrap().is_some(),
            "{id}"
        );
    }
    store.close().await;
}

async fn the_command_succeeds_and_a_rerun_imports_nothing(engine: Engine) {
    let database = TestDatabase::new(engine).await;
    let cwd = database.dir.path();
    let export = fixture_path(CANONICAL);
    let args = [
        "import-mongo",
        export.to_str().unwrap(),
        "--database-url",
        &database.url,
    ];
    let first = run_cli(&args, cwd);
    assert_eq!(first.status.code(), Some(0), "{first:?}");
    assert!(
        String::from_utf8_lossy(&first.stdout).contains("3 imported, 0 already present, 0 skipped")
    );
    let second = run_cli(&args, cwd);
    assert_eq!(second.status.code(), Some(0), "{second:?}");
    assert!(
        String::from_utf8_lossy(&second.stdout)
            .contains("0 imported, 3 already present, 0 skipped")
    );
}

async fn a_missing_file_is_a_clear_failure(engine: Engine) {
    let database = TestDatabase::new(engine).await;
    let cwd = database.dir.path();
    let output = run_cli(
        &[
            "import-mongo",
            "no-such-export.json",
            "--database-url",
            &database.url,
        ],
        cwd,
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("failed to open no-such-export.json"));
}

engine_tests!(
    both_exports_import_with_their_ids_dates_and_flags,
    relaxed_and_canonical_exports_store_the_same_emails,
    a_second_run_imports_nothing,
    imported_parts_download_with_identical_bytes,
    bad_lines_are_reported_and_skipped,
    the_command_exits_non_zero_when_it_skipped_documents,
    the_command_succeeds_and_a_rerun_imports_nothing,
    a_missing_file_is_a_clear_failure,
);
