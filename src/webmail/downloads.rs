//! Attachment downloads and "show original" for the logged-in reader, with the API's
//! types and dispositions (`crate::download`), so an HTML or SVG part never renders.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::access::{self, Viewer};
use super::error::WebmailError;
use super::state::WebmailState;
use crate::email::{EmailId, PartKind, StoredEmail};

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
) -> Result<Response, WebmailError> {
    let kind = parse_kind(&kind)?;
    let readable = access::open(&state, &viewer, parse_id(&id)?, None).await?;
    serve(&state, &readable.email, kind, index).await
}

/// The part's bytes as the API serves them.
pub async fn serve(
    state: &WebmailState,
    email: &StoredEmail,
    kind: PartKind,
    index: usize,
) -> Result<Response, WebmailError> {
    let (_, part) = email
        .parts(kind)
        .find(|(position, _)| *position == index)
        .ok_or(WebmailError::NotFound)?;
    let bytes = state
        .store
        .blob(&part.blake3)
        .await?
        .ok_or(WebmailError::NotFound)?;
    crate::download::response(kind, &part, bytes).map_err(|e| WebmailError::Internal(e.to_string()))
}

/// The email as stored (every field delivered, parts as metadata), as plain text.
async fn original(
    State(state): State<WebmailState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Result<Response, WebmailError> {
    let readable = access::open(&state, &viewer, parse_id(&id)?, None).await?;
    let text = serde_json::to_string_pretty(&readable.email.document)
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
