//! Stored emails as the API shows them: the old service's fields, parts as metadata + URL.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

use crate::email::{PartKind, StoredEmail};

/// `2024-11-14T12:12:45.123Z`, as the old service printed dates.
pub fn iso_8601(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The email's JSON: `_id`, the delivered fields, `received_at`, `processed`; each
/// attachment and inline carries a download `url` instead of its base64 content.
pub fn email_json(email: StoredEmail) -> Value {
    let StoredEmail {
        id,
        received_at,
        processed,
        mut document,
    } = email;
    for kind in [PartKind::Attachment, PartKind::Inline] {
        if let Some(Value::Array(parts)) = document.get_mut(kind.field()) {
            for (index, part) in parts.iter_mut().enumerate() {
                if let Value::Object(fields) = part {
                    let url = format!("/emails/{id}/{}/{index}", kind.field());
                    fields.insert("url".into(), url.into());
                }
            }
        }
    }
    let mut json = Map::with_capacity(document.len() + 3);
    json.insert("_id".into(), id.to_string().into());
    json.extend(document);
    json.insert("received_at".into(), iso_8601(received_at).into());
    json.insert("processed".into(), processed.into());
    Value::Object(json)
}
