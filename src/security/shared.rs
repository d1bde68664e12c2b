//! The rate limits and lockouts of several instances, kept in the PostgreSQL database
//! they share (`store::limits`), with this instance's memory as the fallback.
//!
//! When the database does not answer a check within `CHECK_TIMEOUT`, the instance counts
//! in its own memory for `FALLBACK_FOR`, and then tries the database again. It fails
//! open to the limits of a single instance, neither closed nor unlimited: a limiter that
//! is down must not refuse mail (ImprovMX drops an email after three refused tries, and
//! the webhook would otherwise answer 429 while the mail tables may well be up), and an
//! outage must not give a client unlimited tries either. During the fallback each
//! instance counts from zero, so a client may get N per instance, and a lockout held in
//! the database is not seen; the breaker keeps an outage from costing every request the
//! timeout.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;

use super::lockout::{Lockout, LockoutPolicy};
use super::rate_limit::{Policy, Quota, RateLimiter, RateLimits, WindowState, bucket};
use crate::store::StoreError;
use crate::store::limits::{FailureRule, SharedLimits, Standing, WindowRule};
use crate::telemetry::error_chain;

/// How long a check waits for the database before this instance's memory answers.
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// How long the memory answers after the database failed a check.
const FALLBACK_FOR: Duration = Duration::from_secs(5);

/// How often rows with nothing left to remember are deleted.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// The database's limiter state and whether it is answering; one per instance, shared
/// by the rate limits and both lockouts.
#[derive(Clone)]
pub struct SharedState {
    pub store: Arc<SharedLimits>,
    fallback_until: Arc<Mutex<Option<Instant>>>,
}

impl SharedState {
    pub fn new(store: SharedLimits) -> Self {
        Self {
            store: Arc::new(store),
            fallback_until: Arc::default(),
        }
    }

    /// The database's answer, or `None` (after a warning) when this instance must
    /// answer from memory.
    async fn ask<T>(
        &self,
        what: &str,
        query: impl Future<Output = Result<T, StoreError>>,
    ) -> Option<T> {
        if self.falling_back() {
            return None;
        }
        let error = match tokio::time::timeout(CHECK_TIMEOUT, query).await {
            Ok(Ok(answer)) => return Some(answer),
            Ok(Err(error)) => error_chain(&error),
            Err(_) => format!("no answer within {CHECK_TIMEOUT:?}"),
        };
        let mut until = self
            .fallback_until
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // Concurrent checks fail together: one warning per outage period.
        if until.is_none_or(|t| t <= Instant::now()) {
            tracing::warn!(
                %error,
                what,
                "the shared rate limits are unavailable: this instance counts on its own for {FALLBACK_FOR:?}"
            );
        }
        *until = Some(Instant::now() + FALLBACK_FOR);
        None
    }

    fn falling_back(&self) -> bool {
        let until = self
            .fallback_until
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        until.is_some_and(|t| t > Instant::now())
    }

    /// Deletes expired rows, and clients beyond `max_clients` per limit, every minute,
    /// until aborted. Every instance does it; concurrent deletes of the same rows are
    /// harmless.
    pub async fn sweep_forever(self, max_clients: usize) {
        let mut every = tokio::time::interval(SWEEP_EVERY);
        loop {
            every.tick().await;
            if let Err(error) = self.store.sweep(Utc::now(), max_clients).await {
                tracing::debug!(error = %error_chain(&error), "sweeping the shared rate limits failed");
            }
        }
    }
}

/// The key a client is counted under in the database: its address, or its IPv6 /64.
fn client_key(ip: IpAddr) -> String {
    bucket(ip).to_string()
}

/// Per-IP request limits counted in the database.
pub struct SharedLimiter {
    shared: SharedState,
    limits: RateLimits,
    local: RateLimiter,
}

impl SharedLimiter {
    pub fn new(shared: SharedState, limits: RateLimits, max_clients: usize) -> Self {
        Self {
            shared,
            local: RateLimiter::new(limits.clone(), max_clients),
            limits,
        }
    }

    pub async fn check(&self, policy: Policy, ip: IpAddr) -> Option<Quota> {
        let limits = self.limits.of(policy);
        if limits.is_empty() {
            return None;
        }
        let rules: Vec<WindowRule> = limits
            .iter()
            .map(|l| WindowRule {
                length: l.window(),
                limit: l.count,
            })
            .collect();
        let now = Utc::now();
        let key = client_key(ip);
        let query = self
            .shared
            .store
            .count_request(policy.name(), &key, &rules, now);
        let Some(counted) = self.shared.ask("rate limit", query).await else {
            return self.local.check(policy, ip, Instant::now());
        };
        let states = counted.windows.iter().zip(limits).map(|(w, l)| {
            let end = w.start + chrono::Duration::from_std(l.window()).unwrap_or_default();
            WindowState {
                count: w.count,
                reset: (end - now).to_std().unwrap_or_default(),
            }
        });
        Some(Quota::of(policy, limits, states, !counted.counted))
    }

    /// Clients counted in memory while the database was away.
    pub fn local_clients(&self) -> usize {
        self.local.len()
    }
}

/// Failed authentications and lockouts kept in the database, per scope.
pub struct SharedLockout {
    shared: SharedState,
    /// `api` or `webmail`: the two count apart.
    scope: &'static str,
    policy: LockoutPolicy,
    local: Lockout,
}

impl SharedLockout {
    pub fn new(
        shared: SharedState,
        scope: &'static str,
        policy: LockoutPolicy,
        max_clients: usize,
    ) -> Self {
        Self {
            shared,
            scope,
            policy,
            local: Lockout::new(policy, max_clients),
        }
    }

    /// `Err(time left)` while locked out; else whether failures are recorded.
    pub async fn check(&self, ip: IpAddr) -> Result<bool, Duration> {
        if self.policy.max_failures == 0 {
            return Ok(false);
        }
        let key = client_key(ip);
        let query = self.shared.store.standing(self.scope, &key);
        match self.shared.ask("lockout", query).await {
            None => self.local.check(ip, Instant::now()).map(|()| true),
            Some(Standing::Clean) => Ok(false),
            Some(Standing::Recorded { locked_until }) => match locked_until {
                Some(until) if until > Utc::now() => {
                    Err((until - Utc::now()).to_std().unwrap_or_default())
                }
                _ => Ok(true),
            },
        }
    }

    /// Records a failed authentication; `true` when it locks the client out.
    pub async fn fail(&self, ip: IpAddr) -> bool {
        if self.policy.max_failures == 0 {
            return false;
        }
        let rule = FailureRule {
            max_failures: self.policy.max_failures,
            window: self.policy.window,
            lockout: self.policy.duration,
        };
        let key = client_key(ip);
        let query = self
            .shared
            .store
            .record_failure(self.scope, &key, rule, Utc::now());
        match self.shared.ask("lockout", query).await {
            Some(locked) => locked,
            None => self.local.fail(ip, Instant::now()),
        }
    }

    /// A successful authentication forgets the client's failures.
    pub async fn succeed(&self, ip: IpAddr) {
        self.local.succeed(ip);
        let key = client_key(ip);
        let query = self
            .shared
            .store
            .clear_failures(self.scope, &key, Utc::now());
        let _ = self.shared.ask("lockout", query).await;
    }

    /// Clients remembered in memory while the database was away.
    pub fn local_clients(&self) -> usize {
        self.local.len()
    }
}
