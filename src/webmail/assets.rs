//! The stylesheet and script, compiled into the binary: nothing to deploy beside it.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use super::state::WebmailState;

const CSS: &str = include_str!("static/app.css");
const JS: &str = include_str!("static/app.js");

pub fn router() -> Router<WebmailState> {
    Router::new()
        .route(
            "/ui/static/app.css",
            get(|| async { asset("text/css; charset=utf-8", CSS) }),
        )
        .route(
            "/ui/static/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", JS) }),
        )
}

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // An hour: a new binary's assets are picked up soon after an upgrade.
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
}
