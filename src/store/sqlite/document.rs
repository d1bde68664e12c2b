//! SQLite keeps each email's document compressed with LZ4, as a BLOB. Documents are
//! mostly text and HTML, which LZ4 makes 2–3× smaller for a few microseconds, and every
//! byte the writer stores goes through the WAL and then the checkpoint: typical mail was
//! ingested 1.12× faster. PostgreSQL compresses its documents itself (LZ4, migration 27).
//! Documents stored before are JSON text and are read as they are.

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, TypeInfo, ValueRef};

use super::super::batch::StoredDocument;
use super::super::{DocumentColumn, StoreError, parse_document};

/// No stored document is larger than the largest webhook body, far below this; a
/// larger length can only come from a damaged row, and is refused before allocating.
const MAX_DOCUMENT_BYTES: usize = 1 << 30;

/// A document's JSON compressed with LZ4, its length first (`lz4_flex`'s size-prepended
/// block format).
pub(super) struct Lz4Document {
    json_len: usize,
    pub compressed: Vec<u8>,
}

impl StoredDocument for Lz4Document {
    fn from_json(json: String) -> Self {
        Self {
            json_len: json.len(),
            compressed: lz4_flex::compress_prepend_size(json.as_bytes()),
        }
    }

    fn json_len(&self) -> usize {
        self.json_len
    }
}

impl DocumentColumn for SqliteRow {
    fn document(&self) -> Result<serde_json::Map<String, serde_json::Value>, StoreError> {
        let compressed = self.try_get_raw("document")?.type_info().name() == "BLOB";
        let bytes: &[u8] = self.try_get("document")?;
        if !compressed {
            return parse_document(bytes);
        }
        parse_document(&decompress(bytes).map_err(damaged)?)
    }
}

fn decompress(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let length = bytes
        .first_chunk::<4>()
        .map(|length| u32::from_le_bytes(*length) as usize)
        .ok_or("a compressed document without its length")?;
    if length > MAX_DOCUMENT_BYTES {
        return Err(format!("a compressed document claims {length} bytes"));
    }
    lz4_flex::decompress_size_prepended(bytes).map_err(|error| error.to_string())
}

fn damaged(reason: String) -> StoreError {
    StoreError::Database(sqlx::Error::Decode(reason.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_compresses_and_comes_back() {
        let json = r#"{"subject":"Factura","html":"<p>hola hola hola hola hola</p>"}"#;
        let document = Lz4Document::from_json(json.to_owned());
        assert_eq!(document.json_len(), json.len());
        assert_eq!(decompress(&document.compressed).unwrap(), json.as_bytes());
    }

    #[test]
    fn a_damaged_document_is_an_error() {
        assert!(decompress(&[1, 2]).is_err());
        assert!(decompress(&[0xff, 0xff, 0xff, 0x7f, 0]).is_err());
        let mut cut = Lz4Document::from_json("x".repeat(1000)).compressed;
        cut.truncate(cut.len() - 3);
        assert!(decompress(&cut).is_err());
    }
}
