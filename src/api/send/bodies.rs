//! The send API's bodies: what its handlers send, and the request the spec documents
//! (the handler reads it through `outbound::validate`, which names each failed check).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::super::presenter::iso_8601;
use crate::store::outbox::{OutboxEntry, OutboxStatus};

/// Accepted into the outbox; a worker delivers it over SMTP.
#[derive(Debug, Serialize, ToSchema)]
pub struct SendAccepted {
    /// Always `true`.
    pub success: bool,
    #[schema(example = "Email queued for delivery")]
    pub message: &'static str,
    /// The outbox id, for `GET /api/email/outbox/{id}`.
    #[schema(pattern = "^[0-9a-f]{24}$")]
    pub id: String,
    pub status: StatusName,
}

/// The send API's 429: `retryAfter` in seconds, also in `Retry-After`.
#[derive(ToSchema)]
#[allow(dead_code)] // `ErrorBody` carries `retryAfter` for it
pub struct SendRateLimited {
    pub success: bool,
    #[schema(example = "Rate limit exceeded")]
    pub error: String,
    pub message: String,
    #[schema(rename = "retryAfter")]
    pub retry_after: u64,
}

/// Emails accepted from the client IP in each window, and how many more each allows
/// (`null` when `SEND_RATE_LIMIT` sets no limit for that window).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SendStats {
    pub ip: String,
    pub sent_last_minute: u64,
    pub sent_last_hour: u64,
    pub sent_last_day: u64,
    pub remaining_minute: Option<u64>,
    pub remaining_hour: Option<u64>,
    pub remaining_day: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SendStatsEnvelope {
    /// Always `true`.
    pub success: bool,
    pub stats: SendStats,
}

/// Where an outbox entry stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StatusName {
    Queued,
    Sending,
    Sent,
    /// Failed for now; tried again at `retryAt`.
    Retrying,
    /// Failed for good.
    Failed,
}

impl From<&OutboxStatus> for StatusName {
    fn from(status: &OutboxStatus) -> Self {
        match status {
            OutboxStatus::Queued => StatusName::Queued,
            OutboxStatus::Sending => StatusName::Sending,
            OutboxStatus::Sent => StatusName::Sent,
            OutboxStatus::TemporaryFailure { .. } => StatusName::Retrying,
            OutboxStatus::PermanentFailure => StatusName::Failed,
        }
    }
}

/// What was asked for, as accepted (kept with the entry).
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct SentRequest {
    pub from: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub bcc: Vec<String>,
    pub subject: String,
    pub is_html: bool,
    pub body: String,
}

/// An outbox entry: its delivery state and the request's fields.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OutboxEmail {
    #[schema(pattern = "^[0-9a-f]{24}$")]
    pub id: String,
    pub status: StatusName,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// The SMTP server's reply to the last attempt.
    pub smtp_reply: Option<String>,
    pub accepted_at: String,
    pub sent_at: Option<String>,
    pub retry_at: Option<String>,
    #[serde(flatten)]
    pub request: SentRequest,
}

impl From<OutboxEntry> for OutboxEmail {
    fn from(entry: OutboxEntry) -> Self {
        let retry_at = match entry.status {
            OutboxStatus::TemporaryFailure { retry_at } => Some(iso_8601(retry_at)),
            _ => None,
        };
        Self {
            id: entry.id.to_string(),
            status: StatusName::from(&entry.status),
            attempts: entry.attempts,
            last_error: entry.last_error,
            smtp_reply: entry.smtp_reply,
            accepted_at: iso_8601(entry.accepted_at),
            sent_at: entry.sent_at.map(iso_8601),
            retry_at,
            request: request_of(entry.summary),
        }
    }
}

/// The stored summary of the request; a field it lacks shows empty.
fn request_of(summary: Value) -> SentRequest {
    serde_json::from_value(summary).unwrap_or_default()
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OutboxEnvelope {
    /// Always `true`.
    pub success: bool,
    pub email: OutboxEmail,
}

/// A page of the outbox, newest first; `?status=sent` is the sent folder.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutboxPage {
    /// Always `true`.
    pub success: bool,
    pub count: usize,
    pub emails: Vec<OutboxEmail>,
}
