//! Inbound providers: payloads in, `NewEmail`s out. Pure functions, no I/O, except
//! `filing`, which files emails stored before mailboxes existed.

pub mod filing;
pub mod improvmx;
pub mod original;
mod raw_parts;
pub mod search_fields;

use crate::email::{Message, Part, PartKind, Provider, StoredEmail};

/// A stored email's message, read from its original in its provider's format.
pub fn message_of(email: &StoredEmail) -> Message {
    match email.provider {
        Provider::ImprovMx => improvmx::message(&email.document),
    }
}

/// A stored email's parts alone (attachments, then inlines): cheaper than `message_of`.
pub fn parts_of(email: &StoredEmail) -> Vec<Part> {
    match email.provider {
        Provider::ImprovMx => improvmx::parts(&email.document),
    }
}

/// The part at `position` of one list, as the download routes name it.
pub fn part_at(email: &StoredEmail, kind: PartKind, position: usize) -> Option<Part> {
    let mut parts = parts_of(email).into_iter();
    parts.find(|part| part.kind == kind && part.position == position)
}
