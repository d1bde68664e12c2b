//! Part bytes on both engines: large blobs are kept in 1 MiB chunks and read back a
//! chunk at a time (so downloads stream), small ones stay whole, and deletes take the
//! chunks that no other email uses.

use crate::common;

use std::sync::Arc;

use base64::Engine as _;
use chrono::Utc;
use common::{Engine, TestDatabase};
use futures::TryStreamExt as _;
use mailroom::email::{EmailId, PartKind};
use mailroom::inbound::improvmx;
use mailroom::store::blobs::CHUNK_BYTES;
use mailroom::store::{self, Store};
use serde_json::json;
use sqlx::Connection as _;

async fn open(engine: Engine) -> (Arc<dyn Store>, TestDatabase) {
    let database = TestDatabase::new(engine).await;
    let store = store::open(&database.url).await.expect("store opens");
    store.migrate().await.expect("migrations apply");
    (store, database)
}

/// Bytes that differ everywhere, so a piece from the wrong place never matches.
fn noise(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[i % 4] ^ seed)
        .collect()
}

/// Stores an email with one attachment of `bytes`; answers its id and the blob's hash.
async fn store_part(store: &dyn Store, bytes: &[u8]) -> (EmailId, String) {
    let payload = json!({
        "message-id": format!("<{}@test>", rand::random::<u64>()),
        "attachments": [{"name": "big.bin",
                         "content": base64::engine::general_purpose::STANDARD.encode(bytes)}],
    });
    let email = improvmx::parse(payload.to_string().as_bytes(), Utc::now()).unwrap();
    let id = store.insert_inbound(email).await.unwrap().id();
    let stored = store.email(id).await.unwrap().unwrap();
    let part = mailroom::inbound::part_at(&stored, PartKind::Attachment, 0).unwrap();
    (id, part.meta.blake3)
}

async fn chunk_rows(engine: Engine, url: &str) -> i64 {
    let sql = "SELECT count(*) FROM blob_chunks";
    match engine {
        Engine::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
            sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
        }
        Engine::Postgres => {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
        }
    }
}

async fn large_blobs_are_read_back_a_chunk_at_a_time(engine: Engine) {
    let (store, db) = open(engine).await;
    let bytes = noise(2 * CHUNK_BYTES + 3, 1);
    let (_, hash) = store_part(store.as_ref(), &bytes).await;
    assert_eq!(chunk_rows(engine, &db.url).await, 3);
    let blobs = store.blobs();
    assert_eq!(blobs.size(&hash).await.unwrap(), Some(bytes.len() as u64));
    assert_eq!(
        blobs.whole(&hash).await.unwrap().as_deref(),
        Some(&bytes[..])
    );
    let read = |start: usize, len: usize| blobs.read(&hash, start as u64, len);
    assert_eq!(read(0, CHUNK_BYTES).await.unwrap(), bytes[..CHUNK_BYTES]);
    // A read never crosses a chunk's end: the caller asks again from there.
    let near_end = CHUNK_BYTES - 10;
    assert_eq!(
        read(near_end, 100).await.unwrap(),
        bytes[near_end..CHUNK_BYTES]
    );
    let last = 2 * CHUNK_BYTES + 1;
    assert_eq!(read(last, CHUNK_BYTES).await.unwrap(), bytes[last..]);
    assert!(read(bytes.len(), 10).await.unwrap().is_empty());

    // A stream of a range crosses chunks a piece at a time.
    let range = (CHUNK_BYTES - 5) as u64..(2 * CHUNK_BYTES + 2) as u64;
    let pieces: Vec<Vec<u8>> = store::blobs::stream(store.clone(), hash, range.clone())
        .try_collect()
        .await
        .unwrap();
    assert!(pieces.iter().all(|piece| piece.len() <= CHUNK_BYTES));
    assert_eq!(
        pieces.concat(),
        bytes[range.start as usize..range.end as usize]
    );
}

async fn small_blobs_stay_whole_and_read_in_pieces(engine: Engine) {
    let (store, db) = open(engine).await;
    let bytes = noise(1000, 2);
    let (_, hash) = store_part(store.as_ref(), &bytes).await;
    assert_eq!(chunk_rows(engine, &db.url).await, 0);
    let piece = store.blobs().read(&hash, 3, 4).await.unwrap();
    assert_eq!(piece, bytes[3..7]);
    assert_eq!(store.blobs().size("00").await.unwrap(), None);
    assert!(store.blobs().read("00", 0, 10).await.unwrap().is_empty());
}

