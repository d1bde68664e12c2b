//! Stored emails as the API shows them: the old service's fields, each with its
//! documented type (see `normalise`), parts as metadata with a download `url`, and any
//! other delivered field as it came. These structs are what handlers send, and the
//! OpenAPI schemas are generated from them.

mod normalise;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa::openapi::schema::{AnyOfBuilder, Object, Schema, SchemaType};
use utoipa::openapi::{Ref, RefOr};

pub use normalise::Address;

use crate::email::{MailboxFlags, Part, PartKind, PartMeta, StoredEmail};
use crate::inbound;

/// `2024-11-14T12:12:45.123Z`, as the old service printed dates.
pub fn iso_8601(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A field of the delivered payload: absent stays absent (`None`), a value that cannot
/// take the documented type is shown as null (`Some(None)`).
type Field<T> = Option<Option<T>>;

/// A stored email: the delivered fields (unknown ones kept as they came), parts as
/// metadata with a `url`, and mailroom's own fields.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct EmailBody {
    /// 24 hexadecimal characters; ids imported from the old MongoDB keep working.
    #[serde(rename = "_id")]
    #[schema(pattern = "^[0-9a-f]{24}$", example = "6735f1a08c1e4b2a9f0a1b2c")]
    pub id: String,
    /// Header name → a string, or a list of strings.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub headers: Field<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Address>>)]
    pub to: Field<Vec<Address>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Address>)]
    pub from: Field<Address>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub subject: Field<String>,
    #[serde(rename = "message-id", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub message_id: Field<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub date: Field<String>,
    #[serde(rename = "return-path", skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Address>)]
    pub return_path: Field<Address>,
    /// ImprovMX's delivery time (Unix seconds); mail sorts by `received_at` instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<f64>)]
    pub timestamp: Field<serde_json::Number>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub text: Field<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub html: Field<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<PartItem>>)]
    pub inlines: Field<Vec<PartItem>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<PartItem>>)]
    pub attachments: Field<Vec<PartItem>>,
    /// When mailroom received it: ISO 8601, UTC, milliseconds.
    #[schema(example = "2024-11-14T12:12:45.123Z")]
    pub received_at: String,
    /// Read: in every mailbox of the email, or in the one asked for with `?mailbox=`.
    pub processed: bool,
    /// Starred in any of its mailboxes (or in the one asked for).
    pub starred: bool,
    /// In the trash of every one of its mailboxes (or of the one asked for).
    pub trashed: bool,
    /// In lists only: `text` or `html` was cut at `LIST_BODY_MAX_BYTES`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated: Option<bool>,
    /// `GET /emails/<id>` only: each mailbox the email is in, with its flags there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mailboxes: Option<Vec<MailboxState>>,
    /// Any other delivered field, as it came.
    #[serde(flatten)]
    #[schema(ignore)]
    pub other: Map<String, Value>,
}

/// A stored attachment or inline: metadata and where to download the bytes.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PartBody {
    /// As delivered; downloads are served with its canonical form.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    #[schema(example = "application/pdf")]
    pub content_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "factura-0001.pdf")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cid: Option<String>,
    /// Decoded size in bytes.
    pub size: u64,
    /// BLAKE3 of the bytes, hex (`b3sum` prints the same).
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub blake3: String,
    /// Set when the delivered content was not base64: the bytes are the text as received.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_error: Option<String>,
    #[schema(example = "/emails/6735f1a08c1e4b2a9f0a1b2c/attachments/0")]
    pub url: String,
    /// Any other field the sender put on the part.
    #[serde(flatten)]
    #[schema(ignore)]
    pub other: Map<String, Value>,
}

/// An item of `attachments` or `inlines`: a part, or, when the payload held something
/// else there, that item as delivered (it keeps its place, so indexes never shift).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum PartItem {
    Part(PartBody),
    Other(Value),
}

impl utoipa::PartialSchema for PartItem {
    fn schema() -> RefOr<Schema> {
        AnyOfBuilder::new()
            .item(Ref::from_schema_name("PartBody"))
            // Any JSON value: a string, a number or a null are delivered too.
            .item(Schema::Object(Object::with_type(SchemaType::AnyValue)))
            .description(Some("A part, or an item that is not one, as delivered"))
            .into()
    }
}

impl ToSchema for PartItem {}

/// One mailbox of an email, with the email's flags there.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct MailboxState {
    #[schema(example = "ana@example.org")]
    pub address: String,
    pub read: bool,
    pub starred: bool,
    pub trashed: bool,
}

