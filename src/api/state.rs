//! `AppState`: what every handler may reach, built by `app` and shared by the routers.

use std::sync::Arc;

use axum::extract::FromRef;

use crate::config::Settings;
use crate::outbound::SendService;
use crate::security::Security;
use crate::security::auth::ApiKeys;
use crate::store::Store;
use crate::store::feed::ChangeFeed;

/// What every handler may reach.
#[derive(Clone)]
pub struct AppState {
    /// Where mail is kept.
    pub store: Arc<dyn Store>,
    /// The accepted API keys (as digests).
    pub api_keys: Arc<ApiKeys>,
    /// The validated settings the server started with.
    pub settings: Arc<Settings>,
    /// Client-IP resolution, rate limits, lockouts, webhook authenticity (in memory).
    pub security: Arc<Security>,
    /// The send API: checks, limits and the outbox.
    pub outbound: Arc<SendService>,
    /// The change log's end, for event streams.
    pub feed: Arc<ChangeFeed>,
}

impl FromRef<AppState> for Arc<Security> {
    fn from_ref(state: &AppState) -> Self {
        state.security.clone()
    }
}

impl FromRef<AppState> for Arc<dyn Store> {
    fn from_ref(state: &AppState) -> Self {
        state.store.clone()
    }
}

impl FromRef<AppState> for Arc<ApiKeys> {
    fn from_ref(state: &AppState) -> Self {
        state.api_keys.clone()
    }
}
