//! Schemas of the send API (`api/send.rs` builds these bodies with `json!`; the field
//! names here are the wire names).
#![allow(dead_code)]

use utoipa::ToSchema;

/// One address, or a list of addresses.
#[derive(ToSchema, serde::Serialize)]
#[serde(untagged)]
pub enum Recipients {
    One(String),
    Many(Vec<String>),
}

/// `POST /api/email/send`: at most 5 recipients in all; the body at most 10,000 characters.
#[derive(ToSchema)]
pub struct SendRequest {
    pub to: Recipients,
    pub cc: Option<Recipients>,
    pub bcc: Option<Recipients>,
    /// Must belong to one of the domains in `DOMINIO`.
    #[schema(example = "noreply@example.org")]
    pub from: String,
    pub subject: String,
    pub body: String,
    #[schema(rename = "isHtml")]
    pub is_html: Option<bool>,
}

/// Accepted into the outbox; a worker delivers it over SMTP.
#[derive(ToSchema)]
pub struct SendAccepted {
    pub success: bool,
    pub message: String,
    /// The outbox id, for `GET /api/email/outbox/{id}`.
    pub id: String,
    #[schema(example = "queued")]
    pub status: String,
}

/// The send API's 429: `retryAfter` in seconds, also in `Retry-After`.
#[derive(ToSchema)]
pub struct SendRateLimited {
    pub success: bool,
    #[schema(example = "Rate limit exceeded")]
    pub error: String,
    pub message: String,
    #[schema(rename = "retryAfter")]
    pub retry_after: u64,
}

#[derive(ToSchema)]
pub struct SendStats {
    pub ip: String,
    #[schema(rename = "sentLastMinute")]
    pub sent_last_minute: u32,
    #[schema(rename = "sentLastHour")]
    pub sent_last_hour: u32,
    #[schema(rename = "sentLastDay")]
    pub sent_last_day: u32,
    #[schema(rename = "remainingMinute")]
    pub remaining_minute: u32,
    #[schema(rename = "remainingHour")]
    pub remaining_hour: u32,
    #[schema(rename = "remainingDay")]
    pub remaining_day: u32,
}

#[derive(ToSchema)]
pub struct SendStatsEnvelope {
    pub success: bool,
    pub stats: SendStats,
}

/// An outbox entry. `status` is `queued`, `sending`, `sent`, `retrying` (with `retryAt`)
/// or `failed`; the request's fields (`from`, `to`, `cc`, `bcc`, `subject`, `isHtml`,
/// `body`) come along.
#[derive(ToSchema)]
pub struct OutboxEmail {
    pub id: String,
    #[schema(example = "sent")]
    pub status: String,
    pub attempts: u32,
    #[schema(rename = "lastError")]
    pub last_error: Option<String>,
    /// The SMTP server's reply to the last attempt.
    #[schema(rename = "smtpReply")]
    pub smtp_reply: Option<String>,
    #[schema(rename = "acceptedAt")]
    pub accepted_at: String,
    #[schema(rename = "sentAt")]
    pub sent_at: Option<String>,
    #[schema(rename = "retryAt")]
    pub retry_at: Option<String>,
    pub from: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub bcc: Vec<String>,
    pub subject: String,
    #[schema(rename = "isHtml")]
    pub is_html: bool,
    pub body: String,
}

#[derive(ToSchema)]
pub struct OutboxEnvelope {
    pub success: bool,
    pub email: OutboxEmail,
}

/// A page of the outbox, newest first; `?status=sent` is the sent folder.
#[derive(ToSchema)]
pub struct OutboxPage {
    pub success: bool,
    pub count: usize,
    pub emails: Vec<OutboxEmail>,
}
