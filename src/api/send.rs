//! `POST /api/email/send`, `GET /api/email/stats`, and the outbox (`GET /api/email/outbox…`).

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::docs::ErrorBody;
use super::docs::send_schemas::{
    OutboxEnvelope, OutboxPage, SendAccepted, SendRateLimited, SendRequest as SendRequestSchema,
    SendStatsEnvelope,
};
use super::emails::parse_id;
use super::presenter::iso_8601;
use crate::api::AppState;
use crate::error::ApiError;
use crate::outbound::SendError;
use crate::outbound::outbox::OutboxStatus;
use crate::outbound::validate::SendRequest;
use crate::security::auth::Authenticated;
use crate::security::client_ip::ClientIp;
use crate::store::outbox::{OutboxEntry, OutboxQuery};
use crate::telemetry::metrics;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/email/send", post(send))
        .route("/api/email/stats", get(stats))
        .route("/api/email/outbox", get(list))
        .route("/api/email/outbox/{id}", get(show))
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
    request_body(content = SendRequestSchema, content_type = "application/json"),
    responses(
        (status = 202, description = "Queued", body = SendAccepted),
        (status = 400, description = "A validation check failed; `message` says which", body = ErrorBody),
        (status = 429, description = "Send limit reached (default 2/minute, 10/hour, 50/day per client IP, SEND_RATE_LIMIT)",
         body = SendRateLimited, headers(("Retry-After" = u64, description = "Seconds until a send is accepted again"))),
    )
)]
pub(super) async fn send(
    _: Authenticated,
    ClientIp(client): ClientIp,
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body = body.map_err(ApiError::from_body)?;
    let request: SendRequest = serde_json::from_slice(&body).map_err(|e| {
        tracing::warn!(ip = %client, error = %e, "send refused: unreadable body");
        ApiError::bad_request("Invalid JSON", e.to_string())
    })?;
    let id = state
        .outbound
        .submit(&request, client)
        .await
        .map_err(|error| match error {
            SendError::Rejected(r) => ApiError::bad_request(r.error, r.message),
            SendError::Limited(refusal) => {
                metrics::rate_limit_hit("/api/email/send", refusal.name());
                ApiError::SendLimited {
                    message: refusal.message(),
                    retry_after: refusal.retry_after(),
                }
            }
            SendError::Store(e) => ApiError::Store(e),
        })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "success": true,
            "message": "Email queued for delivery",
            "id": id,
            "status": "queued",
        })),
    ))
}

/// The caller's send counts and what remains in each window.
#[utoipa::path(
    get,
    path = "/api/email/stats",
    tag = "send",
    security(("bearer" = [])),
    responses((status = 200, description = "Counts for the client IP", body = SendStatsEnvelope))
)]
pub(super) async fn stats(
    _: Authenticated,
    ClientIp(client): ClientIp,
    State(state): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    let now = chrono::Utc::now();
    let usage = state.outbound.usage(client, now).await?;
    let [minute, hour, day] = state.outbound.policy.stats(&usage, now);
    Ok(Json(json!({
        "success": true,
        "stats": {
            "ip": client.to_string(),
            "sentLastMinute": minute.0,
            "sentLastHour": hour.0,
            "sentLastDay": day.0,
            "remainingMinute": minute.1,
            "remainingHour": hour.1,
            "remainingDay": day.1,
        },
    })))
}

/// Where an accepted email stands.
#[utoipa::path(
    get,
    path = "/api/email/outbox/{id}",
    tag = "send",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The id returned by `POST /api/email/send`")),
    responses(
        (status = 200, description = "The outbox entry", body = OutboxEnvelope),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 404, description = "No such outbox entry", body = ErrorBody),
    )
)]
pub(super) async fn show(
    _: Authenticated,
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id?.0)?;
    let entry = state
        .outbound
        .outbox
        .entry(id)
        .await?
        .ok_or(ApiError::NotFound("Outbox email not found"))?;
    Ok(Json(json!({ "success": true, "email": entry_json(entry) })))
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct ListParams {
    status: Option<String>,
    limit: Option<u32>,
    skip: Option<u64>,
}

/// Accepted emails, newest first; `?status=sent` is the sent folder.
#[utoipa::path(
    get,
    path = "/api/email/outbox",
    tag = "send",
    security(("bearer" = [])),
    params(
        ("status" = Option<String>, Query, description = "queued, sending, sent, retrying or failed"),
        ("limit" = Option<u32>, Query, description = "Page size, 1 to 100 (default 10)"),
        ("skip" = Option<u64>, Query, description = "Entries to skip (default 0)"),
    ),
    responses(
        (status = 200, description = "A page of the outbox", body = OutboxPage),
        (status = 400, description = "Unknown status or bad number", body = ErrorBody),
    )
)]
pub(super) async fn list(
    _: Authenticated,
    State(state): State<AppState>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let params = params?.0;
    let status = params.status.filter(|s| !s.is_empty());
    if let Some(status) = &status
        && !OutboxStatus::NAMES.contains(&status.as_str())
    {
        return Err(ApiError::bad_request(
            "Invalid status",
            format!("status is one of {}", OutboxStatus::NAMES.join(", ")),
        ));
    }
    let query = OutboxQuery {
        status,
        limit: params.limit.unwrap_or(10).clamp(1, 100),
        skip: params.skip.unwrap_or(0),
    };
    let entries = state.outbound.outbox.list(&query).await?;
    let emails: Vec<Value> = entries.into_iter().map(entry_json).collect();
    Ok(Json(
        json!({ "success": true, "count": emails.len(), "emails": emails }),
    ))
}

fn entry_json(entry: OutboxEntry) -> Value {
    let retry_at = match entry.status {
        OutboxStatus::TemporaryFailure { retry_at } => Some(iso_8601(retry_at)),
        _ => None,
    };
    let mut body = json!({
        "id": entry.id,
        "status": entry.status.name(),
        "attempts": entry.attempts,
        "lastError": entry.last_error,
        "smtpReply": entry.smtp_reply,
        "acceptedAt": iso_8601(entry.accepted_at),
        "sentAt": entry.sent_at.map(iso_8601),
        "retryAt": retry_at,
    });
    if let (Value::Object(fields), Value::Object(summary)) = (&mut body, entry.summary) {
        fields.extend(summary);
    }
    body
}
