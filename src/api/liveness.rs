//! `GET /healthz` and `GET /readyz`: probes for systemd, proxies and monitors.
//!
//! Neither needs a key, and neither says more than "up" or "ready": no version,
//! no engine, no error detail (that goes to the log).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::app::AppState;
use crate::error::ApiError;
use crate::telemetry::error_chain;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(live))
        .route("/readyz", get(ready))
}

/// The body of both probes.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Probe {
    /// `ok` (live) or `ready`.
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Answers while the process serves requests.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "liveness",
    responses((status = 200, description = "The process is up", body = Probe, example = json!({"status": "ok"})))
)]
pub async fn live() -> Json<Probe> {
    Json(Probe { status: "ok" })
}

/// Answers 200 once the database answers a query, 503 otherwise.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "liveness",
    responses(
        (status = 200, description = "The database answers", body = Probe, example = json!({"status": "ready"})),
        (status = 503, description = "The database does not answer", body = super::docs::ErrorBody,
         headers(("Retry-After" = u32, description = "Seconds to wait before asking again"))),
    )
)]
pub async fn ready(State(state): State<AppState>) -> Result<Json<Probe>, ApiError> {
    match state.store.ping().await {
        Ok(()) => Ok(Json(Probe { status: "ready" })),
        Err(error) => {
            tracing::warn!(error = %error_chain(&error), "readiness check failed");
            Err(ApiError::NotReady)
        }
    }
}
