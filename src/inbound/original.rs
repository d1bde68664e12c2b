//! The payload as ImprovMX sent it, rebuilt from a stored document (`GET
//! /emails/<id>/raw`): the inverse of `improvmx::parse`. Keys the store owns go back to
//! their names, and each part gets its `content` again, as base64 of its blob. What
//! comes back equals what was sent up to base64 line wrapping and key order.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize as _;
use serde_json::{Map, Value};

use super::improvmx::{COMPUTED_PART_KEYS, NOT_A_STRING, RESERVED_KEYS};
use crate::email::{PartKind, PartMeta};
use crate::store::{Store, StoreError};

/// The original payload of a stored email, its part bytes read from `store`.
pub async fn original_of(
    store: &dyn Store,
    document: &Map<String, Value>,
) -> Result<Map<String, Value>, StoreError> {
    let mut blobs = HashMap::new();
    for hash in blobs_needed(document) {
        if let Some(bytes) = store.blob(&hash).await? {
            blobs.insert(hash, bytes);
        }
    }
    Ok(original_payload(document, &blobs))
}

/// The blob addresses the parts of `document` need, each once.
pub fn blobs_needed(document: &Map<String, Value>) -> Vec<String> {
    let mut needed: Vec<String> = [PartKind::Attachment, PartKind::Inline]
        .into_iter()
        .flat_map(|kind| part_list(document, kind))
        .filter_map(|item| PartMeta::deserialize(item).ok().map(|meta| meta.blake3))
        .collect();
    needed.sort();
    needed.dedup();
    needed
}

/// The payload of `document`, with part bytes from `blobs` (by BLAKE3). A part whose
/// blob is missing gets no `content`.
pub fn original_payload(
    document: &Map<String, Value>,
    blobs: &HashMap<String, Vec<u8>>,
) -> Map<String, Value> {
    let mut payload = document.clone();
    restore_keys(&mut payload, &RESERVED_KEYS, "payload_");
    for kind in [PartKind::Attachment, PartKind::Inline] {
        if let Some(Value::Array(items)) = payload.get_mut(kind.field()) {
            for item in items.iter_mut() {
                if let Ok(meta) = PartMeta::deserialize(&*item) {
                    *item = Value::Object(original_part(meta, blobs));
                }
            }
        }
    }
    payload
}

fn part_list(document: &Map<String, Value>, kind: PartKind) -> &[Value] {
    match document.get(kind.field()) {
        Some(Value::Array(items)) => items,
        _ => &[],
    }
}

/// A stored part back as it arrived: its fields, then `content`.
fn original_part(meta: PartMeta, blobs: &HashMap<String, Vec<u8>>) -> Map<String, Value> {
    let mut part = meta.extra;
    restore_keys(&mut part, &["type", "name", "cid"], "original_");
    restore_keys(&mut part, &COMPUTED_PART_KEYS, "payload_");
    for (key, value) in [
        ("type", meta.content_type),
        ("name", meta.name),
        ("cid", meta.cid),
    ] {
        if let Some(value) = value {
            part.insert(key.into(), value.into());
        }
    }
    if let Some(bytes) = blobs.get(&meta.blake3) {
        // A part stored as received (not base64) gives back what came.
        let content = match meta.content_error.as_deref() {
            Some(NOT_A_STRING) => serde_json::from_slice(bytes).unwrap_or(Value::Null),
            Some(_) => String::from_utf8_lossy(bytes).into_owned().into(),
            None => STANDARD.encode(bytes).into(),
        };
        part.insert("content".into(), content);
    }
    part
}

/// Moves each `{prefix}{key}` back to `key`.
fn restore_keys(fields: &mut Map<String, Value>, keys: &[&str], prefix: &str) {
    for key in keys {
        if let Some(value) = fields.remove(&format!("{prefix}{key}")) {
            fields.insert((*key).to_owned(), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use serde_json::json;

    use super::*;
    use crate::inbound::improvmx::parse;

    /// Stores `payload` the way the writer does and rebuilds it.
    fn round_trip(payload: &Value) -> Value {
        let email = parse(payload.to_string().as_bytes(), Utc::now()).unwrap();
        let blobs: HashMap<String, Vec<u8>> = email.blobs.into_iter().collect();
        assert!(
            blobs_needed(&email.document)
                .iter()
                .all(|b| blobs.contains_key(b))
        );
        Value::Object(original_payload(&email.document, &blobs))
    }

    #[test]
    fn a_delivery_comes_back_as_it_was_sent() {
        let payload = json!({
            "headers": {"Message-ID": "<a@x.org>"},
            "to": [{"email": "ana@x.org", "name": "Ana"}],
            "from": {"email": "luis@y.org", "name": "Luis"},
            "subject": "Hola", "text": "hi", "html": "<p>hi</p>",
            "attachments": [{"type": "text/plain", "name": "a.txt", "content": "aGk=", "encoding": "base64"}],
            "inlines": [{"type": "image/png", "name": "i.png", "cid": "img1", "content": "iVBORw=="}],
        });
        assert_eq!(round_trip(&payload), payload);
    }

    #[test]
    fn keys_the_store_owns_and_forged_part_fields_go_back_to_their_names() {
        let payload = json!({
            "_id": "forged", "processed": true,
            "attachments": [
                {"name": 7, "blake3": "00", "size": 1, "content": "aGk="},
                {"name": "b.bin", "content": "not base64!"},
                {"name": "c.bin", "content": "12345"},
                {"name": "d.bin", "content": {"odd": true}},
                "not a part",
            ],
        });
        assert_eq!(round_trip(&payload), payload);
    }
}
