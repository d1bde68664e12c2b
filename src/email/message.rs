//! The message as every room reads it, whatever provider delivered it: its people,
//! thread keys, bodies, headers and parts. Each provider in `inbound/` produces one from
//! its payload (and from what it stored), so nothing above `inbound/` reads a payload's
//! field names.

use std::collections::HashSet;

use super::{PartKind, PartMeta, PartRef, mailbox_address, mailboxes_in};

/// Who delivered the payload; stored with each email, so that its original can be read
/// back in that provider's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Provider {
    #[default]
    ImprovMx,
}

impl Provider {
    /// The name the store keeps.
    pub fn name(self) -> &'static str {
        match self {
            Provider::ImprovMx => "improvmx",
        }
    }

    /// The provider a stored name stands for; names this build does not know are read
    /// as ImprovMX's, the only format stored before providers were recorded.
    pub fn from_name(_name: &str) -> Self {
        Provider::ImprovMx
    }
}

/// A sender or recipient as delivered; either half may be missing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Person {
    pub name: Option<String>,
    /// As delivered: not trimmed, not lower-cased.
    pub address: Option<String>,
}

impl Person {
    /// `Ana <ana@x.org>`, the address alone, or the name alone; empty when neither.
    pub fn label(&self) -> String {
        let name = self.name.as_deref().unwrap_or("").trim();
        let address = self.address.as_deref().unwrap_or("").trim();
        match (name.is_empty(), address.is_empty()) {
            (false, false) => format!("{name} <{address}>"),
            (true, false) => address.to_owned(),
            _ => name.to_owned(),
        }
    }

    /// The address, trimmed and lower-cased; `None` when there is none.
    pub fn folded_address(&self) -> Option<String> {
        let address = self.address.as_deref()?.trim().to_lowercase();
        (!address.is_empty()).then_some(address)
    }
}

/// One attachment or inline, with its place in its list.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    pub kind: PartKind,
    /// Where it sits in the delivered list, from 0; download routes name it.
    pub position: usize,
    pub meta: PartMeta,
}

/// A delivered email, provider-neutral.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Message {
    pub provider: Provider,
    /// The `Message-ID` the provider reports, as given.
    pub message_id: Option<String>,
    pub from: Option<Person>,
    pub to: Vec<Person>,
    pub cc: Vec<Person>,
    /// The envelope recipient, when the provider gives one.
    pub envelope_to: Vec<String>,
    pub subject: Option<String>,
    /// The `Date` header, as given.
    pub date: Option<String>,
    pub text: Option<String>,
    pub html: Option<String>,
    /// Every header value in delivery order, a header given several values once for each.
    pub headers: Vec<(String, String)>,
    /// Attachments, then inlines.
    pub parts: Vec<Part>,
}

/// Header fields that name the recipient the forwarder delivered to.
const DELIVERY_HEADERS: [&str; 2] = ["delivered-to", "x-original-to"];

impl Message {
    /// Every value of a header, whatever the case of its name.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// A header's first value.
    pub fn header(&self, name: &str) -> Option<&str> {
        let found = self
            .headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name));
        found.map(|(_, value)| value.as_str())
    }

    /// The sender's address, trimmed and lower-cased.
    pub fn sender_address(&self) -> Option<String> {
        self.from.as_ref()?.folded_address()
    }

    /// The mailboxes of every recipient it names (DESIGN §7): `to`, `cc`, the envelope
    /// recipient and the `Delivered-To`/`X-Original-To` headers, each as
    /// `mailbox_address` makes it, without duplicates; before any narrowing to `DOMINIO`.
    pub fn mailboxes(&self) -> Vec<String> {
        let people = self.to.iter().chain(&self.cc);
        let mut addresses: Vec<&str> = people.filter_map(|p| p.address.as_deref()).collect();
        addresses.extend(self.envelope_to.iter().map(String::as_str));
        for name in DELIVERY_HEADERS {
            addresses.extend(self.header_values(name).map(angle_address));
        }
        let mailboxes = addresses.into_iter().filter_map(mailbox_address).collect();
        mailboxes_in(mailboxes, &[])
    }

    /// The conversation it belongs to: the first Message-ID of its `References` (the
    /// thread's root), else its `In-Reply-To`, else its own Message-ID; normalised (no
    /// angle brackets, lower case) and digested, so that the key has a bounded length
    /// whatever a sender writes and needs no other email to be computed (a reply that
    /// arrives before its parent still joins it).
    pub fn thread_key(&self) -> Option<String> {
        let root = first_id(self.header("references"))
            .or_else(|| first_id(self.header("in-reply-to")))
            .or_else(|| first_id(self.header("message-id")))
            .or_else(|| first_id(self.message_id.as_deref()))?;
        Some(blake3::hash(root.as_bytes()).to_hex()[..32].to_owned())
    }

    /// The parts of one list.
    pub fn parts_of(&self, kind: PartKind) -> impl Iterator<Item = &Part> + '_ {
        self.parts.iter().filter(move |part| part.kind == kind)
    }

    /// The `email_parts` rows: which list, where in it, which blob.
    pub fn part_refs(&self) -> Vec<PartRef> {
        let refs = self.parts.iter().map(|part| PartRef {
            kind: part.kind,
            position: part.position,
            blake3: part.meta.blake3.clone(),
        });
        refs.collect()
    }

    /// The bytes of its distinct parts (a blob shared by two parts counts once).
    pub fn parts_size(&self) -> u64 {
        let mut seen = HashSet::new();
        let distinct = self.parts.iter().filter(|p| seen.insert(&p.meta.blake3));
        distinct.map(|part| part.meta.size).sum()
    }
}

