//! Shapes of the JSON bodies, for the OpenAPI document only (handlers build them with `json!`).
//!
//! The types are never built: they exist for their `ToSchema` derive.
#![allow(dead_code)]

use std::collections::BTreeMap;

use serde_json::Value;
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};

/// Every error: `success` is false, `error` is short, `message` (optional) is the detail.
#[derive(ToSchema)]
#[schema(example = json!({"success": false, "error": "Email not found"}))]
pub struct ErrorBody {
    /// Always `false`.
    pub success: bool,
    #[schema(example = "Invalid API key")]
    pub error: String,
    pub message: Option<String>,
}

/// `GET /`: the old service's health answer.
#[derive(ToSchema)]
pub struct Status {
    #[schema(example = "healthy")]
    pub status: String,
    #[schema(example = "ImprovMX Webhook")]
    pub service: String,
    /// ISO 8601, UTC, milliseconds.
    #[schema(example = "2024-11-14T12:12:45.123Z")]
    pub timestamp: String,
}

/// What ImprovMX POSTs. Any JSON object is stored; the fields below are the usual ones.
#[derive(ToSchema)]
pub struct ImprovMxPayload {
    /// Header name → a string, or an array of strings.
    #[schema(value_type = Option<Object>)]
    pub headers: Option<BTreeMap<String, Value>>,
    pub to: Option<Vec<Mailbox>>,
    pub from: Option<Mailbox>,
    pub subject: Option<String>,
    #[schema(rename = "message-id")]
    pub message_id: Option<String>,
    pub date: Option<String>,
    #[schema(rename = "return-path")]
    pub return_path: Option<Mailbox>,
    /// ImprovMX's delivery time (Unix seconds); emails sort by the server's receive time instead.
    pub timestamp: Option<i64>,
    pub text: Option<String>,
    pub html: Option<String>,
    pub inlines: Option<Vec<PayloadPart>>,
    pub attachments: Option<Vec<PayloadPart>>,
}

#[derive(ToSchema)]
pub struct Mailbox {
    pub name: Option<String>,
    #[schema(example = "ana@example.org")]
    pub email: Option<String>,
}

/// An attachment or inline as delivered: base64 `content` (wrapped or unpadded is fine).
#[derive(ToSchema)]
pub struct PayloadPart {
    #[schema(rename = "type", example = "application/pdf")]
    pub content_type: Option<String>,
    pub name: Option<String>,
    pub cid: Option<String>,
    pub content: Option<String>,
    pub encoding: Option<String>,
}

/// `POST /webhook`: stored (or a redelivery of an email already stored under this id).
#[derive(ToSchema)]
pub struct WebhookAccepted {
    pub success: bool,
    #[schema(example = "Email received and stored")]
    pub message: String,
    #[schema(example = "6735f1a08c1e4b2a9f0a1b2c")]
    pub email_id: String,
}

/// A stored email: the delivered fields (unknown ones kept), parts as metadata with a `url`.
#[derive(ToSchema)]
pub struct Email {
    /// 24 hexadecimal characters; ids imported from the old MongoDB keep working.
    #[schema(rename = "_id", example = "6735f1a08c1e4b2a9f0a1b2c")]
    pub id: String,
    #[schema(value_type = Option<Object>)]
    pub headers: Option<BTreeMap<String, Value>>,
    pub to: Option<Vec<Mailbox>>,
    pub from: Option<Mailbox>,
    pub subject: Option<String>,
    #[schema(rename = "message-id")]
    pub message_id: Option<String>,
    pub date: Option<String>,
    #[schema(rename = "return-path")]
    pub return_path: Option<Mailbox>,
    pub timestamp: Option<i64>,
    pub text: Option<String>,
    pub html: Option<String>,
    pub inlines: Option<Vec<Part>>,
    pub attachments: Option<Vec<Part>>,
    /// When mailroom received it: ISO 8601, UTC, milliseconds.
    #[schema(example = "2024-11-14T12:12:45.123Z")]
    pub received_at: String,
    /// Read: in every mailbox of the email, or in the one asked for with `?mailbox=`.
    pub processed: bool,
    /// Starred in any of its mailboxes (or in the one asked for).
    pub starred: bool,
    /// In the trash of every one of its mailboxes (or of the one asked for).
    pub trashed: bool,
    /// `GET /emails/<id>` only: each mailbox the email is in, with its flags there.
    pub mailboxes: Option<Vec<MailboxState>>,
}

/// One mailbox of an email, with the email's flags there.
#[derive(ToSchema)]
pub struct MailboxState {
    #[schema(example = "ana@example.org")]
    pub address: String,
    pub read: bool,
    pub starred: bool,
    pub trashed: bool,
}

/// A stored attachment or inline: metadata and where to download the bytes.
#[derive(ToSchema)]
pub struct Part {
    #[schema(rename = "type", example = "application/pdf")]
    pub content_type: Option<String>,
    #[schema(example = "factura-0001.pdf")]
    pub name: Option<String>,
    pub cid: Option<String>,
    /// Decoded size in bytes.
    pub size: u64,
    /// BLAKE3 of the bytes, hex (`b3sum` prints the same).
    pub blake3: String,
    /// Set when the delivered content was not base64: the bytes are the text as received.
    pub content_error: Option<String>,
    #[schema(example = "/emails/6735f1a08c1e4b2a9f0a1b2c/attachments/0")]
    pub url: String,
}

#[derive(ToSchema)]
pub struct EmailList {
    pub success: bool,
    /// Emails in this page.
    pub count: u32,
    /// Newest received first.
    pub emails: Vec<Email>,
}

#[derive(ToSchema)]
pub struct EmailEnvelope {
    pub success: bool,
    pub email: Email,
}

/// Raw bytes of a part.
pub struct Download;

impl utoipa::PartialSchema for Download {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .description(Some("The part's bytes"))
            .into()
    }
}

impl ToSchema for Download {}
