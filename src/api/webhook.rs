//! `POST /webhook` (or `/webhook/<WEBHOOK_SECRET>`): ImprovMX deliveries, acknowledged
//! only once durably stored. Who may deliver is decided before the body is read, by
//! `security::guard`; the secret route's template keeps the secret out of logs.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::header;
use axum::routing::post;
use axum::{Extension, Json, Router};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::app::AppState;
use crate::error::ApiError;
use crate::inbound::improvmx::{self, PayloadError};
use crate::store::Inserted;

/// Webhook bytes read, parsed and stored at once (at least one maximal body). Each
/// delivery holds its body plus its decoded parts, so this bounds memory; deliveries
/// beyond it wait their turn (their bytes stay in the kernel's socket buffers), never fail.
const BYTES_IN_FLIGHT: usize = 256 * 1024 * 1024;

/// Bodies up to this size are parsed on the request's own task.
const PARSE_INLINE_BYTES: usize = 64 * 1024;

/// The budget is counted in KiB, so that it fits the semaphore's permits.
#[derive(Clone)]
struct InFlight {
    kib: Arc<Semaphore>,
    max_body_kib: u32,
}

pub fn router(max_bytes: usize) -> Router<AppState> {
    let max_body_kib = u32::try_from(max_bytes.div_ceil(1024)).unwrap_or(u32::MAX);
    let budget = BYTES_IN_FLIGHT.div_ceil(1024).max(max_body_kib as usize);
    Router::new()
        .route("/webhook", post(receive))
        .route("/webhook/{secret}", post(receive_with_secret))
        .layer(Extension(InFlight {
            kib: Arc::new(Semaphore::new(budget)),
            max_body_kib,
        }))
        .layer(DefaultBodyLimit::max(max_bytes))
}

/// An ImprovMX delivery, answered only once the email and its parts are on disk.
///
/// A redelivery answers 200 with the first `email_id` and stores nothing. Any 5xx means
/// "not stored": ImprovMX retries.
#[utoipa::path(
    post,
    path = "/webhook",
    tag = "webhook",
    request_body(content = super::docs::schemas::ImprovMxPayload, content_type = "application/json"),
    responses(
        (status = 200, description = "Stored, or a redelivery of an email already stored", body = super::docs::schemas::WebhookAccepted),
        (status = 400, description = "The body is not a JSON object", body = super::docs::ErrorBody),
        (status = 413, description = "Larger than MAX_WEBHOOK_BYTES", body = super::docs::ErrorBody),
        (status = 503, description = "Shutting down: not stored, retry", body = super::docs::ErrorBody),
        (status = 507, description = "Disk full: not stored, retry", body = super::docs::ErrorBody),
    )
)]
async fn receive(
    State(state): State<AppState>,
    Extension(in_flight): Extension<InFlight>,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    // Charged by Content-Length (a body without one is charged the maximum), before reading.
    let kib = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        .map_or(in_flight.max_body_kib, |len| {
            u32::try_from(len.div_ceil(1024)).unwrap_or(u32::MAX)
        })
        .clamp(1, in_flight.max_body_kib);
    let _permit = in_flight
        .kib
        .acquire_many(kib)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let body = Bytes::from_request(request, &state)
        .await
        .map_err(ApiError::from_body)?;
    let received_at = chrono::Utc::now();
    // Parsing and base64-decoding tens of megabytes is CPU work: keep it off the reactor.
    // A small body parses in microseconds, less than the hand-off to a blocking thread.
    let parsed = if body.len() <= PARSE_INLINE_BYTES {
        improvmx::parse(&body, received_at)
    } else {
        tokio::task::spawn_blocking(move || improvmx::parse(&body, received_at))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
    };
    let email = parsed.map_err(|e| match e {
        PayloadError::NotJson(cause) => ApiError::bad_request("Invalid JSON", cause.to_string()),
        PayloadError::NotAnObject => {
            ApiError::bad_request("Invalid payload", "the body must be a JSON object")
        }
    })?;
    let (parts, bytes) = (
        email.blobs.len(),
        email.blobs.iter().map(|(_, b)| b.len()).sum::<usize>(),
    );
    let inserted = state.store.insert_inbound(email).await?;
    match inserted {
        Inserted::New(id) => tracing::info!(email_id = %id, parts, bytes, "email stored"),
        Inserted::Duplicate(id) => tracing::info!(email_id = %id, "redelivery of a stored email"),
    }
    Ok(Json(json!({
        "success": true,
        "message": "Email received and stored",
        "email_id": inserted.id(),
    })))
}

/// `/webhook/<WEBHOOK_SECRET>`: the same delivery, on the secret URL. The secret was
/// checked (in constant time) before the body was read; the handler is `receive`'s.
#[utoipa::path(
    post,
    path = "/webhook/{secret}",
    tag = "webhook",
    params(("secret" = String, Path, description = "The value of WEBHOOK_SECRET")),
    request_body(content = super::docs::schemas::ImprovMxPayload, content_type = "application/json"),
    responses(
        (status = 200, description = "Stored, or a redelivery of an email already stored", body = super::docs::schemas::WebhookAccepted),
        (status = 400, description = "The body is not a JSON object", body = super::docs::ErrorBody),
        (status = 403, description = "Wrong secret, or a sender outside WEBHOOK_ALLOWED_IPS", body = super::docs::ErrorBody),
        (status = 404, description = "No WEBHOOK_SECRET is configured", body = super::docs::ErrorBody),
        (status = 413, description = "Larger than MAX_WEBHOOK_BYTES", body = super::docs::ErrorBody),
        (status = 503, description = "Shutting down: not stored, retry", body = super::docs::ErrorBody),
        (status = 507, description = "Disk full: not stored, retry", body = super::docs::ErrorBody),
    )
)]
async fn receive_with_secret(
    state: State<AppState>,
    in_flight: Extension<InFlight>,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    receive(state, in_flight, request).await
}
