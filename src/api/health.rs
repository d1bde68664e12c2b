//! `GET /`: the old service's authenticated health answer.

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::presenter::iso_8601;
use crate::api::AppState;
use crate::security::auth::Authenticated;

pub fn router() -> Router<AppState> {
    Router::new().route("/", get(status))
}

/// The old service's health answer (authenticated).
#[utoipa::path(
    get,
    path = "/",
    tag = "health",
    security(("bearer" = [])),
    responses((status = 200, description = "The server is up", body = super::docs::schemas::Status))
)]
async fn status(_: Authenticated) -> Json<Value> {
    Json(json!({
        "status": "healthy",
        "service": "ImprovMX Webhook",
        "timestamp": iso_8601(chrono::Utc::now()),
    }))
}
