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
    }
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
}
