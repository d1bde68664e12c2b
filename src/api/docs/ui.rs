//! The reference at `/docs` (Swagger UI, bundled in the binary) and `/openapi.json`.
//!
//! `/docs` answers 200 with the page itself, so `curl …/docs` gets HTML rather than an
//! empty redirect. The vendored `index.html` loads its assets relative to `/docs/`, which
//! would break at `/docs`; our own page (`index.html` beside this file) names them relative
//! to `/docs` instead (`docs/swagger-ui.css`, so a path prefix in a proxy keeps working),
//! and `/docs/` redirects to `/docs`.
//!
//! The pages run under a strict CSP. Swagger UI needs no inline script: its bundles and its
//! initializer (`swagger-initializer.js`, with our settings filled in) are files of their
//! own, so `script-src 'self'` is enough. Its bundle sets one inline style attribute,
//! allowed by its hash alone (`'unsafe-hashes'` applies the hash to attributes; no other
//! inline style passes). `img-src data:` is for the icons inlined in its stylesheet;
//! `connect-src 'self'` lets it fetch the spec and "Try it out". Nobody may frame the
//! pages (`frame-ancestors 'none'`, and `X-Frame-Options: DENY` for old browsers).
//! Checked with headless Chromium on Swagger UI 5.32.6: no CSP violation in the console;
//! re-check (`--enable-logging=stderr`) when utoipa-swagger-ui updates the bundle.

use std::borrow::Cow;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Extension, Json};
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa::openapi::OpenApi as OpenApiDocument;
use utoipa_swagger_ui::Config;

use crate::api::AppState;
use crate::error::ApiError;

/// The page at `/docs`.
const PAGE: &str = include_str!("index.html");

/// The policy of every `/docs` response.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
style-src 'self' 'unsafe-hashes' 'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='; img-src 'self' data:; font-src 'self'; connect-src 'self'; \
base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// `/docs`, `/docs/`, `/docs/<asset>` (under the CSP) and `/openapi.json`; the Swagger UI
/// validator badge (which calls out to swagger.io) is off.
pub(super) fn router(spec: OpenApiDocument) -> Router<AppState> {
    let config = Arc::new(Config::new(["/openapi.json"]).validator_url("none"));
    let pages = Router::new()
        .route("/docs", get(page))
        .route("/docs/", get(to_page))
        .route("/docs/{file}", get(asset))
        .layer(Extension(config))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ));
    let spec = Router::new()
        .route("/openapi.json", get(openapi_json))
        .layer(Extension(Arc::new(spec)));
    pages.merge(spec)
}

/// The interactive API reference (Swagger UI).
#[utoipa::path(
    get,
    path = "/docs",
    tag = "docs",
    responses((status = 200, description = "The HTML page", content_type = "text/html", body = String))
)]
pub(super) async fn page() -> Html<&'static str> {
    Html(PAGE)
}

/// The old address of the reference: redirects to `/docs`.
#[utoipa::path(
    get,
    path = "/docs/",
    tag = "docs",
    responses((status = 308, description = "Redirect to `/docs`", headers(("Location" = String))))
)]
pub(super) async fn to_page() -> Redirect {
    Redirect::permanent("/docs")
}

/// A file of the bundled Swagger UI (`swagger-ui.css`, `swagger-ui-bundle.js`, …).
#[utoipa::path(
    get,
    path = "/docs/{file}",
    tag = "docs",
    params(("file" = String, Path, description = "The file name")),
    responses(
        (status = 200, description = "The file, with its type"),
        (status = 404, description = "No such file", body = super::ErrorBody),
    )
)]
pub(super) async fn asset(
    file: Result<Path<String>, PathRejection>,
    Extension(config): Extension<Arc<Config<'static>>>,
) -> Result<Response, ApiError> {
    let file = file?.0;
    let found = utoipa_swagger_ui::serve(&file, config)
        .map_err(|e| ApiError::Internal(format!("Swagger UI asset {file}: {e}")))?
        .ok_or(ApiError::NotFound("Endpoint not found"))?;
    let bytes = match found.bytes {
        Cow::Borrowed(bytes) => Bytes::from_static(bytes),
        Cow::Owned(bytes) => Bytes::from(bytes),
    };
    let content_type = HeaderValue::from_str(&found.content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let mut response = ([(header::CONTENT_TYPE, content_type)], bytes).into_response();
    if found.gzpipped {
        response
            .headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    Ok(response)
}

/// This document (OpenAPI 3.1).
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "docs",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object))
)]
pub(super) async fn openapi_json(
    Extension(spec): Extension<Arc<OpenApiDocument>>,
) -> Json<Arc<OpenApiDocument>> {
    Json(spec)
}
