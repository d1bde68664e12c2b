//! HTTP surface: one router per resource, the shared layers applied here in one place.

mod attachments;
mod docs;
mod emails;
mod health;
mod liveness;
mod presenter;
mod send;
mod webhook;

pub use docs::ApiDoc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderValue, header};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::app::AppState;
use crate::error::ApiError;
use crate::security::webhook::require_json;
use crate::security::{client_ip, cors, guard};

/// Body limit on every route but the webhook, which has its own.
const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// Layers, innermost first: body limit; the security guard (webhook authenticity, per-IP
/// limits; it needs the route and the client IP); client-IP resolution; response headers;
/// CORS (preflights are answered before any limit counts them); tracing; panics.
pub fn router(state: AppState) -> Router {
    let max_webhook_bytes = state.settings.max_webhook_bytes;
    let security = state.security.clone();
    let trusted_proxies = security.trusted_proxies.clone();
    let cors = cors::layer(&state.settings.security.cors_origins);
    Router::new()
        .merge(health::router())
        .merge(emails::router())
        .merge(attachments::router())
        .merge(webhook::router(max_webhook_bytes).route_layer(from_fn(require_json)))
        .merge(liveness::router())
        .merge(docs::router())
        .merge(send::router())
        .fallback(|| async { ApiError::NotFound("Endpoint not found") })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(DEFAULT_BODY_LIMIT))
        .layer(from_fn_with_state(security, guard::guard))
        .layer(from_fn_with_state(
            trusted_proxies,
            client_ip::resolve_layer,
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(cors)
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(CatchPanicLayer::custom(|_| panic_response()))
        .with_state(state)
}

/// Names the route template, never the raw path, which may carry secrets or names;
/// `client_ip` is filled in once resolved.
fn request_span(request: &Request) -> tracing::Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str)
        .unwrap_or("unmatched");
    tracing::info_span!(
        "request",
        method = %request.method(),
        route,
        client_ip = tracing::field::Empty
    )
}

fn panic_response() -> Response {
    ApiError::Internal("a handler panicked".into()).into_response()
}
