//! The RFC 5322 message for an accepted email, built once at acceptance and stored as sent.

use std::time::SystemTime;

use chrono::{DateTime, Utc};
use lettre::Message;
use lettre::message::header::ContentType;

use super::validate::OutgoingEmail;
use crate::email::EmailId;

/// The message bytes. `bcc` recipients go into the envelope only, never into a header.
/// Every part was validated first, so lettre's panics on line breaks cannot trigger.
pub fn build_message(
    email: &OutgoingEmail,
    id: EmailId,
    accepted_at: DateTime<Utc>,
) -> Result<Vec<u8>, String> {
    let mailbox =
        |a: &super::address::ParsedAddress| a.mailbox().map_err(|p| p.describe().to_owned());
    let mut builder = Message::builder()
        .from(mailbox(&email.from)?)
        .subject(email.subject.clone())
        .message_id(Some(format!("<{id}@{}>", email.from.domain)))
        .date(SystemTime::from(accepted_at));
    for to in &email.to {
        builder = builder.to(mailbox(to)?);
    }
    for cc in &email.cc {
        builder = builder.cc(mailbox(cc)?);
    }
    let content_type = if email.is_html {
        ContentType::TEXT_HTML
    } else {
        ContentType::TEXT_PLAIN
    };
    let message = builder
        .header(content_type)
        .body(email.body.clone())
        .map_err(|e| e.to_string())?;
    Ok(message.formatted())
}
