//! ImprovMX webhook payload → `NewEmail`. Pure: no I/O, golden-file tested.
//!
//! A genuine delivery is never refused for its shape: any JSON object is stored.
//! Header values may be strings or arrays, fields may be missing or null, unknown
//! fields are kept, and base64 that does not decode is kept as received.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::email::{EmailId, NewEmail, PartKind, PartMeta};

/// Keys the store owns; a payload that carries them keeps them under a `payload_` prefix.
const RESERVED_KEYS: [&str; 3] = ["_id", "received_at", "processed"];

#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("the body is not valid JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    #[error("the body must be a JSON object")]
    NotAnObject,
}

/// Decodes one webhook body received at `received_at`.
pub fn parse(body: &[u8], received_at: DateTime<Utc>) -> Result<NewEmail, PayloadError> {
    let value: Value = serde_json::from_slice(body).map_err(PayloadError::NotJson)?;
    let Value::Object(mut document) = value else {
        return Err(PayloadError::NotAnObject);
    };
    for key in RESERVED_KEYS {
        if let Some(value) = document.remove(key) {
            document.insert(format!("payload_{key}"), value);
        }
    }

    let mut blobs = Vec::new();
    for kind in [PartKind::Attachment, PartKind::Inline] {
        if let Some(Value::Array(parts)) = document.get_mut(kind.field()) {
            for part in parts.iter_mut() {
                if let Value::Object(fields) = part {
                    let (meta, bytes) = decode_part(std::mem::take(fields));
                    if !blobs.iter().any(|(sha, _)| *sha == meta.sha256) {
                        blobs.push((meta.sha256.clone(), bytes));
                    }
                    *part = serde_json::to_value(meta).expect("part metadata serializes");
                }
            }
        }
    }

    Ok(NewEmail {
        id: EmailId::generate(received_at),
        dedup_key: dedup_key(&document),
        received_at,
        processed: false,
        from_email: sender_address(document.get("from")).map(|a| a.to_lowercase()),
        subject: document
            .get("subject")
            .and_then(Value::as_str)
            .map(str::to_owned),
        document,
        blobs,
    })
}

/// Splits a payload part into its metadata and decoded bytes.
fn decode_part(mut fields: Map<String, Value>) -> (PartMeta, Vec<u8>) {
    let content = fields.remove("content");
    let (bytes, content_error) = match &content {
        Some(Value::String(text)) => match decode_base64_leniently(text) {
            Some(bytes) => (bytes, None),
            None => (
                text.as_bytes().to_vec(),
                Some("content is not valid base64; stored as received".to_owned()),
            ),
        },
        None | Some(Value::Null) => (Vec::new(), None),
        Some(other) => (
            other.to_string().into_bytes(),
            Some("content is not a base64 string; stored as received JSON".to_owned()),
        ),
    };
    let mut take_string = |key: &str| match fields.remove(key) {
        Some(Value::String(s)) => Some(s),
        Some(Value::Null) | None => None,
        Some(other) => {
            // Not a string: keep the original value rather than lose it.
            fields.insert(format!("original_{key}"), other);
            None
        }
    };
    let meta = PartMeta {
        content_type: take_string("type"),
        name: take_string("name"),
        cid: take_string("cid"),
        size: bytes.len() as u64,
        sha256: hex::encode(Sha256::digest(&bytes)),
        content_error,
        extra: fields,
    };
    (meta, bytes)
}

/// Standard or URL-safe base64, wrapped or not, padded or not.
pub fn decode_base64_leniently(text: &str) -> Option<Vec<u8>> {
    const CONFIG: GeneralPurposeConfig = GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true);
    const STANDARD: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, CONFIG);
    const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, CONFIG);

    let compact: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    STANDARD
        .decode(&compact)
        .or_else(|_| URL_SAFE.decode(&compact))
        .ok()
}

/// The sender's address from `from`: `{"email": …}` or a bare `"Name <addr>"` string.
fn sender_address(from: Option<&Value>) -> Option<&str> {
    match from? {
        Value::Object(fields) => fields.get("email")?.as_str(),
        Value::String(text) => Some(angle_address(text)),
        _ => None,
    }
}

fn angle_address(text: &str) -> &str {
    match (text.rfind('<'), text.rfind('>')) {
        (Some(start), Some(end)) if start < end => text[start + 1..end].trim(),
        _ => text.trim(),
    }
}