impl From<&MailboxFlags> for MailboxState {
    fn from(flags: &MailboxFlags) -> Self {
        Self {
            address: flags.address.clone(),
            read: flags.read,
            starred: flags.starred,
            trashed: flags.trashed,
        }
    }
}

/// `GET /emails`.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmailList {
    /// Always `true`.
    pub success: bool,
    /// Emails in this page.
    pub count: usize,
    /// Newest received first.
    pub emails: Vec<EmailBody>,
}

/// `GET /emails/<id>`, `PATCH /emails/<id>`.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmailEnvelope {
    /// Always `true`.
    pub success: bool,
    pub email: EmailBody,
}

/// Fields of the payload that the body presents with a type of their own.
const KNOWN: [&str; 12] = [
    "headers",
    "to",
    "from",
    "subject",
    "message-id",
    "date",
    "return-path",
    "timestamp",
    "text",
    "html",
    "inlines",
    "attachments",
];

/// The email as `GET /emails/<id>` shows it (without `mailboxes`).
pub fn email_body(email: StoredEmail) -> EmailBody {
    // Read once for both lists.
    let stored_parts = inbound::parts_of(&email);
    let parts = |kind: PartKind| part_bodies(&email, kind, &stored_parts);
    let inlines = email
        .document
        .get("inlines")
        .map(|_| parts(PartKind::Inline));
    let attachments = email
        .document
        .get("attachments")
        .map(|_| parts(PartKind::Attachment));
    let StoredEmail {
        id,
        provider: _,
        received_at,
        processed,
        starred,
        trashed,
        mut document,
    } = email;
    let mut take = |key: &str| document.remove(key);
    let headers = field(take("headers"), normalise::headers);
    let to = field(take("to"), normalise::addresses);
    let from = field(take("from"), normalise::address);
    let subject = field(take("subject"), normalise::text);
    let message_id = field(take("message-id"), normalise::text);
    let date = field(take("date"), normalise::text);
    let return_path = field(take("return-path"), normalise::address);
    let timestamp = take("timestamp").map(|value| normalise::number(&value));
    let text = field(take("text"), normalise::text);
    let html = field(take("html"), normalise::text);
    for key in KNOWN {
        document.remove(key);
    }
    EmailBody {
        id: id.to_string(),
        headers,
        to,
        from,
        subject,
        message_id,
        date,
        return_path,
        timestamp,
        text,
        html,
        inlines,
        attachments,
        received_at: iso_8601(received_at),
        processed,
        starred,
        trashed,
        truncated: None,
        mailboxes: None,
        other: document,
    }
}

/// A delivered field, shown with `convert`'s type.
fn field<T>(value: Option<Value>, convert: fn(&Value) -> Option<T>) -> Field<T> {
    value.map(|value| convert(&value))
}

/// The items of one list (`None` when it is not a list); each part's `url` names its
/// place in the stored list, and items that are not parts stay as delivered.
fn part_bodies(email: &StoredEmail, kind: PartKind, parts: &[Part]) -> Option<Vec<PartItem>> {
    let Some(Value::Array(items)) = email.document.get(kind.field()) else {
        return None;
    };
    let mut shown: Vec<PartItem> = items.iter().cloned().map(PartItem::Other).collect();
    for part in parts.iter().filter(|part| part.kind == kind) {
        let url = format!("/emails/{}/{}/{}", email.id, kind.field(), part.position);
        shown[part.position] = PartItem::Part(part_body(part.meta.clone(), url));
    }
    Some(shown)
}

fn part_body(meta: PartMeta, url: String) -> PartBody {
    PartBody {
        content_type: meta.content_type,
        name: meta.name,
        cid: meta.cid,
        size: meta.size,
        blake3: meta.blake3,
        content_error: meta.content_error,
        url,
        other: meta.extra,
    }
}

/// The email for a list page: as `email_body`, with `text` and `html` cut to at most
/// `max_bytes` (at a character boundary) and `"truncated": true` when either was, so
/// that one huge email never makes every page huge.
pub fn list_item(email: StoredEmail, max_bytes: usize) -> EmailBody {
    let mut body = email_body(email);
    let mut truncated = false;
    for text in [&mut body.text, &mut body.html]
        .into_iter()
        .flatten()
        .flatten()
    {
        if text.len() > max_bytes {
            text.truncate(text.floor_char_boundary(max_bytes));
            truncated = true;
        }
    }
    body.truncated = truncated.then_some(true);
    body
}

#[cfg(test)]
mod tests;
