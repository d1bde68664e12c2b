//! The RFC 5322 message for an accepted email, built once at acceptance and stored as sent.

use std::time::SystemTime;

use chrono::{DateTime, Utc};
use lettre::Message;
use lettre::message::header::ContentType;

use super::validate::OutgoingEmail;
use crate::email::EmailId;

/// The message bytes. `bcc` recipients go into the envelope only, never into a header.
/// Every part was validated first, so lettre's panics on line breaks cannot trigger.
/// The body's line endings are all CRLF: a bare CR or LF never reaches the relay.
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
        .body(crlf_line_endings(&email.body))
        .map_err(|e| e.to_string())?;
    Ok(message.formatted())
}

/// Every line ending (CRLF, a bare CR, a bare LF) as CRLF.
///
/// lettre turns a bare LF into CRLF but leaves a bare CR, and some servers end a line at
/// one: `Hola.<CR>.<CRLF>MAIL FROM:…` would then end the message early and smuggle a
/// second one into the relay's session. The text is unchanged for a reader.
pub fn crlf_line_endings(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 32);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                chars.next_if_eq(&'\n');
                out.push_str("\r\n");
            }
            '\n' => out.push_str("\r\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_ending_becomes_crlf() {
        assert_eq!(
            crlf_line_endings("a\rb\nc\r\nd\r\re\n\nf\n\rg\r"),
            "a\r\nb\r\nc\r\nd\r\n\r\ne\r\n\r\nf\r\n\r\ng\r\n"
        );
        assert_eq!(crlf_line_endings("Hola.\r.\r\nMAIL"), "Hola.\r\n.\r\nMAIL");
        assert_eq!(crlf_line_endings("ñandú sin saltos"), "ñandú sin saltos");
    }
}
