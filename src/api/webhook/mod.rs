//! `POST /webhook` (or `/webhook/<WEBHOOK_SECRET>`): ImprovMX deliveries, acknowledged
//! only once durably stored. Who may deliver is decided before the body is read, by
//! `security::guard`; the secret route's template keeps the secret out of logs.

mod body;

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::routing::post;
use axum::{Extension, Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use self::body::{BodyError, BodyReader};
use crate::api::AppState;
use crate::config::WebhookSettings;
use crate::email::NewEmail;
use crate::error::ApiError;
use crate::inbound::improvmx::{self, PayloadError, PayloadLimits};
use crate::store::Inserted;
use crate::telemetry::metrics::{self, Received};

/// Bodies up to this size are parsed on the request's own task.
const PARSE_INLINE_BYTES: usize = 64 * 1024;

/// Where deliveries on this route come from, in the metrics.
const PROVIDER: &str = "improvmx";

/// `POST /webhook`: stored, or a redelivery of an email already stored under this id.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookAccepted {
    /// Always `true`.
    pub success: bool,
    #[schema(example = "Email received and stored")]
    pub message: &'static str,
    #[schema(pattern = "^[0-9a-f]{24}$", example = "6735f1a08c1e4b2a9f0a1b2c")]
    pub email_id: String,
}

/// What every delivery shares: how bodies are read and what a payload may hold.
#[derive(Clone)]
struct Intake {
    reader: BodyReader,
    limits: PayloadLimits,
}

pub fn router(settings: &WebhookSettings) -> Router<AppState> {
    Router::new()
        .route("/webhook", post(receive))
        .route("/webhook/{secret}", post(receive_with_secret))
        .layer(Extension(Intake {
            reader: BodyReader::new(settings),
            limits: settings.payload,
        }))
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
        (status = 200, description = "Stored, or a redelivery of an email already stored", body = WebhookAccepted),
        (status = 400, description = "The body is not a JSON object", body = super::docs::ErrorBody),
        (status = 408, description = "The body arrived slower than WEBHOOK_MIN_BYTES_PER_SEC", body = super::docs::ErrorBody),
        (status = 413, description = "Larger than MAX_WEBHOOK_BYTES, or more parts or JSON keys than WEBHOOK_MAX_PARTS, WEBHOOK_MAX_JSON_KEYS", body = super::docs::ErrorBody),
        (status = 503, description = "Shutting down: not stored, retry", body = super::docs::ErrorBody),
        (status = 507, description = "Disk full: not stored, retry", body = super::docs::ErrorBody),
    )
)]
async fn receive(
    State(state): State<AppState>,
    Extension(intake): Extension<Intake>,
    request: Request,
) -> Result<Json<WebhookAccepted>, ApiError> {
    let started = Instant::now();
    let (head, body) = request.into_parts();
    let body = intake
        .reader
        .read(&head.headers, body)
        .await
        .map_err(|error| counted(body_error(error)))?;
    metrics::ingest_stage(PROVIDER, "read", started.elapsed());
    let parsing = Instant::now();
    let mut email = parse(&body.bytes, intake.limits).await.map_err(counted)?;
    email.keep_mailboxes_in(&state.settings.outbound.sender_domains);
    metrics::ingest_stage(PROVIDER, "parse", parsing.elapsed());
    // The body's share of the budget is held until the email is stored: its decoded
    // parts are the same size.
    let (parts, bytes) = (
        email.blobs.len(),
        email.blobs.iter().map(|(_, b)| b.len()).sum::<usize>(),
    );
    let storing = Instant::now();
    let inserted = state.store.insert_inbound(email).await;
    drop(body);
    let inserted = inserted.map_err(|error| counted(error.into()))?;
    metrics::ingest_stage(PROVIDER, "store", storing.elapsed());
    metrics::ingest_stage(PROVIDER, "total", started.elapsed());
    match inserted {
        Inserted::New(id) => {
            metrics::email_received(PROVIDER, Received::New);
            tracing::info!(email_id = %id, parts, bytes, "email stored");
        }
        Inserted::Duplicate(id) => {
            metrics::email_received(PROVIDER, Received::Duplicate);
            tracing::info!(email_id = %id, "redelivery of a stored email");
        }
    }
    Ok(Json(WebhookAccepted {
        success: true,
        message: "Email received and stored",
        email_id: inserted.id().to_string(),
    }))
}

/// Parses and base64-decodes the payload. That is CPU work for tens of megabytes, so it
/// is kept off the reactor; a small body parses in microseconds, less than the hand-off
/// to a blocking thread.
async fn parse(body: &Bytes, limits: PayloadLimits) -> Result<NewEmail, ApiError> {
    let received_at = chrono::Utc::now();
    if body.len() <= PARSE_INLINE_BYTES {
        improvmx::parse_within(body, received_at, limits)
    } else {
        let bytes = body.clone();
        tokio::task::spawn_blocking(move || improvmx::parse_within(&bytes, received_at, limits))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
    }
    .map_err(payload_error)
}

/// Counts a delivery that was not stored: rejected for what it is (4xx), or failed on
/// our side (5xx, the provider retries).
fn counted(error: ApiError) -> ApiError {
    let outcome = if error.status().is_server_error() {
        Received::Failed
    } else {
        Received::Rejected
    };
    metrics::email_received(PROVIDER, outcome);
    error
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
        (status = 200, description = "Stored, or a redelivery of an email already stored", body = WebhookAccepted),
        (status = 400, description = "The body is not a JSON object", body = super::docs::ErrorBody),
        (status = 403, description = "Wrong secret, or a sender outside WEBHOOK_ALLOWED_IPS", body = super::docs::ErrorBody),
        (status = 404, description = "No WEBHOOK_SECRET is configured", body = super::docs::ErrorBody),
        (status = 408, description = "The body arrived slower than WEBHOOK_MIN_BYTES_PER_SEC", body = super::docs::ErrorBody),
        (status = 413, description = "Larger than MAX_WEBHOOK_BYTES, or more parts or JSON keys than WEBHOOK_MAX_PARTS, WEBHOOK_MAX_JSON_KEYS", body = super::docs::ErrorBody),
        (status = 503, description = "Shutting down: not stored, retry", body = super::docs::ErrorBody),
        (status = 507, description = "Disk full: not stored, retry", body = super::docs::ErrorBody),
    )
)]
async fn receive_with_secret(
    state: State<AppState>,
    intake: Extension<Intake>,
    request: Request,
) -> Result<Json<WebhookAccepted>, ApiError> {
    receive(state, intake, request).await
}

fn body_error(error: BodyError) -> ApiError {
    match error {
        BodyError::TooLarge(_) => ApiError::PayloadTooLarge,
        BodyError::TooSlow(_) => ApiError::RequestTimeout(error.to_string()),
        BodyError::Read(_) => ApiError::bad_request("Invalid request body", error.to_string()),
    }
}

fn payload_error(error: PayloadError) -> ApiError {
    match error {
        PayloadError::NotJson(cause) => ApiError::bad_request("Invalid JSON", cause.to_string()),
        PayloadError::NotAnObject => {
            ApiError::bad_request("Invalid payload", "the body must be a JSON object")
        }
        PayloadError::TooManyParts(_) | PayloadError::TooManyJsonItems(_) => {
            ApiError::TooLarge(error.to_string())
        }
    }
}
