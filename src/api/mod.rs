//! HTTP surface: one router per resource, the shared layers applied here in one place.

mod attachments;
mod docs;
mod emails;
mod events;
mod health;
mod liveness;
mod mail_state;
pub mod metrics;
pub(crate) mod presenter;
mod raw;
mod send;
mod state;
mod webhook;

pub use docs::ApiDoc;
pub use state::AppState;

use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
use crate::security::webhook::require_json;
use crate::security::{client_ip, cors, guard};
use crate::telemetry::metrics as telemetry;

/// Body limit on every route but the webhook, which has its own.
const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// Layers, innermost first: body limit; the security guard (webhook authenticity, per-IP
/// limits; it needs the route and the client IP); client-IP resolution; response headers;
/// CORS (preflights are answered before any limit counts them); tracing; panics; the
/// request count (so it sees every response, a panic's 500 included).
pub fn router(state: AppState) -> Router {
    let webhook = webhook::router(&state.settings.webhook);
    let request_timeout = state.settings.http.request_timeout;
    let security = state.security.clone();
    let trusted_proxies = security.trusted_proxies.clone();
    let cors = cors::layer(&state.settings.security.cors_origins);
    Router::new()
        .merge(health::router())
        .merge(emails::router())
        .merge(mail_state::router())
        .merge(events::router())
        .merge(raw::router())
        .merge(attachments::router())
        .merge(liveness::router())
        .merge(docs::router())
        .merge(send::router())
        // The webhook's body has its own rate rule, so it is outside the request timeout.
        .layer(from_fn_with_state(request_timeout, respond_within))
        .merge(webhook.route_layer(from_fn(require_json)))
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
        .layer(from_fn(count_request))
        .with_state(state)
}

/// Answers 408 when a handler has not started its response in time; a streaming body
/// (a download, an events stream) is not cut once it has started.
async fn respond_within(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::RequestTimeout(format!(
            "no response within {} s (HTTP_REQUEST_TIMEOUT_SECS)",
            limit.as_secs()
        ))
        .into_response(),
    }
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

/// Counts a response by method, route template (never the raw path) and status.
async fn count_request(request: Request, next: Next) -> Response {
    let method = method_label(request.method());
    let route = request.extensions().get::<MatchedPath>().cloned();
    let response = next.run(request).await;
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    telemetry::http_request(method, route, response.status().as_u16());
    response
}

/// The standard methods by name; any other (clients may invent them) as `other`, so
/// the label stays a small set.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

fn panic_response() -> Response {
    ApiError::Internal("a handler panicked".into()).into_response()
}