/// Message-ID + recipients + a hash of the content.
///
/// A sender-chosen Message-ID alone never makes two emails the same: the content
/// hash covers every stored field (part bytes by their SHA-256) except ImprovMX's
/// delivery `timestamp`, which is not part of the email.
fn dedup_key(document: &Map<String, Value>) -> String {
    let mut content = document.clone();
    content.remove("timestamp");
    // serde_json's default map is ordered by key, so this serialization is canonical.
    let canonical = serde_json::to_vec(&content).expect("a JSON map serializes");
    let content_hash = Sha256::digest(&canonical);

    let message_id = document
        .get("message-id")
        .and_then(Value::as_str)
        .map(str::trim)
        .unwrap_or_default();
    let recipients = recipient_addresses(document.get("to")).join(",");

    let mut key = Sha256::new();
    key.update(b"mailroom-dedup-v1\0");
    key.update(message_id.as_bytes());
    key.update(b"\0");
    key.update(recipients.as_bytes());
    key.update(b"\0");
    key.update(content_hash);
    hex::encode(key.finalize())
}

fn recipient_addresses(to: Option<&Value>) -> Vec<String> {
    let one = |value: &Value| sender_address(Some(value)).map(str::to_lowercase);
    match to {
        Some(Value::Array(items)) => items.iter().filter_map(one).collect(),
        Some(other) => one(other).into_iter().collect(),
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_731_586_365, 0).unwrap()
    }

    #[test]
    fn wrapped_and_unpadded_base64_decode() {
        assert_eq!(decode_base64_leniently("aGVs\r\nbG8=").unwrap(), b"hello");
        assert_eq!(decode_base64_leniently("aGVsbG8").unwrap(), b"hello");
        assert_eq!(decode_base64_leniently("_-8").unwrap(), vec![0xff, 0xef]);
        assert!(decode_base64_leniently("not base64!").is_none());
    }

    #[test]
    fn invalid_base64_is_kept_as_received() {
        let body = br#"{"attachments":[{"name":"x.bin","content":"%%% not base64"}]}"#;
        let email = parse(body, at()).unwrap();
        assert_eq!(email.blobs[0].1, b"%%% not base64");
        let part = &email.document["attachments"][0];
        assert!(part["content_error"].is_string());
        assert!(part.get("content").is_none());
    }

    #[test]
    fn reserved_keys_are_kept_under_a_prefix() {
        let email = parse(br#"{"_id":"x","processed":true}"#, at()).unwrap();
        assert_eq!(email.document["payload__id"], "x");
        assert_eq!(email.document["payload_processed"], true);
        assert!(!email.processed);
    }

    #[test]
    fn non_objects_are_refused() {
        for body in [&b""[..], b"[]", b"42", b"\"x\"", b"{", b"null"] {
            assert!(
                parse(body, at()).is_err(),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn deep_nesting_is_refused_without_overflowing_the_stack() {
        let body = "[".repeat(100_000);
        assert!(matches!(
            parse(body.as_bytes(), at()),
            Err(PayloadError::NotJson(_))
        ));
    }

    #[test]
    fn the_delivery_timestamp_does_not_change_the_dedup_key() {
        let a = parse(br#"{"message-id":"<a@x>","timestamp":1}"#, at()).unwrap();
        let b = parse(br#"{"message-id":"<a@x>","timestamp":2}"#, at()).unwrap();
        assert_eq!(a.dedup_key, b.dedup_key);
    }

    #[test]
    fn same_message_id_with_other_content_is_not_a_duplicate() {
        let a = parse(br#"{"message-id":"<a@x>","text":"one"}"#, at()).unwrap();
        let b = parse(br#"{"message-id":"<a@x>","text":"two"}"#, at()).unwrap();
        let c = parse(
            br#"{"message-id":"<a@x>","text":"one","to":[{"email":"b@y"}]}"#,
            at(),
        )
        .unwrap();
        assert_ne!(a.dedup_key, b.dedup_key);
        assert_ne!(a.dedup_key, c.dedup_key);
    }

    #[test]
    fn sender_may_be_an_object_or_a_string() {
        let object = parse(br#"{"from":{"email":"Ana@Example.ORG"}}"#, at()).unwrap();
        let string = parse(br#"{"from":"Ana <ana@example.org>"}"#, at()).unwrap();
        let missing = parse(br#"{"from":null}"#, at()).unwrap();
        assert_eq!(object.from_email.as_deref(), Some("ana@example.org"));
        assert_eq!(string.from_email.as_deref(), Some("ana@example.org"));
        assert_eq!(missing.from_email, None);
    }

    #[test]
    fn identical_parts_share_one_blob() {
        let body =
            br#"{"attachments":[{"name":"a","content":"aGk="},{"name":"b","content":"aGk="}]}"#;
        let email = parse(body, at()).unwrap();
        assert_eq!(email.blobs.len(), 1);
    }
}
