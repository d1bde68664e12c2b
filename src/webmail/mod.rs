//! The browser UI on its own listener (DESIGN §8): server-rendered pages from
//! compile-time templates, a little plain JavaScript, its own session auth.
//!
//! One file per page; the layers (security headers, client IP, session + CSRF) are
//! applied here, in one visible place. Pages use the store's use cases, never SQL.

mod access;
mod actions;
mod admin;
mod assets;
mod auth_results;
mod body;
mod chrome;
mod counts;
mod csrf;
mod downloads;
mod error;
mod form;
mod listing;
mod live;
mod login;
mod mailbox;
mod password;
mod sanitize;
mod session;
mod setup;
mod signing;
mod state;
mod thread;
mod view;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::middleware::from_fn_with_state;
use axum::routing::get;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

pub use setup::SetupLink;
pub use signing::Signer;
pub use state::WebmailState;

use crate::security::client_ip;

/// Every page's policy: scripts and styles only from the binary's own assets, frames
/// only of our own body route, never framed itself.
const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self'; frame-src 'self'; object-src 'none'; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'self'";

/// Forms are small; the admin page's is the largest.
const BODY_LIMIT: usize = 64 * 1024;

/// Layers, innermost first: body limit; session + CSRF (needs the client IP for the
/// log only); client-IP resolution; the security headers every response carries
/// (a route that sets its own CSP, the body frame's, keeps it).
pub fn router(state: WebmailState) -> Router {
    let trusted = state.trusted_proxies.clone();
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .merge(login::router())
        .merge(setup::router())
        .merge(mailbox::router())
        .merge(view::router())
        .merge(actions::router())
        .merge(body::router())
        .merge(live::router())
        .merge(downloads::router())
        .merge(password::router())
        .merge(admin::router())
        .merge(assets::router())
        .fallback(|| async { error::WebmailError::NotFound })
        .method_not_allowed_fallback(|| async { error::WebmailError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(from_fn_with_state(state.clone(), session::load))
        .layer(from_fn_with_state(trusted, client_ip::resolve_layer))
        .layer(header_layer(header::CONTENT_SECURITY_POLICY, PAGE_CSP))
        .layer(header_layer(header::X_FRAME_OPTIONS, "DENY"))
        .layer(header_layer(header::REFERRER_POLICY, "no-referrer"))
        .layer(header_layer(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        // Mail must not come back from the cache (or the back button) after logout.
        .layer(header_layer(header::CACHE_CONTROL, "no-store"))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .with_state(state)
}

/// Names the route template, never the raw path (it carries ids and signatures).
fn request_span(request: &axum::extract::Request) -> tracing::Span {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(axum::extract::MatchedPath::as_str)
        .unwrap_or("unmatched");
    tracing::info_span!(
        "webmail",
        method = %request.method(),
        route,
        client_ip = tracing::field::Empty
    )
}

fn header_layer(
    name: header::HeaderName,
    value: &'static str,
) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
}

/// Opens the webmail's stores on the migrated database, and its signing key.
pub async fn build(
    store: Arc<dyn crate::store::Store>,
    feed: Arc<crate::store::feed::ChangeFeed>,
    settings: &crate::config::Settings,
    shared: Option<&crate::security::shared::SharedState>,
    setup_base_url: &str,
) -> Result<WebmailState, error::StartError> {
    let url = settings.database_url.expose();
    let users = crate::store::open_users(url).await?;
    let sessions = crate::store::open_sessions(url).await?;
    let key = sessions.signing_key(&Signer::new_key()).await?;
    let signer = Signer::from_hex(&key).ok_or(error::StartError::SigningKey)?;
    let setup = SetupLink::prepare(users.as_ref(), &settings.data_dir, setup_base_url).await?;
    Ok(WebmailState {
        store,
        users,
        sessions,
        settings: Arc::new(settings.webmail.clone()),
        lockout: Arc::new(crate::security::limiter::Lockouts::new(
            "webmail",
            settings.security.lockout,
            settings.security.max_clients,
            shared,
        )),
        trusted_proxies: Arc::new(settings.security.trusted_proxies.clone()),
        signer: Arc::new(signer),
        setup: Arc::new(setup),
        counts: Arc::default(),
        feed,
        streams: crate::security::streams::StreamSlots::new(settings.security.events_max_streams),
    })
}
