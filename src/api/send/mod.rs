//! `POST /api/email/send`, `GET /api/email/stats`, and the outbox (`GET /api/email/outbox…`).

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

mod bodies;

use self::bodies::{
    OutboxEmail, OutboxEnvelope, OutboxPage, SendAccepted, SendRateLimited, SendStats,
    SendStatsEnvelope, StatusName,
};
use super::docs::ErrorBody;
use super::emails::parse_id;
use crate::api::AppState;
use crate::error::ApiError;
use crate::outbound::SendError;
use crate::outbound::outbox::OutboxStatus;
use crate::outbound::validate::SendRequest;
use crate::security::auth::Authenticated;
use crate::security::client_ip::ClientIp;
use crate::store::outbox::OutboxQuery;
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
    request_body(content = SendRequest, content_type = "application/json"),
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
) -> Result<(StatusCode, Json<SendAccepted>), ApiError> {
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
        Json(SendAccepted {
            success: true,
            message: "Email queued for delivery",
            id: id.to_string(),
            status: StatusName::Queued,
        }),
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
) -> Result<Json<SendStatsEnvelope>, ApiError> {
    let now = chrono::Utc::now();
    let usage = state.outbound.usage(client, now).await?;
    let [minute, hour, day] = state.outbound.policy.stats(&usage, now);
    Ok(Json(SendStatsEnvelope {
        success: true,
        stats: SendStats {
            ip: client.to_string(),
            sent_last_minute: minute.0,
            sent_last_hour: hour.0,
            sent_last_day: day.0,
            remaining_minute: minute.1,
            remaining_hour: hour.1,
            remaining_day: day.1,
        },
    }))
}

/// Where an accepted email stands.
#[utoipa::path(
    get,
    path = "/api/email/outbox/{id}",
    tag = "send",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The id returned by `POST /api/email/send`: 24 hexadecimal characters", pattern = "^[0-9a-fA-F]{24}$")),
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
) -> Result<Json<OutboxEnvelope>, ApiError> {
    let id = parse_id(&id?.0)?;
    let entry = state
        .outbound
        .outbox
        .entry(id)
        .await?
        .ok_or(ApiError::NotFound("Outbox email not found"))?;
    Ok(Json(OutboxEnvelope {
        success: true,
        email: entry.into(),
    }))
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct ListParams {
    status: Option<String>,
    limit: Option<i64>,
    skip: Option<i64>,
}

/// Accepted emails, newest first; `?status=sent` is the sent folder.
#[utoipa::path(
    get,
    path = "/api/email/outbox",
    tag = "send",
    security(("bearer" = [])),
    params(
        ("status" = Option<StatusName>, Query, description = "Only entries in this state"),
        ("limit" = Option<i64>, Query, description = "Page size: any whole number, clamped to 1..100 (default 10)"),
        ("skip" = Option<i64>, Query, minimum = 0, description = "Entries to skip (default 0)"),
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
) -> Result<Json<OutboxPage>, ApiError> {
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
        limit: params.limit.unwrap_or(10).clamp(1, 100) as u32,
        skip: u64::try_from(params.skip.unwrap_or(0)).map_err(|_| {
            ApiError::bad_request("Invalid skip", "skip must be a whole number, 0 or more")
        })?,
    };
    let entries = state.outbound.outbox.list(&query).await?;
    let emails: Vec<OutboxEmail> = entries.into_iter().map(OutboxEmail::from).collect();
    Ok(Json(OutboxPage {
        success: true,
        count: emails.len(),
        emails,
    }))
}
