//! `GET /metrics` in the Prometheus text format, for the listener on `METRICS_PORT` only:
//! never routed on the API's port, so it needs no key. Gauges that take a query (the
//! outbox) or a lock (the security tables) are refreshed when scraped, so an instance
//! nobody scrapes pays nothing for them.

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use chrono::Utc;

use crate::api::AppState;
use crate::error::ApiError;
use crate::telemetry::{error_chain, metrics};

/// The exposition format's content type (text format 0.0.4).
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .fallback(|| async { ApiError::NotFound("Endpoint not found") })
        .with_state(state)
}

async fn scrape(State(state): State<AppState>) -> impl IntoResponse {
    refresh(&state).await;
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], metrics::render())
}

/// Sets the gauges that are read rather than counted.
async fn refresh(state: &AppState) {
    let outbox = &state.outbound.outbox;
    // Before the outbox query, which would otherwise count itself as a connection in use.
    let security = &state.security;
    let limits = security.shared.as_ref().map(|s| s.store.pool_usage());
    let pools = state.store.pool_usage().into_iter().chain(limits);
    for pool in pools.chain([outbox.pool_usage()]) {
        metrics::db_pool(pool.name, pool.open, pool.idle, pool.max);
    }
    let (limited, locked) = security.clients().await;
    metrics::security_tables(limited, locked);
    metrics::event_streams(security.streams.open());
    match outbox.counts().await {
        Ok(counts) => {
            for (status, rows) in counts.by_status {
                metrics::outbox_emails(status, rows);
            }
            let waited = counts
                .oldest_waiting
                .and_then(|accepted| (Utc::now() - accepted).to_std().ok());
            metrics::outbox_oldest_queued(waited.unwrap_or_default());
        }
        // The other metrics are still worth a scrape; these gauges keep their last values.
        Err(error) => {
            tracing::warn!(error = %error_chain(&error), "counting the outbox for /metrics failed")
        }
    }
}
