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
pub fn email_json(mut email: StoredEmail) -> Value {
    for kind in [PartKind::Attachment, PartKind::Inline] {
        let servable: Vec<usize> = email.parts(kind).map(|(index, _)| index).collect();
        if let Some(Value::Array(parts)) = email.document.get_mut(kind.field()) {
            for index in servable {
                if let Some(Value::Object(fields)) = parts.get_mut(index) {
                    let url = format!("/emails/{}/{}/{index}", email.id, kind.field());
                    fields.insert("url".into(), url.into());
                }
            }
        }
    }
    let StoredEmail {
        id,
        received_at,
        processed,
        starred,
        trashed,
        document,
    } = email;
    let mut json = Map::with_capacity(document.len() + 5);
    json.insert("_id".into(), id.to_string().into());
    json.extend(document);
    json.insert("received_at".into(), iso_8601(received_at).into());
    json.insert("processed".into(), processed.into());
    json.insert("starred".into(), starred.into());
    json.insert("trashed".into(), trashed.into());
    Value::Object(json)
}

/// Body fields that a list item cuts.
const LIST_BODY_FIELDS: [&str; 2] = ["text", "html"];

/// The email's JSON for a list page: as `email_json`, with `text` and `html` cut to at
/// most `max_bytes` (at a character boundary) and `"truncated": true` when either was,
/// so that one huge email never makes every page huge.
pub fn list_item_json(email: StoredEmail, max_bytes: usize) -> Value {
    let mut json = email_json(email);
    let Value::Object(fields) = &mut json else {
        return json;
    };
    let mut truncated = false;
    for name in LIST_BODY_FIELDS {
        if let Some(Value::String(text)) = fields.get_mut(name)
            && text.len() > max_bytes
        {
            text.truncate(text.floor_char_boundary(max_bytes));
            truncated = true;
        }
    }
    if truncated {
        fields.insert("truncated".into(), true.into());
    }
    json
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::email::EmailId;

    fn stored(document: Value) -> StoredEmail {
        StoredEmail {
            id: EmailId::generate(Utc::now()),
            received_at: Utc::now(),
            processed: false,
            starred: false,
            trashed: false,
            document: document.as_object().unwrap().clone(),
        }
    }

    #[test]
    fn long_bodies_are_cut_at_a_character_boundary_and_marked() {
        let email = stored(serde_json::json!({"text": "ñ".repeat(10), "html": "<p>hi</p>"}));
        let item = list_item_json(email, 9);
        assert_eq!(item["text"], "ññññ");
        assert_eq!(item["html"], "<p>hi</p>");
        assert_eq!(item["truncated"], true);
    }

    #[test]
    fn short_bodies_are_left_whole_and_unmarked() {
        let item = list_item_json(stored(serde_json::json!({"text": "hola"})), 5);
        assert_eq!(item["text"], "hola");
        assert!(item.get("truncated").is_none());
    }
}
