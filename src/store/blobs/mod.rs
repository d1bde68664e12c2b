//! Part bytes, stored once per BLAKE3 (DESIGN §6), and read back in pieces.
//!
//! A blob of up to `CHUNK_BYTES` lives in its `blobs` row. A larger one is split into
//! `blob_chunks` rows of `CHUNK_BYTES` (its `blobs` row keeps the size and no bytes), so a
//! download reads one chunk at a time and never holds a 50 MB attachment in memory:
//! neither engine can read part of one large value without loading it all (SQLite's
//! `substr` and PostgreSQL's compressed TOAST both do). Blobs stored before chunking keep
//! their bytes in `blobs` until a background pass splits them (`rechunk`); until then
//! they are read whole, as before.

pub mod rechunk;

use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use futures::Stream;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use sqlx::{PgConnection, Row as _, SqliteConnection};

use super::{Store, StoreError};

/// The size of one stored chunk, and the most a single read returns.
pub const CHUNK_BYTES: usize = 1024 * 1024;

/// Reading blobs, behind `Store::blobs`.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// The blob's size in bytes; `None` when there is no such blob.
    async fn size(&self, blake3: &str) -> Result<Option<u64>, StoreError>;

    /// `len` bytes from `start` (fewer at the end), reading at most the one chunk that
    /// holds `start`: callers stream a blob by asking for `CHUNK_BYTES` at a time from
    /// chunk boundaries.
    async fn read(&self, blake3: &str, start: u64, len: usize) -> Result<Vec<u8>, StoreError>;

    /// The whole blob, for what needs it in one piece (the original payload).
    async fn whole(&self, blake3: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// One step of the pass that splits blobs stored whole before chunking: looks at
    /// the next `limit` blobs after the saved mark, splits those stored whole, and moves
    /// the mark. Answers how many it split, or `None` once the pass has finished.
    async fn rechunk_step(&self, limit: u32) -> Result<Option<u64>, StoreError>;
}

/// The bytes `range` of a blob, as pieces of at most `CHUNK_BYTES` read one after the
/// other as the stream is polled: a slow client holds one piece, never the blob.
pub fn stream(
    store: Arc<dyn Store>,
    blake3: String,
    range: Range<u64>,
) -> impl Stream<Item = Result<Vec<u8>, StoreError>> + Send + 'static {
    futures::stream::try_unfold(range.start, move |at| {
        let store = store.clone();
        let blake3 = blake3.clone();
        async move {
            if at >= range.end {
                return Ok(None);
            }
            let want = usize::try_from(range.end - at).map_or(CHUNK_BYTES, |n| n.min(CHUNK_BYTES));
            let piece = store.blobs().read(&blake3, at, want).await?;
            if piece.is_empty() {
                // The blob is shorter than its size says: end with an error, not a loop.
                return Err(StoreError::Database(sqlx::Error::Protocol(format!(
                    "blob {blake3} ends before byte {at}"
                ))));
            }
            let next = at + piece.len() as u64;
            Ok(Some((piece, next)))
        }
    })
}

/// Whether a blob's bytes are in `blob_chunks` rather than its own row.
const LAYOUT: &str = "SELECT size, length(data) < size AS chunked FROM blobs WHERE blake3 = $1";
const READ_INLINE: &str = "SELECT substr(data, CAST($2 AS INTEGER), CAST($3 AS INTEGER)) \
     FROM blobs WHERE blake3 = $1";
const READ_CHUNK: &str = "SELECT substr(data, CAST($3 AS INTEGER), CAST($4 AS INTEGER)) \
     FROM blob_chunks WHERE blob = $1 AND position = $2";
const ALL_CHUNKS: &str = "SELECT data FROM blob_chunks WHERE blob = $1 ORDER BY position";
const WHOLE_INLINE: &str = "SELECT data FROM blobs WHERE blake3 = $1";
/// A chunked blob's row: its size, and no bytes.
const INSERT_CHUNKED: &str = "INSERT INTO blobs (blake3, size, data) VALUES ($1, $2, $3) \
     ON CONFLICT (blake3) DO NOTHING";
pub(super) const INSERT_CHUNK: &str =
    "INSERT INTO blob_chunks (blob, position, data) VALUES ($1, $2, $3)";
/// After a delete dropped blobs: their chunks go too.
pub(super) const DELETE_ORPHAN_CHUNKS: &str = "DELETE FROM blob_chunks WHERE blob IN ({ids}) \
     AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.blake3 = blob_chunks.blob)";

