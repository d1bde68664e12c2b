//! Brute-force lockout: too many failed authentications from one client IP within a window
//! lock that IP out for a while, valid key or not. A success clears the count.
//!
//! Clients are keyed like the rate limits (IPv6 per /64), and the state lives in memory.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::rate_limit::bucket;

/// `LOCKOUT_MAX_FAILURES` (0 disables), `LOCKOUT_WINDOW_SECS`, `LOCKOUT_SECS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    pub max_failures: u32,
    pub window: Duration,
    pub duration: Duration,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            max_failures: 5,
            window: Duration::from_secs(300),
            duration: Duration::from_secs(900),
        }
    }
}

#[derive(Default)]
struct Client {
    failures: VecDeque<Instant>,
    locked_until: Option<Instant>,
}

struct Clients {
    map: HashMap<IpAddr, Client>,
    last_sweep: Instant,
}

/// How often clients with nothing left to remember are forgotten.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

pub struct Lockout {
    policy: LockoutPolicy,
    clients: Mutex<Clients>,
}

impl Lockout {
    pub fn new(policy: LockoutPolicy) -> Self {
        Self {
            policy,
            clients: Mutex::new(Clients {
                map: HashMap::new(),
                last_sweep: Instant::now(),
            }),
        }
    }

    /// `Err(time left)` while `ip` is locked out.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        match clients.map.get(&bucket(ip)).and_then(|c| c.locked_until) {
            Some(until) if until > now => Err(until - now),
            _ => Ok(()),
        }
    }

    /// Records a failed authentication; `true` when it locks the client out.
    pub fn fail(&self, ip: IpAddr, now: Instant) -> bool {
        if self.policy.max_failures == 0 {
            return false;
        }
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if now.saturating_duration_since(clients.last_sweep) >= SWEEP_EVERY {
            clients.sweep(&self.policy, now);
        }
        let client = clients.map.entry(bucket(ip)).or_default();
        if client.locked_until.is_some_and(|until| until > now) {
            return false;
        }
        client.locked_until = None;
        while client
            .failures
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= self.policy.window)
        {
            client.failures.pop_front();
        }
        client.failures.push_back(now);
        if client.failures.len() < self.policy.max_failures as usize {
            return false;
        }
        client.failures.clear();
        client.locked_until = Some(now + self.policy.duration);
        true
    }

    /// A successful authentication forgets the client's failures.
    pub fn succeed(&self, ip: IpAddr) {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients.map.remove(&bucket(ip));
    }

    /// Forgets clients whose failures and lockout have all expired.
    pub fn sweep(&self, now: Instant) {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients.sweep(&self.policy, now);
    }

    /// How many clients are remembered (for tests and metrics).
    pub fn tracked(&self) -> usize {
        let clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients.map.len()
    }
}

impl Clients {
    fn sweep(&mut self, policy: &LockoutPolicy, now: Instant) {
        self.map.retain(|_, client| {
            client.locked_until.is_some_and(|until| until > now)
                || client
                    .failures
                    .back()
                    .is_some_and(|t| now.saturating_duration_since(*t) < policy.window)
        });
        self.last_sweep = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lockout() -> Lockout {
        Lockout::new(LockoutPolicy::default())
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn five_failures_within_five_minutes_lock_out_for_fifteen() {
        let lockout = lockout();
        let start = Instant::now();
        let attacker = ip("203.0.113.7");
        for n in 0..4 {
            assert!(!lockout.fail(attacker, start + secs(n * 60)));
            assert_eq!(lockout.check(attacker, start + secs(n * 60)), Ok(()));
        }
        assert!(lockout.fail(attacker, start + secs(240)));
        assert_eq!(lockout.check(attacker, start + secs(240)), Err(secs(900)));
        assert_eq!(lockout.check(attacker, start + secs(1139)), Err(secs(1)));
        assert_eq!(lockout.check(ip("203.0.113.8"), start + secs(240)), Ok(()));
        assert_eq!(lockout.check(attacker, start + secs(1140)), Ok(()));
    }

    #[test]
    fn failures_older_than_the_window_do_not_count() {
        let lockout = lockout();
        let start = Instant::now();
        let client = ip("198.51.100.1");
        for n in 0..4 {
            lockout.fail(client, start + secs(n));
        }
        assert!(!lockout.fail(client, start + secs(301)));
        assert_eq!(lockout.check(client, start + secs(301)), Ok(()));
    }

    #[test]
    fn a_success_clears_the_count() {
        let lockout = lockout();
        let start = Instant::now();
        let client = ip("198.51.100.1");
        for _ in 0..4 {
            lockout.fail(client, start);
        }
        lockout.succeed(client);
        for _ in 0..4 {
            assert!(!lockout.fail(client, start));
        }
        assert_eq!(lockout.check(client, start), Ok(()));
    }

    #[test]
    fn zero_failures_disables_the_lockout() {
        let lockout = Lockout::new(LockoutPolicy {
            max_failures: 0,
            ..LockoutPolicy::default()
        });
        let now = Instant::now();
        for _ in 0..100 {
            assert!(!lockout.fail(ip("192.0.2.1"), now));
        }
        assert_eq!(lockout.check(ip("192.0.2.1"), now), Ok(()));
        assert_eq!(lockout.tracked(), 0);
    }

    #[test]
    fn expired_clients_are_forgotten() {
        let lockout = lockout();
        let start = Instant::now();
        for n in 0..1000u32 {
            lockout.fail(IpAddr::from(n.to_be_bytes()), start);
        }
        for _ in 0..5 {
            lockout.fail(ip("203.0.113.7"), start);
        }
        assert_eq!(lockout.tracked(), 1001);
        lockout.sweep(start + secs(300));
        assert_eq!(lockout.tracked(), 1);
        lockout.sweep(start + secs(900));
        assert_eq!(lockout.tracked(), 0);
    }
}
