//! Part downloads: by name (the old service's route) and by index (reaches duplicate names).

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use axum::routing::get;

use super::emails::parse_id;
use crate::api::AppState;
use crate::download;
use crate::email::{PartKind, PartMeta};
use crate::error::ApiError;
use crate::inbound;
use crate::security::auth::Authenticated;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/emails/{id}/attachment/{name}", get(by_name))
        .route("/emails/{id}/attachments/{index}", get(attachment_by_index))
        .route("/emails/{id}/inlines/{index}", get(inline_by_index))
}

/// Looks in attachments, then inlines, for the first part with this (percent-decoded) name.
#[utoipa::path(
    get,
    path = "/emails/{id}/attachment/{name}",
    tag = "emails",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "The email id: 24 hexadecimal characters", pattern = "^[0-9a-fA-F]{24}$"),
        ("name" = String, Path, description = "The part's file name, percent-encoded"),
        ("Range" = Option<String>, Header, description = "`bytes=FIRST-LAST`, `bytes=FIRST-` or `bytes=-SUFFIX`: one range; several ranges get the whole part"),
    ),
    responses(
        (status = 200, description = "The bytes, with the stored type", content_type = "*/*",
         body = super::docs::schemas::Download,
         headers(
            ("Content-Type" = String, description = "The stored type in canonical form (`application/octet-stream` when unknown or unparsable)"),
            ("Content-Disposition" = String, description = "`attachment` for every part of `attachments`; `inline` only for `inlines` parts of a passive type (images, PDF)"),
            ("X-Content-Type-Options" = String, description = "`nosniff`"),
            ("Content-Security-Policy" = String, description = "`default-src 'none'; sandbox`"),
            ("Accept-Ranges" = String, description = "`bytes`"),
         )),
        (status = 206, description = "The one byte range asked for with `Range: bytes=…`", content_type = "*/*",
         body = super::docs::schemas::Download,
         headers(("Content-Range" = String, description = "`bytes FIRST-LAST/SIZE`"))),
        (status = 416, description = "The range starts past the end",
         headers(("Content-Range" = String, description = "`bytes */SIZE`"))),
        (status = 400, description = "Malformed id", body = super::docs::ErrorBody),
        (status = 404, description = "No such email or part", body = super::docs::ErrorBody),
    )
)]
async fn by_name(
    _: Authenticated,
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Path((id, name)) = path?;
    let email = state
        .store
        .email(parse_id(&id)?)
        .await?
        .ok_or(ApiError::NotFound("Email not found"))?;
    let part = inbound::parts_of(&email)
        .into_iter()
        .find(|part| part.meta.name.as_deref() == Some(name.as_str()))
        .ok_or(ApiError::NotFound("Attachment not found"))?;
    serve(&state, part.kind, part.meta, &headers).await
}

/// The attachment at this position (from 0): reaches parts with duplicate names.
#[utoipa::path(
    get,
    path = "/emails/{id}/attachments/{index}",
    tag = "emails",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "The email id: 24 hexadecimal characters", pattern = "^[0-9a-fA-F]{24}$"),
        ("index" = u32, Path, description = "Position in `attachments`, from 0"),
        ("Range" = Option<String>, Header, description = "`bytes=FIRST-LAST`, `bytes=FIRST-` or `bytes=-SUFFIX`: one range; several ranges get the whole part"),
    ),
    responses(
        (status = 200, description = "The bytes, with the stored type", content_type = "*/*",
         body = super::docs::schemas::Download,
         headers(
            ("Content-Type" = String, description = "The stored type in canonical form (`application/octet-stream` when unknown or unparsable)"),
            ("Content-Disposition" = String, description = "`attachment` for every part of `attachments`; `inline` only for `inlines` parts of a passive type (images, PDF)"),
            ("X-Content-Type-Options" = String, description = "`nosniff`"),
            ("Content-Security-Policy" = String, description = "`default-src 'none'; sandbox`"),
            ("Accept-Ranges" = String, description = "`bytes`"),
         )),
        (status = 206, description = "The one byte range asked for with `Range: bytes=…`", content_type = "*/*",
         body = super::docs::schemas::Download,
         headers(("Content-Range" = String, description = "`bytes FIRST-LAST/SIZE`"))),
        (status = 416, description = "The range starts past the end",
         headers(("Content-Range" = String, description = "`bytes */SIZE`"))),
        (status = 400, description = "Malformed id or index", body = super::docs::ErrorBody),
        (status = 404, description = "No such email or part", body = super::docs::ErrorBody),
    )
)]
async fn attachment_by_index(
    auth: Authenticated,
    state: State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    by_index(auth, state, path, PartKind::Attachment, headers).await
}

/// The inline at this position (from 0).
#[utoipa::path(
    get,
    path = "/emails/{id}/inlines/{index}",
    tag = "emails",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "The email id: 24 hexadecimal characters", pattern = "^[0-9a-fA-F]{24}$"),
        ("index" = u32, Path, description = "Position in `inlines`, from 0"),
        ("Range" = Option<String>, Header, description = "`bytes=FIRST-LAST`, `bytes=FIRST-` or `bytes=-SUFFIX`: one range; several ranges get the whole part"),
    ),
    responses(
        (status = 200, description = "The bytes, with the stored type", content_type = "*/*",
         body = super::docs::schemas::Download,
         headers(
            ("Content-Type" = String, description = "The stored type in canonical form (`application/octet-stream` when unknown or unparsable)"),
            ("Content-Disposition" = String, description = "`attachment` for every part of `attachments`; `inline` only for `inlines` parts of a passive type (images, PDF)"),
            ("X-Content-Type-Options" = String, description = "`nosniff`"),
            ("Content-Security-Policy" = String, description = "`default-src 'none'; sandbox`"),
            ("Accept-Ranges" = String, description = "`bytes`"),
         )),
        (status = 206, description = "The one byte range asked for with `Range: bytes=…`", content_type = "*/*",
         body = super::docs::schemas::Download,
         headers(("Content-Range" = String, description = "`bytes FIRST-LAST/SIZE`"))),
        (status = 416, description = "The range starts past the end",
         headers(("Content-Range" = String, description = "`bytes */SIZE`"))),
        (status = 400, description = "Malformed id or index", body = super::docs::ErrorBody),
        (status = 404, description = "No such email or part", body = super::docs::ErrorBody),
    )
)]
async fn inline_by_index(
    auth: Authenticated,
    state: State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    by_index(auth, state, path, PartKind::Inline, headers).await
}

async fn by_index(
    _: Authenticated,
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    kind: PartKind,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Path((id, index)) = path?;
    let id = parse_id(&id)?;
    let index: usize = index.parse().map_err(|_| {
        ApiError::bad_request("Invalid index", "the part index is a whole number from 0")
    })?;
    let email = state
        .store
        .email(id)
        .await?
        .ok_or(ApiError::NotFound("Email not found"))?;
    let part =
        inbound::part_at(&email, kind, index).ok_or(ApiError::NotFound("Attachment not found"))?;
    serve(&state, kind, part.meta, &headers).await
}

/// The part's bytes, streamed: whole, or the range that `Range` asks for.
async fn serve(
    state: &AppState,
    kind: PartKind,
    part: PartMeta,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    download::response(state.store.clone(), kind, &part, headers.get(header::RANGE))
        .await?
        .ok_or(ApiError::NotFound("Attachment not found"))
}
