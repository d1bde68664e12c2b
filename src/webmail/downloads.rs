//! Attachment downloads and "show original" for the logged-in reader, with the API's
//! types and dispositions (`crate::download`), so an HTML or SVG part never renders.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::access::{self, Viewer};
use super::error::WebmailError;
use super::state::WebmailState;
use crate::email::{EmailId, PartKind, StoredEmail};
use crate::inbound::{self, original::original_of};

pub fn router() -> Router<WebmailState> {
    Router::new()
        .route("/ui/download/{id}/{kind}/{index}", get(download))
        .route("/ui/original/{id}", get(original))
}

fn parse_id(id: &str) -> Result<EmailId, WebmailError> {
    id.parse().map_err(|_| WebmailError::NotFound)
}

fn parse_kind(kind: &str) -> Result<PartKind, WebmailError> {
    match kind {
        "attachments" => Ok(PartKind::Attachment),
        "inlines" => Ok(PartKind::Inline),
        _ => Err(WebmailError::NotFound),
    }
}

async fn download(
    State(state): State<WebmailState>,
    viewer: Viewer,
    Path((id, kind, index)): Path<(String, String, usize)>,
    headers: HeaderMap,
) -> Result<Response, WebmailError> {
    let kind = parse_kind(&kind)?;
    let readable = access::open(&state, &viewer, parse_id(&id)?, None).await?;
    let range = headers.get(header::RANGE);
    serve(&state, &readable.email, kind, index, range).await
}

/// The part's bytes as the API serves them (streamed; `range` as `Range` asks).
pub async fn serve(
    state: &WebmailState,
    email: &StoredEmail,
    kind: PartKind,
    index: usize,
    range: Option<&HeaderValue>,
) -> Result<Response, WebmailError> {
    let part = inbound::part_at(email, kind, index).ok_or(WebmailError::NotFound)?;
    crate::download::response(state.store.clone(), kind, &part.meta, range)
        .await?
        .ok_or(WebmailError::NotFound)
}

/// The email as it was delivered (the API's `/raw`: every field, parts with their
/// content), as plain text.
async fn original(
    State(state): State<WebmailState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Result<Response, WebmailError> {
    let readable = access::open(&state, &viewer, parse_id(&id)?, None).await?;
    let original = original_of(state.store.as_ref(), &readable.email.document).await?;
    let text = serde_json::to_string_pretty(&original)
        .map_err(|e| WebmailError::Internal(e.to_string()))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; sandbox",
            ),
        ],
        text,
    )
        .into_response())
}
