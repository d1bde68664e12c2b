//! `GET /`: the old service's authenticated health answer.

use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use super::presenter::iso_8601;
use crate::api::AppState;
use crate::security::auth::Authenticated;

pub fn router() -> Router<AppState> {
    Router::new().route("/", get(status))
}

/// `GET /`: the old service's health answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Status {
    #[schema(example = "healthy")]
    pub status: &'static str,
    #[schema(example = "ImprovMX Webhook")]
    pub service: &'static str,
    /// ISO 8601, UTC, milliseconds.
    #[schema(example = "2024-11-14T12:12:45.123Z")]
    pub timestamp: String,
}

/// The old service's health answer (authenticated).
#[utoipa::path(
    get,
    path = "/",
    tag = "health",
    security(("bearer" = [])),
    responses((status = 200, description = "The server is up", body = Status))
)]
async fn status(_: Authenticated) -> Json<Status> {
    Json(Status {
        status: "healthy",
        service: "ImprovMX Webhook",
        timestamp: iso_8601(chrono::Utc::now()),
    })
}
