//! The RFC 5322 message for an accepted email, built once at acceptance and stored as sent.

use std::time::SystemTime;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use lettre::Message;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};

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
        .raw_header(subject_header(&email.subject))
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

/// RFC 5322 §2.1.1: lines SHOULD stay within 78 characters, CRLF excluded.
const LINE_LENGTH: usize = 78;
const SUBJECT: &str = "Subject";

/// The subject, folded so that no line breaks the line limit.
///
/// lettre folds a header only between words, and encodes (RFC 2047, which folds) only
/// words that are not ASCII: an ASCII word too long for one line would go out as is, and
/// one of about 990 characters makes a line the relay refuses ("500 Line too long").
/// Such a subject is sent whole as encoded words, each on its own line, which decode
/// back to exactly the text given.
fn subject_header(subject: &str) -> HeaderValue {
    let name = HeaderName::new_from_ascii_str(SUBJECT);
    let room = LINE_LENGTH - SUBJECT.len() - ": ".len();
    if subject.split(' ').all(|word| word.len() <= room) {
        return HeaderValue::new(name, subject.to_owned());
    }
    HeaderValue::dangerous_new_pre_encoded(name, subject.to_owned(), encoded_words(subject))
}

/// `=?utf-8?b?…?=` words of whole characters, joined by folding whitespace; each line,
/// the first one's `Subject: ` included, within `LINE_LENGTH`.
fn encoded_words(text: &str) -> String {
    const PREFIX: &str = "=?utf-8?b?";
    const SUFFIX: &str = "?=";
    let room = LINE_LENGTH - SUBJECT.len() - ": ".len() - PREFIX.len() - SUFFIX.len();
    let max_bytes = room / 4 * 3;
    let mut words = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut end = max_bytes.min(rest.len());
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let (chunk, tail) = rest.split_at(end);
        let payload = base64::engine::general_purpose::STANDARD.encode(chunk);
        words.push(format!("{PREFIX}{payload}{SUFFIX}"));
        rest = tail;
    }
    words.join("\r\n ")
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

    #[test]
    fn a_subject_with_a_word_too_long_for_a_line_is_sent_as_folded_encoded_words() {
        let subject = format!("Informe {}ñ", "x".repeat(300));
        let folded = encoded_words(&subject);
        let lines: Vec<&str> = folded.split("\r\n").collect();
        assert!(lines.len() > 5, "{folded}");
        assert!(
            "Subject: ".len() + lines[0].len() <= LINE_LENGTH,
            "{folded}"
        );
        let mut decoded = Vec::new();
        for line in lines {
            assert!(line.len() <= LINE_LENGTH, "{line}");
            let payload = line
                .trim_start()
                .strip_prefix("=?utf-8?b?")
                .and_then(|l| l.strip_suffix("?="))
                .expect("one encoded word per line");
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(payload)
                .unwrap();
            assert!(std::str::from_utf8(&bytes).is_ok(), "a character was split");
            decoded.extend(bytes);
        }
        assert_eq!(String::from_utf8(decoded).unwrap(), subject);
        // 42 bytes a word: 21 two-byte characters.
        assert_eq!(
            encoded_words("ñ".repeat(60).as_str()).matches("=?").count(),
            3
        );
    }
}
