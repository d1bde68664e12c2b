//! An ImprovMX document (the payload as stored, parts as `PartMeta`) read as a
//! `Message`: the one place that knows ImprovMX's field names. Pure.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::email::{Message, Part, PartKind, PartMeta, Person, Provider, angle_address};

/// The message in a stored or new ImprovMX document. Fields of an unexpected type are
/// read as missing; the document itself keeps them as delivered.
pub fn message(document: &Map<String, Value>) -> Message {
    let text = |name: &str| {
        document
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let envelope = document.get("envelope").and_then(|e| e.get("recipient"));
    Message {
        provider: Provider::ImprovMx,
        message_id: text("message-id"),
        from: document.get("from").and_then(person),
        to: people(document.get("to")),
        cc: people(document.get("cc")),
        envelope_to: people(envelope)
            .into_iter()
            .filter_map(|p| p.address)
            .collect(),
        subject: text("subject"),
        date: text("date"),
        text: text("text"),
        html: text("html"),
        headers: headers(document.get("headers")),
        parts: parts(document),
    }
}

/// The parts of a document: attachments, then inlines.
pub fn parts(document: &Map<String, Value>) -> Vec<Part> {
    [PartKind::Attachment, PartKind::Inline]
        .into_iter()
        .flat_map(|kind| parts_of(document, kind))
        .collect()
}

/// `{"name", "email"}` (either may be missing), or `"Name <address>"`.
fn person(value: &Value) -> Option<Person> {
    match value {
        Value::Object(fields) => Some(Person {
            name: fields
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_owned),
            address: fields
                .get("email")
                .and_then(Value::as_str)
                .map(str::to_owned),
        }),
        Value::String(text) => {
            let address = angle_address(text);
            let name = text.rfind('<').map(|start| text[..start].trim());
            Some(Person {
                name: name.filter(|n| !n.is_empty()).map(str::to_owned),
                address: Some(address.to_owned()),
            })
        }
        _ => None,
    }
}

/// A list of people; one alone is a list of one.
fn people(value: Option<&Value>) -> Vec<Person> {
    match value {
        Some(Value::Array(items)) => items.iter().filter_map(person).collect(),
        Some(other) => person(other).into_iter().collect(),
        None => Vec::new(),
    }
}

/// Header name → a string or a list of them; other values are not headers anyone sent.
fn headers(value: Option<&Value>) -> Vec<(String, String)> {
    let Some(Value::Object(headers)) = value else {
        return Vec::new();
    };
    let mut pairs = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        match value {
            Value::String(text) => pairs.push((name.clone(), text.clone())),
            Value::Array(items) => pairs.extend(
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|text| (name.clone(), text.to_owned())),
            ),
            _ => {}
        }
    }
    pairs
}

/// The parts of one list, each with its position; items that are not parts (kept as
/// delivered) have none and never shift the others.
fn parts_of(document: &Map<String, Value>, kind: PartKind) -> impl Iterator<Item = Part> + '_ {
    let items = match document.get(kind.field()) {
        Some(Value::Array(items)) => items.as_slice(),
        _ => &[],
    };
    items
        .iter()
        .enumerate()
        .filter_map(move |(position, item)| {
            let meta = PartMeta::deserialize(item).ok()?;
            Some(Part {
                kind,
                position,
                meta,
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(document: Value) -> Message {
        message(document.as_object().unwrap())
    }

    #[test]
    fn people_may_be_objects_strings_or_lists() {
        let message = read(json!({
            "from": "Ana María <Ana@X.org>",
            "to": [{"name": "Luis", "email": "luis@x.org"}, "eva@x.org", 7, {"name": "no address"}],
            "cc": {"email": "cc@x.org"},
        }));
        let from = message.from.unwrap();
        assert_eq!(from.name.as_deref(), Some("Ana María"));
        assert_eq!(from.address.as_deref(), Some("Ana@X.org"));
        let to: Vec<String> = message.to.iter().map(Person::label).collect();
        assert_eq!(to, ["Luis <luis@x.org>", "eva@x.org", "no address"]);
        assert_eq!(message.cc[0].address.as_deref(), Some("cc@x.org"));
    }

    #[test]
    fn fields_of_another_type_read_as_missing() {
        let message = read(json!({
            "from": false, "subject": {}, "text": 5, "headers": {"X-A": 1, "X-B": ["b", 2]},
        }));
        assert_eq!(message.from, None);
        assert_eq!(message.subject, None);
        assert_eq!(message.text, None);
        assert_eq!(message.headers, [("X-B".to_owned(), "b".to_owned())]);
    }

    #[test]
    fn parts_keep_their_positions() {
        let message = read(json!({
            "attachments": [1, {"name": "a.pdf", "size": 3, "blake3": "ab"}],
            "inlines": [{"cid": "logo", "size": 1, "sha256": "cd"}],
        }));
        let parts: Vec<(PartKind, usize, &str)> = message
            .parts
            .iter()
            .map(|p| (p.kind, p.position, p.meta.blake3.as_str()))
            .collect();
        let expected = [(PartKind::Attachment, 1, "ab"), (PartKind::Inline, 0, "cd")];
        assert_eq!(parts, expected);
    }

    #[test]
    fn the_envelope_recipient_counts_as_a_recipient() {
        let message = read(json!({"envelope": {"recipient": "Env@X.org"}}));
        assert_eq!(message.envelope_to, ["Env@X.org"]);
    }

    #[test]
    fn a_thread_is_keyed_by_its_first_message_id() {
        let key = |document: Value| read(document).thread_key();
        let root = key(json!({"message-id": "<Root@x.org>"}));
        assert!(root.is_some());
        let reply = key(json!({
            "message-id": "<reply@y.org>",
            "headers": {"In-Reply-To": "<root@x.org>", "Message-ID": "<reply@y.org>"},
        }));
        let deeper = key(json!({
            "headers": {"references": ["<ROOT@x.org> <reply@y.org>"], "in-reply-to": "<reply@y.org>"},
        }));
        assert_eq!((reply.clone(), deeper), (root.clone(), root.clone()));
        let other = key(json!({"headers": {"Message-ID": "other@z.org"}}));
        assert!(other.is_some() && other != root);
        assert_eq!(key(json!({"subject": "no ids"})), None);
        let long = "a".repeat(10_000);
        let bounded = key(json!({"message-id": format!("<{long}@x>")}));
        assert_eq!(
            bounded.map(|k| k.len()),
            Some(32),
            "bounded whatever the id"
        );
    }
}
