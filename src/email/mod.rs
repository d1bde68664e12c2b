//! The canonical mail model shared by every room: ids, messages, stored emails and
//! their parts, mailboxes and flags.

mod message;

pub use message::{Message, Part, Person, Provider, angle_address};

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A 24-hex ObjectId-style id: 4 bytes of seconds, 5 random bytes, a 3-byte counter.
///
/// The same layout as MongoDB's ObjectId, so ids imported from the old service keep working.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EmailId([u8; 12]);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("an email id is 24 hexadecimal characters")]
pub struct InvalidEmailId;

impl EmailId {
    /// A fresh id whose leading bytes are `at`'s seconds, so ids sort roughly by creation.
    pub fn generate(at: DateTime<Utc>) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        static PROCESS_RANDOM: std::sync::OnceLock<[u8; 5]> = std::sync::OnceLock::new();
        let random = PROCESS_RANDOM.get_or_init(rand::random);
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut bytes = [0u8; 12];
        bytes[..4].copy_from_slice(&(at.timestamp() as u32).to_be_bytes());
        bytes[4..9].copy_from_slice(random);
        bytes[9..].copy_from_slice(&count.to_be_bytes()[1..]);
        Self(bytes)
    }
}

impl FromStr for EmailId {
    type Err = InvalidEmailId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 24 {
            return Err(InvalidEmailId);
        }
        let mut bytes = [0u8; 12];
        hex::decode_to_slice(s, &mut bytes).map_err(|_| InvalidEmailId)?;
        Ok(Self(bytes))
    }
}

impl fmt::Display for EmailId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for EmailId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmailId({self})")
    }
}

impl Serialize for EmailId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Which list of an email a part belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartKind {
    Attachment,
    Inline,
}

impl PartKind {
    /// The field name in the ImprovMX payload and the stored document, and the path
    /// segment of the index-based download route.
    pub fn field(self) -> &'static str {
        match self {
            PartKind::Attachment => "attachments",
            PartKind::Inline => "inlines",
        }
    }
}

/// Metadata of one stored attachment or inline; its bytes live in the blob table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartMeta {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cid: Option<String>,
    pub size: u64,
    /// BLAKE3 of the bytes, hex: the blob's address. BLAKE3 rather than SHA-256 because
    /// hashing was the largest CPU cost of ingesting attachments on CPUs without SHA
    /// extensions (5 GB/s against 0.2–0.35 GB/s here). Emails stored by builds before
    /// that call it `sha256`; their blobs kept those addresses, so they still download.
    #[serde(alias = "sha256")]
    pub blake3: String,
    /// Set when `content` was not valid base64: the bytes served are the text as received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_error: Option<String>,
    /// Any other fields the sender put on the part (`encoding`, …), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An email as decoded from a delivery, ready to be written in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEmail {
    pub id: EmailId,
    /// Message-ID + recipients + content hash: the redelivery key, unique in the store.
    pub dedup_key: String,
    pub received_at: DateTime<Utc>,
    pub processed: bool,
    /// What was delivered, provider-neutral: what every column is computed from.
    pub message: Message,
    /// The mailboxes it is filed in (`mailbox_address` forms, no duplicates): every
    /// recipient as parsed, narrowed to the `DOMINIO` domains by `keep_mailboxes_in`.
    pub mailboxes: Vec<String>,
    /// What search reads besides the subject.
    pub search: SearchColumns,
    /// The original payload in its provider's format, with nothing lost except the
    /// parts' bytes, which `blobs` hold (parts carry `PartMeta` instead).
    pub document: Map<String, Value>,
    /// Decoded part bytes keyed by BLAKE3 (hex), each stored once.
    pub blobs: Vec<(String, Vec<u8>)>,
}

/// The columns search reads (DESIGN §7), besides the subject and the receive time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchColumns {
    /// The `search::text::IndexedWords` of every searchable field (`inbound::search_fields`).
    pub words: String,
    /// Case-folded sender, name and address, for `from:`.
    pub sender: Option<String>,
    /// Case-folded recipients, names and addresses, for `to:`.
    pub recipients: Option<String>,
    /// Parts of the `attachments` list (inlines do not count), for `has:attachment`.
    pub attachments: u32,
    /// The conversation: a digest of its first Message-ID (`Message::thread_key`); emails
    /// that share it are one thread. `None` when the email names no Message-ID at all.
    pub thread_key: Option<String>,
}

/// The stored size of an email, for `larger:` and `smaller:`: its document as JSON and
/// the bytes of its distinct parts.
pub fn stored_size(document_json_bytes: usize, message: &Message) -> u64 {
    document_json_bytes as u64 + message.parts_size()
}

impl NewEmail {
    /// Keeps the mailboxes whose domain is one of `domains` (all of them when empty).
    pub fn keep_mailboxes_in(&mut self, domains: &[String]) {
        self.mailboxes = mailboxes_in(std::mem::take(&mut self.mailboxes), domains);
    }

    /// The sender's address, lower-cased but not trimmed, for the `from_email` column,
    /// as it has always been stored (`Message::sender_address` also trims).
    pub fn from_email(&self) -> Option<String> {
        let address = self.message.from.as_ref()?.address.as_deref()?;
        Some(address.to_lowercase())
    }
}

/// A stored email as the store returns it, with its flags: those of one mailbox when it
/// was asked for through one, else their summary (read everywhere, starred anywhere,
/// trashed everywhere).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEmail {
    pub id: EmailId,
    /// The format of `document`.
    pub provider: Provider,
    pub received_at: DateTime<Utc>,
    pub processed: bool,
    pub starred: bool,
    pub trashed: bool,
    /// The original payload as stored (see `NewEmail::document`); `inbound::message_of`
    /// reads it.
    pub document: Map<String, Value>,
}

