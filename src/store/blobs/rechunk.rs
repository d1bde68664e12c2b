//! Splits the blobs stored whole before chunking (migration 12) into `blob_chunks`, in
//! the background and in small steps (DESIGN §6), so that their downloads stream too.
//! New blobs are chunked as they are stored; this pass only catches up, once per
//! database: its mark (`blob_rechunk_progress`) walks the blobs in blake3 order and
//! says when it has reached the end.
//!
//! Each blob is split in a transaction of its own, which holds that one blob in memory,
//! as every download of it did before. Readers see either layout whole: a reader asks
//! for the layout with each piece it reads.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use sqlx::{Connection as _, Row as _};

use super::{CHUNK_BYTES, INSERT_CHUNK, is_chunked};
use crate::store::{Store, StoreError};
use crate::telemetry::error_chain;

/// Blobs looked at per step.
const STEP: u32 = 500;
/// A pause between steps, so the pass never holds the writer for long.
const PAUSE: Duration = Duration::from_millis(20);
/// After a failure (the database away, say), try again this much later.
const RETRY_AFTER: Duration = Duration::from_secs(30);

/// Runs the pass to its end; returns at once on a database where it has finished.
pub async fn rechunk_all(store: Arc<dyn Store>) {
    let mut split = 0;
    loop {
        match store.blobs().rechunk_step(STEP).await {
            Ok(None) => break,
            Ok(Some(n)) => {
                if split == 0 && n > 0 {
                    tracing::info!(
                        "splitting attachments stored whole into chunks, in the background"
                    );
                }
                split += n;
                tokio::time::sleep(PAUSE).await;
            }
            Err(error) => {
                tracing::warn!(error = %error_chain(&error), "splitting stored attachments into chunks failed; trying again");
                tokio::time::sleep(RETRY_AFTER).await;
            }
        }
    }
    if split > 0 {
        tracing::info!(split, "every stored attachment is in chunks");
    }
}

const PROGRESS: &str = "SELECT after_blake3, done FROM blob_rechunk_progress";
const SAVE_PROGRESS: &str = "UPDATE blob_rechunk_progress SET after_blake3 = $1, done = $2";
/// The next blobs after the mark, with whether each is stored whole. `length` reads no
/// bytes on either engine (SQLite keeps a blob's length in its record header;
/// PostgreSQL's TOAST pointer holds it).
const NEXT_BLOBS: &str = "SELECT blake3, size > $2 AND length(data) = size AS whole \
     FROM blobs WHERE blake3 > $1 ORDER BY blake3 LIMIT $3";
/// The bytes of a blob still stored whole. On PostgreSQL the row is locked first: a
/// delete locks it too (`LOCK_BLOBS`), so the two never interleave; `NO KEY` leaves an
/// ingest that reuses the blob (a foreign-key share lock) unblocked.
const WHOLE_BYTES: &str = "SELECT data FROM blobs WHERE blake3 = $1 AND length(data) = size";
const LOCK_ROW: &str = "SELECT 1 FROM blobs WHERE blake3 = $1 FOR NO KEY UPDATE";
const EMPTY_ROW: &str = "UPDATE blobs SET data = $2 WHERE blake3 = $1";

/// One step on one engine: `begin` opens the writing transaction, `lock` is the row lock
/// (PostgreSQL) or nothing (SQLite, whose writer is alone).
macro_rules! rechunk_step {
    ($step:ident, $split:ident, $pool:ty, begin = $begin:literal, lock = $lock:expr) => {
        pub(super) async fn $step(
            readers: &$pool,
            writer: &$pool,
            limit: u32,
        ) -> Result<Option<u64>, StoreError> {
            let progress = sqlx::query(PROGRESS).fetch_one(readers).await?;
            if progress.try_get::<bool, _>("done")? {
                return Ok(None);
            }
            let after: String = progress.try_get("after_blake3")?;
            let rows = sqlx::query(NEXT_BLOBS)
                .bind(&after)
                .bind(CHUNK_BYTES as i64)
                .bind(i64::from(limit))
                .fetch_all(readers)
                .await?;
            let mut split = 0;
            for row in &rows {
                if row.try_get::<Option<bool>, _>("whole")?.unwrap_or(false) {
                    split += u64::from($split(writer, row.try_get("blake3")?).await?);
                }
            }
            let last = match rows.last() {
                Some(row) => row.try_get("blake3")?,
                None => after,
            };
            sqlx::query(SAVE_PROGRESS)
                .bind(last)
                .bind(rows.len() < limit as usize)
                .execute(writer)
                .await?;
            Ok(Some(split))
        }

        /// Splits one blob if it is still stored whole; answers whether it did.
        async fn $split(writer: &$pool, blake3: String) -> Result<bool, StoreError> {
            let mut conn = writer.acquire().await?;
            let mut tx = conn.begin_with($begin).await?;
            if let Some(lock) = $lock {
                sqlx::query(lock).bind(&blake3).execute(&mut *tx).await?;
            }
            let bytes: Option<Vec<u8>> = sqlx::query_scalar(WHOLE_BYTES)
                .bind(&blake3)
                .fetch_optional(&mut *tx)
                .await?;
            // Gone, or split since it was listed: nothing to do.
            let Some(bytes) = bytes.filter(|bytes| is_chunked(bytes.len())) else {
                return Ok(false);
            };
            for (position, chunk) in bytes.chunks(CHUNK_BYTES).enumerate() {
                sqlx::query(INSERT_CHUNK)
                    .bind(&blake3)
                    .bind(position as i64)
                    .bind(chunk)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(EMPTY_ROW)
                .bind(&blake3)
                .bind(Vec::<u8>::new())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        }
    };
}

rechunk_step!(
    step_sqlite,
    split_sqlite,
    SqlitePool,
    begin = "BEGIN IMMEDIATE",
    lock = None::<&str>
);
rechunk_step!(
    step_postgres,
    split_postgres,
    PgPool,
    begin = "BEGIN",
    lock = Some(LOCK_ROW)
);