/// The address in `Name <address>`, or the whole text trimmed when it has no brackets.
pub fn angle_address(text: &str) -> &str {
    match (text.rfind('<'), text.rfind('>')) {
        (Some(start), Some(end)) if start < end => text[start + 1..end].trim(),
        _ => text.trim(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn person(name: Option<&str>, address: Option<&str>) -> Person {
        Person {
            name: name.map(str::to_owned),
            address: address.map(str::to_owned),
        }
    }

    #[test]
    fn people_are_labelled_with_what_they_have() {
        assert_eq!(
            person(Some("Ana"), Some("a@x.org")).label(),
            "Ana <a@x.org>"
        );
        assert_eq!(person(Some(" "), Some(" a@x.org ")).label(), "a@x.org");
        assert_eq!(person(Some("Ana"), None).label(), "Ana");
        assert_eq!(person(None, None).label(), "");
    }

    #[test]
    fn mailboxes_come_from_every_recipient_field_once() {
        let message = Message {
            to: vec![
                person(None, Some("Ana+news@X.org")),
                person(Some("No"), None),
            ],
            cc: vec![person(None, Some("luis@x.org"))],
            envelope_to: vec!["ana@x.org".into()],
            headers: vec![
                ("Delivered-To".into(), "Info <info@x.org>".into()),
                ("X-Original-To".into(), "eva@y.org".into()),
                ("Subject".into(), "ignored@x.org".into()),
            ],
            ..Message::default()
        };
        let expected = ["ana@x.org", "luis@x.org", "info@x.org", "eva@y.org"];
        assert_eq!(message.mailboxes(), expected);
    }

    #[test]
    fn the_thread_key_is_the_root_of_the_references() {
        let key = |headers: &[(&str, &str)], message_id: Option<&str>| {
            let message = Message {
                headers: headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                message_id: message_id.map(str::to_owned),
                ..Message::default()
            };
            message.thread_key()
        };
        let root = key(&[], Some("<Root@x.org>"));
        assert!(root.is_some());
        assert_eq!(key(&[("References", "<root@x.org> <b@x>")], None), root);
        assert_eq!(key(&[("in-reply-to", "<ROOT@x.org>")], Some("<c@x>")), root);
        assert_ne!(key(&[], Some("<other@x.org>")), root);
        assert_eq!(key(&[("References", "  ")], None), None);
    }

    #[test]
    fn shared_blobs_count_once_in_the_size() {
        let part = |position, blake3: &str, size| Part {
            kind: PartKind::Attachment,
            position,
            meta: PartMeta {
                content_type: None,
                name: None,
                cid: None,
                size,
                blake3: blake3.into(),
                content_error: None,
                extra: Default::default(),
            },
        };
        let message = Message {
            parts: vec![part(0, "aa", 10), part(1, "aa", 10), part(2, "bb", 5)],
            ..Message::default()
        };
        assert_eq!(message.parts_size(), 15);
        assert_eq!(message.part_refs().len(), 3);
    }
}
