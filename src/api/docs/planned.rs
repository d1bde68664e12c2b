//! Routes described from DESIGN.md §2 before their handlers are merged (the send
//! API). When a route's handler lands with its own `#[utoipa::path]`, list the handler in
//! `ApiDoc` and delete its stub here; `ApiDoc::PLANNED` says which paths are stubs.
#![allow(dead_code)]

use utoipa::ToSchema;

use super::schemas::ErrorBody;

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

/// An outbox entry: `queued`, `sending`, `sent`, `temporary_failure` (retried) or `permanent_failure`.
#[derive(ToSchema)]
pub struct OutboxEntry {
    pub success: bool,
    pub id: String,
    pub status: String,
}

/// Queue an email for delivery over SMTP.
///
/// Validation (header injection, sender domain, recipients, size, spam heuristics, URL
/// shorteners) runs before anything is queued.
#[utoipa::path(
    post,
    path = "/api/email/send",
    tag = "send",
    security(("bearer" = [])),
    request_body(content = SendRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "Queued", body = SendAccepted),
        (status = 400, description = "A validation check failed; `message` says which", body = ErrorBody),
        (status = 429, description = "Send limit reached (default 2/minute, 10/hour, 50/day per client IP, SEND_RATE_LIMIT)",
         body = SendRateLimited, headers(("Retry-After" = u64, description = "Seconds until a send is accepted again"))),
    )
)]
pub async fn send() {}

/// The caller's send counts and what remains in each window.
#[utoipa::path(
    get,
    path = "/api/email/stats",
    tag = "send",
    security(("bearer" = [])),
    responses((status = 200, description = "Counts for the client IP", body = SendStatsEnvelope))
)]
pub async fn stats() {}

/// Where an accepted email stands.
#[utoipa::path(
    get,
    path = "/api/email/outbox/{id}",
    tag = "send",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The id returned by `POST /api/email/send`")),
    responses(
        (status = 200, description = "The outbox entry", body = OutboxEntry),
        (status = 404, description = "No such outbox entry", body = ErrorBody),
    )
)]
pub async fn outbox() {}
