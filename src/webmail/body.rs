//! `/ui/body/<id>` and `/ui/part/<id>/inlines/<n>`: what the sandboxed body frame
//! loads. Its requests carry no cookie (its origin is opaque), so both are authorised
//! by short-lived signed URLs (`signing`) rather than the session.

use std::collections::HashMap;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use serde::Deserialize;

use super::error::WebmailError;
use super::sanitize::{self, PART_PATH_PREFIX};
use super::signing::Signature;
use super::state::WebmailState;
use crate::email::{EmailId, Message, PartKind};
use crate::inbound;

/// The frame's policy: no script at all, inline styles, and images only from our own
/// signed part URLs unless the reader allowed remote ones.
const BODY_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'self'; \
     sandbox allow-popups allow-popups-to-escape-sandbox";
const BODY_CSP_WITH_IMAGES: &str = "default-src 'none'; style-src 'unsafe-inline'; \
     img-src 'self' https: http:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'; \
     sandbox allow-popups allow-popups-to-escape-sandbox";

/// The signed part name of a body, with or without remote images.
pub fn body_part(images: bool) -> &'static str {
    if images { "body+images" } else { "body" }
}

pub fn router() -> Router<WebmailState> {
    Router::new()
        .route("/ui/body/{id}", get(body))
        .route("/ui/part/{id}/inlines/{index}", get(inline_part))
}

/// A `Signature` and the images flag (spelt out: serde's `flatten` cannot read numbers
/// from a query string).
#[derive(Deserialize)]
struct BodyQuery {
    u: i64,
    x: i64,
    s: String,
    images: Option<String>,
}

fn parse_id(id: &str) -> Result<EmailId, WebmailError> {
    id.parse().map_err(|_| WebmailError::NotFound)
}

async fn body(
    State(state): State<WebmailState>,
    Path(id): Path<String>,
    query: Result<Query<BodyQuery>, QueryRejection>,
) -> Result<Response, WebmailError> {
    let Query(query) = query.map_err(|_| WebmailError::BadSignature)?;
    let id = parse_id(&id)?;
    let images = query.images.as_deref() == Some("1");
    let signature = Signature {
        u: query.u,
        x: query.x,
        s: query.s,
    };
    if !state
        .signer
        .verify(&signature, id, body_part(images), Utc::now())
    {
        return Err(WebmailError::BadSignature);
    }
    let email = state.store.email(id).await?.ok_or(WebmailError::NotFound)?;
    let message = inbound::message_of(&email);
    let inlines = inline_urls(&state, email.id, &message, signature.u);
    let cleaned = sanitize::clean(message.html.as_deref().unwrap_or(""), inlines);
    let csp = if images {
        BODY_CSP_WITH_IMAGES
    } else {
        BODY_CSP
    };
    Ok((
        [
            (header::CONTENT_SECURITY_POLICY, csp),
            // Framed by our own reading view only.
            (header::X_FRAME_OPTIONS, "SAMEORIGIN"),
        ],
        Html(frame_document(&cleaned)),
    )
        .into_response())
}

/// The sanitised body inside a document of our own (which only wraps it).
fn frame_document(cleaned: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\">\
         <style>body{{font:15px/1.5 system-ui,sans-serif;margin:12px;overflow-wrap:anywhere}}\
         img{{max-width:100%;height:auto}}\
         @media (prefers-color-scheme:dark){{html{{background:#fff;border-radius:6px}}}}</style>\
         </head><body>{cleaned}</body></html>"
    )
}

/// Each inline part's normalised `cid` → its signed URL, for the user the body was signed for.
fn inline_urls(
    state: &WebmailState,
    id: EmailId,
    message: &Message,
    user: i64,
) -> HashMap<String, String> {
    let now = Utc::now();
    message
        .parts_of(PartKind::Inline)
        .filter_map(|part| {
            let cid = sanitize::normalise_cid(part.meta.cid.as_deref()?);
            let name = format!("inlines/{}", part.position);
            let query = state.signer.query(user, id, &name, now);
            Some((cid, format!("{PART_PATH_PREFIX}{id}/{name}?{query}")))
        })
        .collect()
}

async fn inline_part(
    State(state): State<WebmailState>,
    Path((id, index)): Path<(String, usize)>,
    signature: Result<Query<Signature>, QueryRejection>,
) -> Result<Response, WebmailError> {
    let Query(signature) = signature.map_err(|_| WebmailError::BadSignature)?;
    let id = parse_id(&id)?;
    let name = format!("inlines/{index}");
    if !state.signer.verify(&signature, id, &name, Utc::now()) {
        return Err(WebmailError::BadSignature);
    }
    let email = state.store.email(id).await?.ok_or(WebmailError::NotFound)?;
    super::downloads::serve(&state, &email, PartKind::Inline, index, None).await
}
