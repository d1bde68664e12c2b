//! Downloads stream from the store a chunk at a time, on both engines: `Range` requests
//! get the bytes they ask for, and ten parallel downloads of a 50 MB attachment keep the
//! server process small (its peak RSS is read from `/proc`).

use crate::common;

use base64::Engine as _;
use chrono::Utc;
use common::process::{mailroom, serve, status_kib, terminate};
use common::{API_KEY, Engine, TestApp, TestDatabase};
use mailroom::inbound::improvmx;
use mailroom::store;
use mailroom::store::blobs::CHUNK_BYTES;
use serde_json::json;

/// Bytes that differ everywhere, so a piece from the wrong place never matches.
fn noise(len: usize) -> Vec<u8> {
    (0..len as u32)
        .map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes()[(i % 4) as usize])
        .collect()
}

fn payload(bytes: &[u8]) -> String {
    json!({
        "message-id": format!("<{}@test>", rand::random::<u64>()),
        "attachments": [{"name": "big.bin", "type": "application/octet-stream",
                         "content": base64::engine::general_purpose::STANDARD.encode(bytes)}],
    })
    .to_string()
}

async fn ranges_get_the_bytes_they_ask_for(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let bytes = noise(2 * CHUNK_BYTES + 10);
    let id = app.deliver(payload(&bytes)).await;
    let path = format!("/emails/{id}/attachments/0");
    let get = |range: Option<&'static str>| {
        let mut request = app.client.get(app.url(&path)).bearer_auth(API_KEY);
        if let Some(range) = range {
            request = request.header("range", range);
        }
        request.send()
    };

    let whole = get(None).await.unwrap();
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.headers()["accept-ranges"], "bytes");
    assert_eq!(
        whole.headers()["content-length"],
        bytes.len().to_string().as_str()
    );
    assert_eq!(whole.bytes().await.unwrap(), bytes);

    let size = bytes.len();
    let across = CHUNK_BYTES - 2;
    let cases: [(&'static str, usize, usize); 4] = [
        ("bytes=5-9", 5, 9),
        ("bytes=-3", size - 3, size - 1),
        ("bytes=2097150-", 2 * CHUNK_BYTES - 2, size - 1),
        ("bytes=1048574-1048577", across, across + 3),
    ];
    for (header, first, last) in cases {
        let part = get(Some(header)).await.unwrap();
        assert_eq!(part.status(), 206, "{header}");
        assert_eq!(
            part.headers()["content-range"],
            format!("bytes {first}-{last}/{size}").as_str(),
            "{header}"
        );
        assert_eq!(part.bytes().await.unwrap(), bytes[first..=last], "{header}");
    }

    let past = get(Some("bytes=99999999-")).await.unwrap();
    assert_eq!(past.status(), 416);
    assert_eq!(
        past.headers()["content-range"],
        format!("bytes */{size}").as_str()
    );
    let several = get(Some("bytes=0-1,5-6")).await.unwrap();
    assert_eq!(several.status(), 200, "several ranges get the whole part");
    assert_eq!(several.bytes().await.unwrap().len(), size);
}

/// Stores an email with a `len`-byte attachment straight through the store (so that the
/// server under test never holds it while parsing), and answers its id.
async fn store_large_email(url: &str, len: usize) -> (String, blake3::Hash) {
    let bytes = noise(len);
    let hash = blake3::hash(&bytes);
    let email = improvmx::parse(payload(&bytes).as_bytes(), Utc::now()).unwrap();
    drop(bytes);
    let store = store::open(url).await.unwrap();
    store.migrate().await.unwrap();
    let id = store.insert_inbound(email).await.unwrap().id().to_string();
    store.close().await;
    (id, hash)
}

async fn parallel_large_downloads_keep_the_server_small(engine: Engine) {
    const SIZE: usize = 50 * 1024 * 1024;
    let database = TestDatabase::new(engine).await;
    let (id, hash) = store_large_email(&database.url, SIZE).await;
    let mut command = mailroom(database.dir.path());
    command
        .env("API_KEY", API_KEY)
        .env("DATABASE_URL", &database.url)
        .env("RATE_LIMIT_ATTACHMENT", "off");
    let (mut child, port) = serve(command);
    let url = format!("http://127.0.0.1:{port}/emails/{id}/attachments/0");
    let client = reqwest::Client::new();
    let downloads = (0..10).map(|_| async {
        let mut response = client.get(&url).bearer_auth(API_KEY).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let mut hasher = blake3::Hasher::new();
        while let Some(chunk) = response.chunk().await.unwrap() {
            hasher.update(&chunk);
        }
        hasher.finalize()
    });
    for got in futures::future::join_all(downloads).await {
        assert_eq!(got, hash, "every download is whole and right");
    }
    let peak_mib = status_kib(&child, "VmHWM") / 1024;
    terminate(&mut child);
    eprintln!(
        "{}: peak RSS {peak_mib} MiB after 10 parallel 50 MB downloads",
        engine.name()
    );
    // Read whole, ten downloads held 500 MB; streamed, each holds about a chunk.
    assert!(peak_mib < 100, "peak RSS {peak_mib} MiB");
}

engine_tests!(
    ranges_get_the_bytes_they_ask_for,
    parallel_large_downloads_keep_the_server_small,
);
