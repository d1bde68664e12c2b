//! Who may call what: API keys, client addresses, limits, lockouts, webhook authenticity.
//!
//! All state (counters, lockouts) lives in memory, per instance.

pub mod accounts;
pub mod auth;
pub mod client_ip;
pub mod cors;
pub mod guard;
pub mod lockout;
pub mod passwords;
pub mod rate_limit;
pub mod refusals;
pub mod streams;
pub mod table;
pub mod webhook;

use std::sync::Arc;

use crate::secret::Secret;
use client_ip::IpSet;
use cors::CorsOrigins;
use lockout::{Lockout, LockoutPolicy};
use rate_limit::{RateLimiter, RateLimits};
use refusals::RefusalLog;
use streams::StreamSlots;
use webhook::WebhookPolicy;

/// What the security checks are configured with (read by `config`).
#[derive(Debug, Clone)]
pub struct SecuritySettings {
    /// `TRUSTED_PROXIES`: whose `X-Forwarded-For` is believed (default loopback).
    pub trusted_proxies: IpSet,
    /// `WEBHOOK_SECRET`: deliveries must come to `/webhook/<secret>`.
    pub webhook_secret: Option<Secret>,
    /// `WEBHOOK_ALLOWED_IPS`: only these addresses may deliver.
    pub webhook_allowed_ips: Option<IpSet>,
    /// `CORS_ORIGINS`.
    pub cors_origins: CorsOrigins,
    /// `RATE_LIMIT_*`.
    pub rate_limits: RateLimits,
    /// `LOCKOUT_*`.
    pub lockout: LockoutPolicy,
    /// `RATE_LIMIT_MAX_CLIENTS`: client IPs remembered per rate-limit policy and by the
    /// lockout; beyond it the least recently seen are forgotten.
    pub max_clients: usize,
    /// `EVENTS_MAX_STREAMS`: event streams one client IP may hold open.
    pub events_max_streams: usize,
}

/// The security state of one running instance.
pub struct Security {
    /// Whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Arc<IpSet>,
    /// Per-route, per-IP request counters.
    pub limiter: RateLimiter,
    /// Failed-authentication counts and lockouts per IP.
    pub lockout: Lockout,
    /// Who may deliver to the webhook.
    pub webhook: WebhookPolicy,
    /// The security WARN log, one line per client and kind of refusal per minute.
    pub refusals: RefusalLog,
    /// Open event streams per client IP.
    pub streams: StreamSlots,
}

impl Security {
    pub fn new(settings: &SecuritySettings) -> Self {
        Self {
            trusted_proxies: Arc::new(settings.trusted_proxies.clone()),
            limiter: RateLimiter::new(settings.rate_limits.clone(), settings.max_clients),
            lockout: Lockout::new(settings.lockout, settings.max_clients),
            webhook: WebhookPolicy::new(
                settings.webhook_secret.as_ref(),
                settings.webhook_allowed_ips.clone(),
            ),
            refusals: RefusalLog::new(settings.max_clients),
            streams: StreamSlots::new(settings.events_max_streams),
        }
    }
}