async fn deletes_take_the_chunks_no_other_email_uses(engine: Engine) {
    let (store, db) = open(engine).await;
    let bytes = noise(CHUNK_BYTES + 1, 3);
    let (first, hash) = store_part(store.as_ref(), &bytes).await;
    let (second, same) = store_part(store.as_ref(), &bytes).await;
    assert_eq!(hash, same);
    assert_eq!(chunk_rows(engine, &db.url).await, 2, "stored once");
    store.mail_state().delete(&[first]).await.unwrap();
    assert_eq!(
        store.blob(&hash).await.unwrap().as_deref(),
        Some(&bytes[..])
    );
    store.mail_state().delete(&[second]).await.unwrap();
    assert_eq!(store.blob(&hash).await.unwrap(), None);
    assert_eq!(chunk_rows(engine, &db.url).await, 0);
}

/// Turns a chunked blob back into the layout of before chunking (its bytes in its own
/// row), and with `restart` sets the re-chunking pass back to its start, as an upgrade
/// from before chunking does.
async fn store_whole_as_before_chunking(
    engine: Engine,
    url: &str,
    (hash, bytes): (&str, &[u8]),
    restart: bool,
) {
    // The same statements on either engine's connection type.
    macro_rules! on {
        ($connection:ty) => {{
            let mut conn = <$connection>::connect(url).await.unwrap();
            sqlx::query("DELETE FROM blob_chunks WHERE blob = $1")
                .bind(hash)
                .execute(&mut conn)
                .await
                .unwrap();
            sqlx::query("UPDATE blobs SET data = $2 WHERE blake3 = $1")
                .bind(hash)
                .bind(bytes)
                .execute(&mut conn)
                .await
                .unwrap();
            if restart {
                sqlx::query("UPDATE blob_rechunk_progress SET after_blake3 = '', done = FALSE")
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
        }};
    }
    match engine {
        Engine::Sqlite => on!(sqlx::SqliteConnection),
        Engine::Postgres => on!(sqlx::PgConnection),
    }
}

async fn blobs_stored_whole_before_chunking_are_split_by_the_background_pass(engine: Engine) {
    let (store, db) = open(engine).await;
    let large = noise(3 * CHUNK_BYTES + 5, 4);
    let medium = noise(CHUNK_BYTES + CHUNK_BYTES / 2, 5);
    let small = noise(500, 6);
    let mut hashes = Vec::new();
    for bytes in [&large, &medium, &small] {
        hashes.push(store_part(store.as_ref(), bytes).await.1);
    }
    store_whole_as_before_chunking(engine, &db.url, (&hashes[0], &large), true).await;
    store_whole_as_before_chunking(engine, &db.url, (&hashes[1], &medium), true).await;
    assert_eq!(chunk_rows(engine, &db.url).await, 0);
    let blobs = store.blobs();
    let read_back = || async {
        for (hash, bytes) in hashes.iter().zip([&large, &medium, &small]) {
            assert_eq!(
                blobs.whole(hash).await.unwrap().as_deref(),
                Some(&bytes[..])
            );
            let piece = blobs.read(hash, 7, 100).await.unwrap();
            assert_eq!(piece, bytes[7..107]);
        }
    };
    read_back().await;

    store::blobs::rechunk::rechunk_all(store.clone()).await;
    assert_eq!(
        chunk_rows(engine, &db.url).await,
        4 + 2,
        "both large blobs split"
    );
    read_back().await;
    // The pass has finished for good: it does not look again (a blob made whole now,
    // which no mailroom since chunking would do, stays so and still reads right).
    store_whole_as_before_chunking(engine, &db.url, (&hashes[1], &medium), false).await;
    store::blobs::rechunk::rechunk_all(store.clone()).await;
    assert_eq!(chunk_rows(engine, &db.url).await, 4);
    read_back().await;
}

engine_tests!(
    blobs_stored_whole_before_chunking_are_split_by_the_background_pass,
    large_blobs_are_read_back_a_chunk_at_a_time,
    small_blobs_stay_whole_and_read_in_pieces,
    deletes_take_the_chunks_no_other_email_uses,
);
