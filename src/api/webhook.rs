//! `POST /webhook` (or `/webhook/<WEBHOOK_SECRET>`): ImprovMX deliveries, acknowledged
//! only once durably stored. Who may deliver is decided before the body is read, by
//! `security::guard`; the secret route's template keeps the secret out of logs.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::error::ApiError;
use crate::inbound::improvmx::{self, PayloadError};
use crate::store::Inserted;

pub fn router(max_bytes: usize) -> Router<AppState> {
    Router::new()
        .route("/webhook", post(receive))
        .route("/webhook/{secret}", post(receive))
        .layer(DefaultBodyLimit::max(max_bytes))
}

async fn receive(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let body = body.map_err(ApiError::from_body)?;
    let received_at = chrono::Utc::now();
    // Parsing and base64-decoding tens of megabytes is CPU work: keep it off the reactor.
    let email = tokio::task::spawn_blocking(move || improvmx::parse(&body, received_at))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| match e {
            PayloadError::NotJson(cause) => {
                ApiError::bad_request("Invalid JSON", cause.to_string())
            }
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
