//! The per-IP limits and the lockouts as the handlers use them, whichever keeps them: this
//! instance's memory (SQLite: one instance owns the database) or the PostgreSQL database
//! that every instance shares (`shared`). The checks are async for the database's sake.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::lockout::{Lockout, LockoutPolicy};
use super::rate_limit::{Policy, Quota, RateLimiter, RateLimits};
use super::shared::{SharedLimiter, SharedLockout, SharedState};

/// Per-route, per-IP request counters.
pub enum Limiter {
    Memory(RateLimiter),
    Shared(SharedLimiter),
}

impl Limiter {
    /// In the database when `shared` is given, else in memory.
    pub fn new(limits: RateLimits, max_clients: usize, shared: Option<&SharedState>) -> Self {
        match shared {
            Some(shared) => {
                Limiter::Shared(SharedLimiter::new(shared.clone(), limits, max_clients))
            }
            None => Limiter::Memory(RateLimiter::new(limits, max_clients)),
        }
    }

    /// Counts one request by `ip` against `policy`, unless a window is full;
    /// `None` when the policy has no limits (`off`).
    pub async fn check(&self, policy: Policy, ip: IpAddr) -> Option<Quota> {
        match self {
            Limiter::Memory(limiter) => limiter.check(policy, ip, Instant::now()),
            Limiter::Shared(limiter) => limiter.check(policy, ip).await,
        }
    }

    /// Clients held in this instance's memory (for the metrics).
    pub fn local_clients(&self) -> usize {
        match self {
            Limiter::Memory(limiter) => limiter.len(),
            Limiter::Shared(limiter) => limiter.local_clients(),
        }
    }
}

/// What a lockout check found about a client that is not locked out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Admitted {
    /// Failures are recorded, so that a success has something to clear; when there are
    /// none, a success costs the shared store nothing.
    recorded: bool,
}

/// Failed-authentication counts and lockouts per IP.
pub enum Lockouts {
    Memory(Lockout),
    Shared(SharedLockout),
}

impl Lockouts {
    /// In the database when `shared` is given (`scope` names these counters there),
    /// else in memory.
    pub fn new(
        scope: &'static str,
        policy: LockoutPolicy,
        max_clients: usize,
        shared: Option<&SharedState>,
    ) -> Self {
        match shared {
            Some(shared) => Lockouts::Shared(SharedLockout::new(
                shared.clone(),
                scope,
                policy,
                max_clients,
            )),
            None => Lockouts::Memory(Lockout::new(policy, max_clients)),
        }
    }

    /// `Err(time left)` while `ip` is locked out.
    pub async fn check(&self, ip: IpAddr) -> Result<Admitted, Duration> {
        let recorded = match self {
            Lockouts::Memory(lockout) => lockout.check(ip, Instant::now()).map(|()| true),
            Lockouts::Shared(lockout) => lockout.check(ip).await,
        }?;
        Ok(Admitted { recorded })
    }

    /// Records a failed authentication; `true` when it locks the client out.
    pub async fn fail(&self, ip: IpAddr) -> bool {
        match self {
            Lockouts::Memory(lockout) => lockout.fail(ip, Instant::now()),
            Lockouts::Shared(lockout) => lockout.fail(ip).await,
        }
    }

    /// A successful authentication forgets the failures `check` found.
    pub async fn succeed(&self, ip: IpAddr, admitted: Admitted) {
        if !admitted.recorded {
            return;
        }
        match self {
            Lockouts::Memory(lockout) => lockout.succeed(ip),
            Lockouts::Shared(lockout) => lockout.succeed(ip).await,
        }
    }

    /// Clients held in this instance's memory (for the metrics).
    pub fn local_clients(&self) -> usize {
        match self {
            Lockouts::Memory(lockout) => lockout.len(),
            Lockouts::Shared(lockout) => lockout.local_clients(),
        }
    }
}
