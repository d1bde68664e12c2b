//! What search reads of a message (DESIGN §7): the words of its subject, sender,
//! recipients, bodies (HTML as text) and part names, and the columns of the `from:`,
//! `to:` and `has:attachment` terms. Pure.

use crate::email::{Message, PartKind, Person, SearchColumns, search_key};
use crate::search::text::{IndexedWords, mail_html_text};

/// The search columns of a message.
pub fn search_columns(message: &Message) -> SearchColumns {
    let sender = labels(message.from.iter());
    let recipients = labels(message.to.iter().chain(&message.cc));
    let html = mail_html_text(text(&message.html));
    let names = message.parts.iter().filter_map(|p| p.meta.name.as_deref());
    let (sender_text, recipients_text) = (sender.join(" "), recipients.join(" "));
    let mut words = IndexedWords::default();
    let (subject, body) = (text(&message.subject), text(&message.text));
    for field in [subject, &sender_text, &recipients_text, body] {
        words.add(field);
    }
    // Most HTML bodies are the text body again. One without a word of its own is left out:
    // every word is found already, and it would double the index (typical mail ingested
    // 1.25x faster without it).
    if !words.has_every_word_of(&html) {
        words.add(&html);
    }
    for name in names {
        words.add(name);
    }
    SearchColumns {
        words: words.finish(),
        sender: folded(&sender),
        recipients: folded(&recipients),
        attachments: message.parts_of(PartKind::Attachment).count() as u32,
        thread_key: message.thread_key(),
    }
}

fn text(field: &Option<String>) -> &str {
    field.as_deref().unwrap_or_default()
}

/// Each person as `Name <address>`, the address, or the name.
fn labels<'a>(people: impl Iterator<Item = &'a Person>) -> Vec<String> {
    let labels = people.map(Person::label);
    labels.filter(|label| !label.is_empty()).collect()
}

fn folded(people: &[String]) -> Option<String> {
    (!people.is_empty()).then(|| search_key(&people.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::improvmx;

    #[test]
    fn every_searchable_field_gives_words() {
        let document = serde_json::json!({
            "subject": "Factura de Noviembre",
            "from": {"name": "Ana Pérez", "email": "ana@example.org"},
            "to": [{"name": null, "email": "ventas@puntoa.ar"}, "Luis <luis@puntoa.ar>"],
            "cc": {"email": "jefe@puntoa.ar"},
            "text": "Adjunto el crédito.",
            "html": "<p>Saludos</p><script>oculto()</script>",
            "attachments": [{"name": "resumen-2024.pdf", "size": 1, "blake3": "a"}],
            "inlines": [{"name": "logo.png", "size": 1, "blake3": "b"}],
        });
        let columns = search_columns(&improvmx::message(document.as_object().unwrap()));
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
    fn an_html_body_that_repeats_the_text_is_indexed_once() {
        let words = |html: &str| {
            let document = serde_json::json!({"text": "Pago recibido", "html": html});
            search_columns(&improvmx::message(document.as_object().unwrap())).words
        };
        assert_eq!(words("<p>Pago <b>recibido</b></p>"), " pago recibido ");
        assert_eq!(
            words("<p>Pago recibido: <i>gracias</i></p>"),
            " pago recibido pago recibido gracias "
        );
    }
}
