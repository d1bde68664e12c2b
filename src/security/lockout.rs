//! Brute-force lockout: too many failed authentications from one client IP within a window
//! lock that IP out for a while, valid key or not. A success clears the count.
//!
//! Clients are keyed like the rate limits (IPv6 per /64), and the state lives in memory,
//! at most `RATE_LIMIT_MAX_CLIENTS` of them: the least recently seen are forgotten first,
//! and a locked-out client that keeps trying is seen on every try, so it stays locked.
//!
//! Periods are validated at startup (at most a year); the arithmetic is checked anyway, so
//! a lockout too long for the clock locks out for as long as it can rather than panicking
//! with the count already cleared (which would fail open).

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::rate_limit::bucket;
use super::table::ClientTable;

/// The longest `LOCKOUT_SECS` and `LOCKOUT_WINDOW_SECS` accepted: one year.
pub const MAX_PERIOD: Duration = Duration::from_secs(365 * 86_400);

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
    map: ClientTable<IpAddr, Client>,
    last_sweep: Instant,
}

/// How often clients with nothing left to remember are forgotten.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

pub struct Lockout {
    policy: LockoutPolicy,
    clients: Mutex<Clients>,
}

impl Lockout {
    /// Failure counts and lockouts for at most `max_clients` client IPs.
    pub fn new(policy: LockoutPolicy, max_clients: usize) -> Self {
        Self {
            policy,
            clients: Mutex::new(Clients {
                map: ClientTable::new(max_clients),
                last_sweep: Instant::now(),
            }),
        }
    }

    /// `Err(time left)` while `ip` is locked out.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        match clients
            .map
            .seen(&bucket(ip), now)
            .and_then(|c| c.locked_until)
        {
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
        let client = clients.map.touch(bucket(ip), now, Client::default);
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
        client.locked_until = Some(deadline(now, self.policy.duration));
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
    pub fn len(&self) -> usize {
        let clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `now + duration`, or as far as the clock goes if that is beyond it (never a panic).
fn deadline(now: Instant, duration: Duration) -> Instant {
    let mut step = duration;
    loop {
        if let Some(until) = now.checked_add(step) {
            return until;
        }
        step /= 2;
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
    use super::super::table::DEFAULT_MAX_CLIENTS;
    use super::*;

    fn lockout() -> Lockout {
        Lockout::new(LockoutPolicy::default(), DEFAULT_MAX_CLIENTS)
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
        let lockout = Lockout::new(
            LockoutPolicy {
                max_failures: 0,
                ..LockoutPolicy::default()
            },
            DEFAULT_MAX_CLIENTS,
        );
        let now = Instant::now();
        for _ in 0..100 {
            assert!(!lockout.fail(ip("192.0.2.1"), now));
        }
        assert_eq!(lockout.check(ip("192.0.2.1"), now), Ok(()));
        assert_eq!(lockout.len(), 0);
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
        assert_eq!(lockout.len(), 1001);
        lockout.sweep(start + secs(300));
        assert_eq!(lockout.len(), 1);
        lockout.sweep(start + secs(900));
        assert_eq!(lockout.len(), 0);
    }

    #[test]
    fn the_table_is_capped_and_a_locked_out_client_that_keeps_trying_stays_locked() {
        let lockout = Lockout::new(LockoutPolicy::default(), 1000);
        let start = Instant::now();
        let at = |n: u32| start + Duration::from_millis(n.into());
        let attacker = ip("203.0.113.7");
        for _ in 0..5 {
            lockout.fail(attacker, start);
        }
        for n in 0..5000u32 {
            lockout.fail(IpAddr::from((0x0a00_0000 + n).to_be_bytes()), at(n));
            if n % 100 == 0 {
                assert!(lockout.check(attacker, at(n)).is_err(), "{n}");
            }
            assert!(lockout.len() <= 1000, "{} clients after {n}", lockout.len());
        }
        assert!(lockout.check(attacker, at(5000)).is_err());
    }

    #[test]
    fn a_lockout_beyond_the_clock_still_locks_out() {
        let lockout = Lockout::new(
            LockoutPolicy {
                duration: Duration::MAX,
                window: Duration::MAX,
                ..LockoutPolicy::default()
            },
            DEFAULT_MAX_CLIENTS,
        );
        let now = Instant::now();
        let attacker = ip("203.0.113.7");
        for _ in 0..4 {
            assert!(!lockout.fail(attacker, now));
        }
        assert!(lockout.fail(attacker, now));
        assert!(lockout.check(attacker, now + secs(86_400 * 364)).is_err());
    }
}
