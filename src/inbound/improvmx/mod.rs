//! ImprovMX webhook payload → `NewEmail`. Pure: no I/O, golden-file tested.
//!
//! A genuine delivery is never refused for its shape: any JSON object is stored.
//! Header values may be strings or arrays, fields may be missing or null, unknown
//! fields are kept, and base64 that does not decode is kept as received.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::fmt;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use chrono::{DateTime, Utc};
use serde::de::{Deserializer as _, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};

mod message;

use super::raw_parts::{Budget, Content, RawPart, RawParts, parts_seed, value_seed};
pub use super::raw_parts::{Exceeded, PayloadLimits};
use crate::email::{EmailId, Message, NewEmail, PartKind, PartMeta};
pub use message::{message, parts};

/// Keys the store owns; a payload that carries them keeps them under a `payload_` prefix.
pub(super) const RESERVED_KEYS: [&str; 6] = [
    "_id",
    "received_at",
    "processed",
    "starred",
    "trashed",
    "mailboxes",
];

/// Part fields the server computes; a payload that carries them keeps them under a
/// `payload_` prefix, so a forged hash can never point a part at another email's bytes.
pub(super) const COMPUTED_PART_KEYS: [&str; 5] =
    ["size", "blake3", "sha256", "content_error", "url"];

/// A part's `content_error` when its text was not base64: the bytes are that text.
pub(super) const NOT_BASE64: &str = "content is not valid base64; stored as received";
/// A part's `content_error` when its `content` was not a string: the bytes are its JSON.
pub(super) const NOT_A_STRING: &str = "content is not a base64 string; stored as received JSON";

/// The part lists, in the order their blobs are collected.
const PART_KINDS: [PartKind; 2] = [PartKind::Attachment, PartKind::Inline];

#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("the body is not valid JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    #[error("the body must be a JSON object")]
    NotAnObject,
    #[error("the email has more than {0} attachments and inlines")]
    TooManyParts(usize),
    #[error("the body has more than {0} object keys and array elements")]
    TooManyJsonItems(usize),
}

/// Decodes one webhook body received at `received_at`.
///
/// Memory and time: the body is read in one pass, and the parts' base64 is never copied
/// out of it (unless it holds JSON escapes); it is decoded straight into its blob, so a
/// 25 MB delivery costs the body plus its decoded bytes, not several copies of either.
pub fn parse(body: &[u8], received_at: DateTime<Utc>) -> Result<NewEmail, PayloadError> {
    parse_within(body, received_at, PayloadLimits::default())
}

/// `parse`, refusing a body that goes over `limits` as soon as it does.
pub fn parse_within(
    body: &[u8],
    received_at: DateTime<Utc>,
    limits: PayloadLimits,
) -> Result<NewEmail, PayloadError> {
    let Payload {
        mut document,
        parts,
    } = read_payload(body, &Budget::new(limits))?;
    for key in RESERVED_KEYS {
        if let Some(value) = document.remove(key) {
            document.insert(format!("payload_{key}"), value);
        }
    }

    let mut blobs = Blobs::default();
    for (kind, raw) in PART_KINDS.into_iter().zip(parts) {
        if let Some(raw) = raw {
            document.insert(kind.field().to_owned(), decode_parts(raw, &mut blobs));
        }
    }
    let message = message(&document);
    Ok(NewEmail {
        id: EmailId::generate(received_at),
        dedup_key: dedup_key(&document, &message),
        received_at,
        processed: false,
        mailboxes: message.mailboxes(),
        search: super::search_fields::search_columns(&message),
        message,
        document,
        blobs: blobs.list,
    })
}

/// The top-level object: every field as a `Value`, except the part lists, whose base64
/// stays borrowed from the body.
struct Payload<'a> {
    document: Map<String, Value>,
    /// In `PART_KINDS` order.
    parts: [Option<RawParts<'a>>; 2],
}

fn read_payload<'a>(body: &'a [u8], budget: &Budget) -> Result<Payload<'a>, PayloadError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let payload = deserializer
        .deserialize_map(PayloadVisitor(budget))
        .and_then(|payload| deserializer.end().map(|()| payload));
    payload.map_err(|error| match (budget.exceeded(), error.classify()) {
        (Some(Exceeded::Parts), _) => PayloadError::TooManyParts(budget.limits().max_parts),
        (Some(Exceeded::JsonItems), _) => {
            PayloadError::TooManyJsonItems(budget.limits().max_json_items)
        }
        // Another type at the top: is it well-formed JSON? Checked without building it.
        (None, serde_json::error::Category::Data) => {
            match serde_json::from_slice::<IgnoredAny>(body) {
                Ok(_) => PayloadError::NotAnObject,
                Err(error) => PayloadError::NotJson(error),
            }
        }
        (None, _) => PayloadError::NotJson(error),
    })
}

