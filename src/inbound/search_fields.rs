//! What search reads of an ImprovMX document (DESIGN §7): the words of its subject,
//! sender, recipients, bodies (HTML as text) and part names, and the columns of the
//! `from:`, `to:` and `has:attachment` terms. Pure.

use serde_json::{Map, Value};

use crate::email::{PartKind, SearchColumns, search_key};
use crate::search::text::{indexed_words, mail_html_text};

/// The search columns of a stored or new document.
pub fn search_columns(document: &Map<String, Value>) -> SearchColumns {
    let text = |name: &str| {
        document
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let sender = people(document.get("from"));
    let mut recipients = people(document.get("to"));
    recipients.extend(people(document.get("cc")));
    let html = mail_html_text(text("html"));
    let names = part_names(document);
    let (sender_text, recipients_text) = (sender.join(" "), recipients.join(" "));
    let fields = [text("subject"), &sender_text, &recipients_text]
        .into_iter()
        .chain([text("text"), html.as_str()])
        .chain(names.iter().map(String::as_str));
    SearchColumns {
        words: indexed_words(fields),
        sender: folded(&sender),
        recipients: folded(&recipients),
        attachments: count_parts(document, PartKind::Attachment),
        thread_key: thread_key(document),
    }
}

/// The conversation an email belongs to: the first Message-ID of its `References` (the
/// thread's root), else its `In-Reply-To`, else its own Message-ID; normalised
/// (no angle brackets, lower case) and digested, so that the key has a bounded length
/// whatever a sender writes and needs no other email to be computed (a reply that
/// arrives before its parent still joins it).
pub fn thread_key(document: &Map<String, Value>) -> Option<String> {
    let root = first_id(header(document, "references"))
        .or_else(|| first_id(header(document, "in-reply-to")))
        .or_else(|| first_id(header(document, "message-id")))
        .or_else(|| first_id(document.get("message-id").and_then(Value::as_str)))?;
    Some(blake3::hash(root.as_bytes()).to_hex()[..32].to_owned())
}

/// A header's first value, whatever the case of its name.
fn header<'a>(document: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    let headers = document.get("headers")?.as_object()?;
    let value = headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))?
        .1;
    match value {
        Value::String(text) => Some(text),
        Value::Array(items) => items.iter().find_map(Value::as_str),
        _ => None,
    }
}

/// The first `<id>` of a header value (or its first word, when it has no brackets).
fn first_id(value: Option<&str>) -> Option<String> {
    let value = value?.trim();
    let id = match value.find('<') {
        Some(start) => value[start + 1..].split('>').next().unwrap_or_default(),
        None => value.split_whitespace().next().unwrap_or_default(),
    };
    let id = id.trim().to_lowercase();
    (!id.is_empty()).then_some(id)
}

/// Each person of a `from`/`to`/`cc` value as `Name <address>`, or as given.
fn people(value: Option<&Value>) -> Vec<String> {
    let one = |value: &Value| -> Option<String> {
        match value {
            Value::String(text) => Some(text.clone()),
            Value::Object(fields) => {
                let name = fields.get("name").and_then(Value::as_str);
                let email = fields.get("email").and_then(Value::as_str)?;
                Some(match name {
                    Some(name) if !name.is_empty() => format!("{name} <{email}>"),
                    _ => email.to_owned(),
                })
            }
            _ => None,
        }
    };
    match value {
        Some(Value::Array(items)) => items.iter().filter_map(one).collect(),
        Some(other) => one(other).into_iter().collect(),
        None => Vec::new(),
    }
}

fn folded(people: &[String]) -> Option<String> {
    (!people.is_empty()).then(|| search_key(&people.join(", ")))
}

fn part_names(document: &Map<String, Value>) -> Vec<String> {
    [PartKind::Attachment, PartKind::Inline]
        .into_iter()
        .filter_map(|kind| document.get(kind.field())?.as_array())
        .flatten()
        .filter_map(|part| Some(part.get("name")?.as_str()?.to_owned()))
        .collect()
}

fn count_parts(document: &Map<String, Value>, kind: PartKind) -> u32 {
    document
        .get(kind.field())
        .and_then(Value::as_array)
        .map_or(0, |parts| {
            parts.iter().filter(|p| p.is_object()).count() as u32
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_searchable_field_gives_words() {
        let document = serde_json::json!({
            "subject": "Factura de Noviembre",
            "from": {"name": "Ana Pérez", "email": "ana@example.org"},
            "to": [{"name": null, "email": "ventas@puntoa.ar"}, "Luis <luis@puntoa.ar>"],
            "cc": {"email": "jefe@puntoa.ar"},
            "text": "Adjunto el crédito.",
            "html": "<p>Saludos</p><script>oculto()</script>",
            "attachments": [{"name": "resumen-2024.pdf"}],
            "inlines": [{"name": "logo.png"}],
        });
        let columns = search_columns(document.as_object().unwrap());
        for word in [
            "factura", "perez", "ventas", "luis", "jefe", "credito", "saludos", "resumen", "logo",
        ] {
            assert!(columns.words.contains(&format!(" {word} ")), "{word}");
        }
        assert!(!columns.words.contains("oculto"));
        assert_eq!(
            columns.sender.as_deref(),
            Some("ana pérez <ana@example.org>")
        );
        assert_eq!(
            columns.recipients.as_deref(),
            Some("ventas@puntoa.ar, luis <luis@puntoa.ar>, jefe@puntoa.ar")
        );
        assert_eq!(columns.attachments, 1);
    }

    #[test]
    fn a_thread_is_keyed_by_its_first_message_id() {
        let key = |document: Value| thread_key(document.as_object().unwrap());
        let root = key(serde_json::json!({"message-id": "<Root@x.org>"}));
        assert!(root.is_some());
        let reply = key(serde_json::json!({
            "message-id": "<reply@y.org>",
            "headers": {"In-Reply-To": "<root@x.org>", "Message-ID": "<reply@y.org>"},
        }));
        let deeper = key(serde_json::json!({
            "headers": {"references": ["<ROOT@x.org> <reply@y.org>"], "in-reply-to": "<reply@y.org>"},
        }));
        assert_eq!((reply.clone(), deeper), (root.clone(), root.clone()));
        let other = key(serde_json::json!({"headers": {"Message-ID": "other@z.org"}}));
        assert!(other.is_some() && other != root);
        assert_eq!(key(serde_json::json!({"subject": "no ids"})), None);
        let long = "a".repeat(10_000);
        let bounded = key(serde_json::json!({"message-id": format!("<{long}@x>")}));
        assert_eq!(
            bounded.map(|k| k.len()),
            Some(32),
            "bounded whatever the id"
        );
    }
}
