//! Who may call what: API keys, client addresses, limits, lockouts, webhook authenticity.
//!
//! Counters and lockouts live in memory on SQLite (one instance owns the database) and
//! in the database on PostgreSQL, shared by every instance (`limiter`, `shared`).

pub mod accounts;
pub mod auth;
pub mod client_ip;
pub mod cors;
pub mod guard;
pub mod limiter;
pub mod lockout;
pub mod passwords;
pub mod rate_limit;
pub mod refusals;
pub mod shared;
pub mod streams;
pub mod table;
pub mod webhook;

use std::sync::Arc;

use crate::secret::Secret;
use client_ip::IpSet;
use cors::CorsOrigins;
use limiter::{Limiter, Lockouts};
use lockout::LockoutPolicy;
use rate_limit::RateLimits;
use refusals::RefusalLog;
use shared::SharedState;
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
    pub limiter: Limiter,
    /// Failed API-key counts and lockouts per IP.
    pub lockout: Lockouts,
    /// The database that keeps both when several instances share it (PostgreSQL).
    pub shared: Option<SharedState>,
    /// Who may deliver to the webhook.
    pub webhook: WebhookPolicy,
    /// The security WARN log, one line per client and kind of refusal per minute.
    pub refusals: RefusalLog,
    /// Open event streams per client IP.
    pub streams: StreamSlots,
}

impl Security {
    /// The checks, with their state in `shared` when given, else in memory.
    pub fn new(settings: &SecuritySettings, shared: Option<SharedState>) -> Self {
        let max = settings.max_clients;
        Self {
            trusted_proxies: Arc::new(settings.trusted_proxies.clone()),
            limiter: Limiter::new(settings.rate_limits.clone(), max, shared.as_ref()),
            lockout: Lockouts::new("api", settings.lockout, max, shared.as_ref()),
            shared,
            webhook: WebhookPolicy::new(
                settings.webhook_secret.as_ref(),
                settings.webhook_allowed_ips.clone(),
            ),
            refusals: RefusalLog::new(settings.max_clients),
            streams: StreamSlots::new(settings.events_max_streams),
        }
    }
}

impl Security {
    /// Clients remembered by the rate limits and by the API lockout: the database's rows
    /// when shared (memory holds only what an outage left there), else this instance's.
    pub async fn clients(&self) -> (usize, usize) {
        let local = (self.limiter.local_clients(), self.lockout.local_clients());
        let Some(shared) = &self.shared else {
            return local;
        };
        match shared.store.rows().await {
            Ok((limited, locked)) => (
                usize::try_from(limited).unwrap_or(usize::MAX),
                usize::try_from(locked).unwrap_or(usize::MAX),
            ),
            Err(_) => local,
        }
    }
}