struct PayloadVisitor<'b>(&'b Budget);

impl<'de> Visitor<'de> for PayloadVisitor<'_> {
    type Value = Payload<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut payload = Payload {
            document: Map::new(),
            parts: [None, None],
        };
        let budget = self.0;
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            budget.item()?;
            match PART_KINDS.iter().position(|kind| kind.field() == key) {
                // A later duplicate key wins, as it does for every other field.
                Some(index) => {
                    payload.parts[index] = Some(map.next_value_seed(parts_seed(budget))?)
                }
                None => {
                    let value = map.next_value_seed(value_seed(budget))?;
                    payload.document.insert(key.into_owned(), value);
                }
            }
        }
        Ok(payload)
    }
}

/// Decoded part bytes, each kept once per content hash, in delivery order.
#[derive(Default)]
struct Blobs {
    list: Vec<(String, Vec<u8>)>,
    seen: HashSet<String>,
}

/// A part list as stored: each object part becomes its `PartMeta`, its bytes join `blobs`
/// (once per content hash); anything else is kept as it came.
fn decode_parts(parts: RawParts<'_>, blobs: &mut Blobs) -> Value {
    let items = match parts {
        RawParts::List(items) => items,
        RawParts::Other(value) => return value,
    };
    let mut parts = Vec::with_capacity(items.len());
    for item in items {
        let (fields, content) = match item {
            RawPart::Object { fields, content } => (fields, content),
            RawPart::Other(value) => {
                parts.push(value);
                continue;
            }
        };
        let (meta, bytes) = decode_part(fields, content);
        if blobs.seen.insert(meta.blake3.clone()) {
            blobs.list.push((meta.blake3.clone(), bytes));
        }
        parts.push(serde_json::to_value(meta).expect("part metadata serializes"));
    }
    Value::Array(parts)
}

/// Splits a payload part into its metadata and decoded bytes.
fn decode_part(
    fields: BTreeMap<String, Value>,
    content: Option<Content<'_>>,
) -> (PartMeta, Vec<u8>) {
    let mut fields: Map<String, Value> = fields.into_iter().collect();
    for key in COMPUTED_PART_KEYS {
        if let Some(value) = fields.remove(key) {
            fields.insert(format!("payload_{key}"), value);
        }
    }
    let (bytes, content_error) = match content {
        Some(Content::Text(text)) => match decode_base64_leniently(&text) {
            Some(bytes) => (bytes, None),
            None => (text.into_owned().into_bytes(), Some(NOT_BASE64.to_owned())),
        },
        None | Some(Content::Other(Value::Null)) => (Vec::new(), None),
        Some(Content::Other(other)) => (
            other.to_string().into_bytes(),
            Some(NOT_A_STRING.to_owned()),
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
        blake3: blake3::hash(&bytes).to_hex().to_string(),
        content_error,
        extra: fields,
    };
    (meta, bytes)
}

/// Standard or URL-safe base64, wrapped or not, padded or not.
///
/// The common case (one unwrapped line) decodes straight from `text`, with no copy.
pub fn decode_base64_leniently(text: &str) -> Option<Vec<u8>> {
    const CONFIG: GeneralPurposeConfig = GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true);
    const STANDARD: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, CONFIG);
    const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, CONFIG);

    if let Ok(bytes) = STANDARD.decode(text) {
        return Some(bytes);
    }
    if !text.bytes().any(|b| b.is_ascii_whitespace()) {
        return URL_SAFE.decode(text).ok();
    }
    let compact: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    STANDARD
        .decode(&compact)
        .or_else(|_| URL_SAFE.decode(&compact))
        .ok()
}

/// Message-ID + recipients + a hash of the content.
///
/// A sender-chosen Message-ID alone never makes two emails the same: the content
/// hash covers every stored field (part bytes by their BLAKE3) except ImprovMX's
/// delivery `timestamp`, which is not part of the email.
fn dedup_key(document: &Map<String, Value>, message: &Message) -> String {
    // serde_json's default map is ordered by key, so this serialization is canonical.
    let mut content_hash = blake3::Hasher::new();
    serde_json::to_writer(&mut content_hash, &WithoutTimestamp(document))
        .expect("a JSON map serializes");
    let message_id = message.message_id.as_deref().map(str::trim);
    key_of(
        message_id.unwrap_or_default(),
        &recipients(message),
        content_hash.finalize().as_bytes(),
    )
}