/// A change of flags; `None` leaves a flag as it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlagChange {
    pub read: Option<bool>,
    pub starred: Option<bool>,
    pub trashed: Option<bool>,
}

impl FlagChange {
    pub fn is_empty(&self) -> bool {
        self.read.is_none() && self.starred.is_none() && self.trashed.is_none()
    }
}

/// A mailbox with its counts; trashed mail counts in neither.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxCount {
    pub address: String,
    pub total: u64,
    pub unread: u64,
}

/// One mailbox of an email, with the email's flags there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxFlags {
    pub address: String,
    pub read: bool,
    pub starred: bool,
    pub trashed: bool,
}

/// Longest address a mailbox is made for (RFC 5321 allows 256 with brackets); longer
/// "addresses" are not real ones, and database index entries stay bounded.
pub const MAX_MAILBOX_BYTES: usize = 320;

/// The mailbox an address belongs to: lower-cased, the domain IDNA-normalised, a `+tag`
/// removed (`Ana+News@Example.ORG` → `ana@example.org`). `None` for what is no address.
pub fn mailbox_address(address: &str) -> Option<String> {
    let (local, domain) = address.trim().rsplit_once('@')?;
    let local = local.split('+').next().unwrap_or_default().to_lowercase();
    let domain = idna::domain_to_ascii(domain).ok()?;
    let unfit = |c: char| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '@');
    if local.is_empty() || domain.is_empty() || local.contains(unfit) || domain.contains(unfit) {
        return None;
    }
    let mailbox = format!("{local}@{domain}");
    (mailbox.len() <= MAX_MAILBOX_BYTES).then_some(mailbox)
}

/// `mailboxes` without duplicates, narrowed to those in `domains` unless that is empty.
pub fn mailboxes_in(mailboxes: Vec<String>, domains: &[String]) -> Vec<String> {
    let mut kept: Vec<String> = Vec::with_capacity(mailboxes.len());
    for mailbox in mailboxes {
        let domain = mailbox.rsplit_once('@').map_or("", |(_, d)| d);
        let wanted = domains.is_empty() || domains.iter().any(|d| d == domain);
        if wanted && !kept.contains(&mailbox) {
            kept.push(mailbox);
        }
    }
    kept
}

/// A part as the `email_parts` table holds it: which list, where in it, which blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartRef {
    pub kind: PartKind,
    pub position: usize,
    pub blake3: String,
}

/// The form in which subjects and senders are stored for search, and queries compared:
/// case-folded, without U+0000 (which PostgreSQL text cannot hold).
pub fn search_key(text: &str) -> String {
    text.replace('\0', "").to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_24_hex_and_round_trip() {
        let id = EmailId::generate(Utc::now());
        let text = id.to_string();
        assert_eq!(text.len(), 24);
        assert!(text.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(text.parse::<EmailId>().unwrap(), id);
    }

    #[test]
    fn ids_carry_their_creation_second() {
        let at = DateTime::from_timestamp(0x6735_f1a0, 0).unwrap();
        assert!(EmailId::generate(at).to_string().starts_with("6735f1a0"));
    }

    #[test]
    fn consecutive_ids_differ() {
        let now = Utc::now();
        assert_ne!(EmailId::generate(now), EmailId::generate(now));
    }

    #[test]
    fn malformed_ids_are_refused() {
        for bad in [
            "",
            "123",
            "zzzzzzzzzzzzzzzzzzzzzzzz",
            "6735f1a08c1e4b2a9f0a1b2c0",
            "é735f1a08c1e4b2a9f0a1b2",
        ] {
            assert_eq!(bad.parse::<EmailId>(), Err(InvalidEmailId), "{bad:?}");
        }
    }

    #[test]
    fn search_keys_are_folded_and_free_of_nul() {
        assert_eq!(search_key("ÀB\0c"), "àbc");
    }

    #[test]
    fn addresses_become_mailboxes() {
        let cases = [
            ("Ana+News@Example.ORG", Some("ana@example.org")),
            (" luis@puntoa.ar ", Some("luis@puntoa.ar")),
            ("josé@Bücher.example", Some("josé@xn--bcher-kva.example")),
            ("+tag@x.org", None),
            ("no-at-sign", None),
            ("a b@x.org", None),
            ("a@", None),
        ];
        for (address, mailbox) in cases {
            assert_eq!(mailbox_address(address).as_deref(), mailbox, "{address:?}");
        }
        let long = format!("{}@x.org", "a".repeat(MAX_MAILBOX_BYTES));
        assert_eq!(mailbox_address(&long), None);
    }

    #[test]
    fn mailboxes_are_narrowed_to_the_domains_without_duplicates() {
        let all = vec!["a@x.org".to_owned(), "b@y.org".into(), "a@x.org".into()];
        assert_eq!(mailboxes_in(all.clone(), &[]), ["a@x.org", "b@y.org"]);
        assert_eq!(mailboxes_in(all, &["y.org".into()]), ["b@y.org"]);
    }

    #[test]
    fn uppercase_hex_is_accepted_and_printed_lowercase() {
        let id: EmailId = "6735F1A08C1E4B2A9F0A1B2C".parse().unwrap();
        assert_eq!(id.to_string(), "6735f1a08c1e4b2a9f0a1b2c");
    }
}