/// Whether a blob of `len` bytes is stored in chunks.
pub(super) fn is_chunked(len: usize) -> bool {
    len > CHUNK_BYTES
}

/// The blob reader on one engine's pool; the SQL is the same on both (PostgreSQL has
/// `substr` and `length` for `bytea` too).
macro_rules! blob_store {
    ($store:ident, $pool:ty, $rechunk_step:path) => {
        pub(super) struct $store {
            pub readers: $pool,
            /// Only the re-chunking pass writes (on SQLite, the mail-state writer).
            pub writer: $pool,
        }

        #[async_trait]
        impl BlobStore for $store {
            async fn size(&self, blake3: &str) -> Result<Option<u64>, StoreError> {
                let size: Option<i64> =
                    sqlx::query_scalar("SELECT size FROM blobs WHERE blake3 = $1")
                        .bind(blake3)
                        .fetch_optional(&self.readers)
                        .await?;
                Ok(size.map(|size| size as u64))
            }

            async fn read(
                &self,
                blake3: &str,
                start: u64,
                len: usize,
            ) -> Result<Vec<u8>, StoreError> {
                let Some(layout) = sqlx::query(LAYOUT)
                    .bind(blake3)
                    .fetch_optional(&self.readers)
                    .await?
                else {
                    return Ok(Vec::new());
                };
                let chunked: bool = layout.try_get("chunked")?;
                let chunk = CHUNK_BYTES as u64;
                let query = if chunked {
                    // Within the one chunk that holds `start`.
                    let len = len.min((chunk - start % chunk) as usize);
                    sqlx::query_scalar(READ_CHUNK)
                        .bind(blake3)
                        .bind((start / chunk) as i64)
                        .bind((start % chunk) as i64 + 1)
                        .bind(len as i64)
                } else {
                    sqlx::query_scalar(READ_INLINE)
                        .bind(blake3)
                        .bind(start as i64 + 1)
                        .bind(len as i64)
                };
                let bytes: Option<Vec<u8>> = query.fetch_optional(&self.readers).await?;
                Ok(bytes.unwrap_or_default())
            }

            async fn whole(&self, blake3: &str) -> Result<Option<Vec<u8>>, StoreError> {
                let Some(layout) = sqlx::query(LAYOUT)
                    .bind(blake3)
                    .fetch_optional(&self.readers)
                    .await?
                else {
                    return Ok(None);
                };
                if !layout.try_get::<bool, _>("chunked")? {
                    return Ok(sqlx::query_scalar(WHOLE_INLINE)
                        .bind(blake3)
                        .fetch_optional(&self.readers)
                        .await?);
                }
                let chunks: Vec<Vec<u8>> = sqlx::query_scalar(ALL_CHUNKS)
                    .bind(blake3)
                    .fetch_all(&self.readers)
                    .await?;
                Ok(Some(chunks.concat()))
            }

            async fn rechunk_step(&self, limit: u32) -> Result<Option<u64>, StoreError> {
                $rechunk_step(&self.readers, &self.writer, limit).await
            }
        }
    };
}

blob_store!(SqliteBlobs, SqlitePool, rechunk::step_sqlite);
blob_store!(PostgresBlobs, PgPool, rechunk::step_postgres);

/// Stores a large blob as chunks, unless it is stored already; inside the caller's
/// transaction. One macro body for both engines' connections.
macro_rules! insert_chunked {
    ($name:ident, $conn:ty) => {
        pub(super) async fn $name(
            conn: &mut $conn,
            blake3: &str,
            bytes: &[u8],
        ) -> Result<(), sqlx::Error> {
            let inserted = sqlx::query(INSERT_CHUNKED)
                .bind(blake3)
                .bind(bytes.len() as i64)
                .bind(Vec::<u8>::new())
                .execute(&mut *conn)
                .await?
                .rows_affected();
            if inserted == 0 {
                return Ok(());
            }
            for (position, chunk) in bytes.chunks(CHUNK_BYTES).enumerate() {
                sqlx::query(INSERT_CHUNK)
                    .bind(blake3)
                    .bind(position as i64)
                    .bind(chunk)
                    .execute(&mut *conn)
                    .await?;
            }
            Ok(())
        }
    };
}

insert_chunked!(insert_chunked_sqlite, SqliteConnection);
insert_chunked!(insert_chunked_postgres, PgConnection);