/// The `to` addresses, lower-cased (not trimmed, as the key has always had them).
fn recipients(message: &Message) -> String {
    let addresses = message.to.iter().filter_map(|p| p.address.as_deref());
    let folded: Vec<String> = addresses.map(str::to_lowercase).collect();
    folded.join(",")
}

/// The dedup key from its three components; versioned, so a later scheme never collides.
fn key_of(message_id: &str, recipients: &str, content_hash: &[u8]) -> String {
    let mut key = blake3::Hasher::new();
    key.update(b"mailroom-dedup-v2\0");
    key.update(message_id.as_bytes());
    key.update(b"\0");
    key.update(recipients.as_bytes());
    key.update(b"\0");
    key.update(content_hash);
    key.finalize().to_hex().to_string()
}

/// The document as JSON without its `timestamp`, serialized without cloning it.
struct WithoutTimestamp<'a>(&'a Map<String, Value>);

impl serde::Serialize for WithoutTimestamp<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().filter(|(key, _)| *key != "timestamp"))
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
        let sender = |email: &NewEmail| email.message.sender_address();
        assert_eq!(sender(&object).as_deref(), Some("ana@example.org"));
        assert_eq!(sender(&string).as_deref(), Some("ana@example.org"));
        assert_eq!(sender(&missing), None);
    }

    #[test]
    fn mailboxes_come_from_every_recipient_field() {
        let email = parse(
            br#"{"to":[{"email":"Ana+x@PuntoA.ar"},"Luis <luis@puntoa.ar>"],
                 "cc":{"email":"ext@example.net"},
                 "envelope":{"recipient":"env@puntoa.ar"},
                 "headers":{"Delivered-To":["ana@puntoa.ar","soporte@puntoa.ar"],"X-Original-To":"orig@puntoa.ar"}}"#,
            at(),
        )
        .unwrap();
        assert_eq!(
            email.mailboxes,
            [
                "ana@puntoa.ar",
                "luis@puntoa.ar",
                "ext@example.net",
                "env@puntoa.ar",
                "soporte@puntoa.ar",
                "orig@puntoa.ar"
            ]
        );
    }

    #[test]
    fn identical_parts_share_one_blob() {
        let body =
            br#"{"attachments":[{"name":"a","content":"aGk="},{"name":"b","content":"aGk="}]}"#;
        let email = parse(body, at()).unwrap();
        assert_eq!(email.blobs.len(), 1);
    }

    /// The previous implementation (whole body as a `Value`), kept as the reference that
    /// the borrowing parser must match field for field and byte for byte.
    type Reference = (Map<String, Value>, String, Vec<(String, Vec<u8>)>);

    fn reference_parse(body: &[u8]) -> Option<Reference> {
        let Ok(Value::Object(mut document)) = serde_json::from_slice::<Value>(body) else {
            return None;
        };
        for key in RESERVED_KEYS {
            if let Some(value) = document.remove(key) {
                document.insert(format!("payload_{key}"), value);
            }
        }
        let mut blobs: Vec<(String, Vec<u8>)> = Vec::new();
        for kind in [PartKind::Attachment, PartKind::Inline] {
            if let Some(Value::Array(parts)) = document.get_mut(kind.field()) {
                for part in parts.iter_mut() {
                    if let Value::Object(fields) = part {
                        let mut fields: BTreeMap<String, Value> =
                            std::mem::take(fields).into_iter().collect();
                        let content = fields.remove("content").map(|value| match value {
                            Value::String(text) => Content::Text(Cow::Owned(text)),
                            other => Content::Other(other),
                        });
                        let (meta, bytes) = decode_part(fields, content);
                        if !blobs.iter().any(|(hash, _)| *hash == meta.blake3) {
                            blobs.push((meta.blake3.clone(), bytes));
                        }
                        *part = serde_json::to_value(meta).unwrap();
                    }
                }
            }
        }
        let mut content = document.clone();
        content.remove("timestamp");
        let content_hash = blake3::hash(&serde_json::to_vec(&content).unwrap());
        let message_id = document
            .get("message-id")
            .and_then(Value::as_str)
            .map(str::trim)
            .unwrap_or_default();
        let recipients: Vec<String> = match document.get("to") {
            Some(Value::Array(items)) => items.iter().filter_map(reference_address).collect(),
            Some(other) => reference_address(other).into_iter().collect(),
            None => Vec::new(),
        };
        let key = key_of(message_id, &recipients.join(","), content_hash.as_bytes());
        Some((document, key, blobs))
    }

    /// The address of a `to` item as the reference read it.
    fn reference_address(value: &Value) -> Option<String> {
        let address = match value {
            Value::Object(fields) => fields.get("email")?.as_str()?,
            Value::String(text) => crate::email::angle_address(text),
            _ => return None,
        };
        Some(address.to_lowercase())
    }

    fn assert_matches_reference(body: &[u8]) {
        let email = parse(body, at()).unwrap();
        let (document, dedup_key, blobs) = reference_parse(body).unwrap();
        let shown = String::from_utf8_lossy(body);
        assert_eq!(email.document, document, "{shown}");
        assert_eq!(email.dedup_key, dedup_key, "{shown}");
        assert_eq!(email.blobs, blobs, "{shown}");
    }

    #[test]
    fn fixtures_parse_exactly_as_the_value_based_parser_did() {
        for name in [
            "full-arrays.json",
            "legacy-string-headers.json",
            "minimal.json",
            "multi-recipient-unicode.json",
        ] {
            let path = format!(
                "{}/tests/fixtures/improvmx/{name}",
                env!("CARGO_MANIFEST_DIR")
            );
            assert_matches_reference(&std::fs::read(path).unwrap());
        }
    }

    #[test]
    fn odd_part_shapes_parse_exactly_as_the_value_based_parser_did() {
        for body in [
            &br#"{"attachments":null,"inlines":"x"}"#[..],
            br#"{"attachments":[1,"two",null,[3],{"content":"aGk="}]}"#,
            br#"{"attachments":[{"content":null},{"content":12},{"content":{"a":1}}]}"#,
            br#"{"attachments":[{"content":"aGk\/\u0041=","name":7,"type":null,"cid":"c"}]}"#,
            br#"{"attachments":[{"content":"aGVs\r\nbG8=","encoding":"base64"}]}"#,
            br#"{"attachments":[{"content":"x"}],"attachments":[{"content":"aGk="}]}"#,
            br#"{"inlines":[{"content":"aGk=","content":"aGVsbG8="}],"_id":1,"processed":2}"#,
            br#"{"attachments":[{"content":"aGk="}],"inlines":[{"content":"aGk="}]}"#,
            br#"{"subject":"caf\u00e9 \u0000","timestamp":5,"from":"A <A@B>","to":"c@d"}"#,
            br#"{"attachments":[{"content":"%%% not base64"}],"text":"\ud83d\ude00"}"#,
        ] {
            assert_matches_reference(body);
        }
    }

    #[test]
    fn escaped_base64_decodes_like_plain_base64() {
        let email = parse(br#"{"attachments":[{"content":"aGVsbG8\/"}]}"#, at()).unwrap();
        assert_eq!(
            email.blobs[0].1,
            decode_base64_leniently("aGVsbG8/").unwrap()
        );
    }

    #[test]
    fn deep_nesting_inside_a_part_is_refused() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        for body in [
            format!(r#"{{"attachments":{deep}}}"#),
            format!(r#"{{"attachments":[{deep}]}}"#),
            format!(r#"{{"attachments":[{{"name":{deep}}}]}}"#),
            format!(r#"{{"attachments":[{{"content":{deep}}}]}}"#),
        ] {
            assert!(matches!(
                parse(body.as_bytes(), at()),
                Err(PayloadError::NotJson(_))
            ));
        }
    }

    #[test]
    fn well_formed_non_objects_are_not_objects_and_broken_json_is_not_json() {
        assert!(matches!(parse(b"[]", at()), Err(PayloadError::NotAnObject)));
        assert!(matches!(
            parse(b" 42 ", at()),
            Err(PayloadError::NotAnObject)
        ));
        assert!(matches!(
            parse(b"{} x", at()),
            Err(PayloadError::NotJson(_))
        ));
        assert!(matches!(
            parse(br#"{"attachments":[}"#, at()),
            Err(PayloadError::NotJson(_))
        ));
    }

    #[test]
    fn a_large_attachment_decodes_intact() {
        let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let body = format!(r#"{{"attachments":[{{"name":"big.bin","content":"{encoded}"}}]}}"#);
        let email = parse(body.as_bytes(), at()).unwrap();
        assert_eq!(email.blobs[0].1, bytes);
        assert_eq!(email.document["attachments"][0]["size"], 3_000_000);
    }
}
