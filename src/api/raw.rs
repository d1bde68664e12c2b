//! `GET /emails/<id>/raw`: what the provider sent (DESIGN §7).

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value};

use super::emails::parse_id;
use crate::api::AppState;
use crate::error::ApiError;
use crate::inbound::original::original_of;
use crate::security::auth::Authenticated;

pub fn router() -> Router<AppState> {
    Router::new().route("/emails/{id}/raw", get(raw))
}

/// The original payload of an email.
///
/// For ImprovMX, the JSON it delivered: every field as sent, each part with its
/// `content` again (base64 of the stored bytes). It equals the delivery up to base64
/// line wrapping and key order.
#[utoipa::path(
    get,
    path = "/emails/{id}/raw",
    tag = "emails",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "The email id: 24 hexadecimal characters", pattern = "^[0-9a-fA-F]{24}$"),
    ),
    responses(
        (status = 200, description = "The payload as delivered", body = Object, content_type = "application/json"),
        (status = 400, description = "Malformed id", body = super::docs::ErrorBody),
        (status = 404, description = "No such email", body = super::docs::ErrorBody),
    )
)]
pub(super) async fn raw(
    _: Authenticated,
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Map<String, Value>>, ApiError> {
    let id = parse_id(&id?.0)?;
    let email = state
        .store
        .email(id)
        .await?
        .ok_or(ApiError::NotFound("Email not found"))?;
    let original = original_of(state.store.as_ref(), &email.document).await?;
    Ok(Json(original))
}
