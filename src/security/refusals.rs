//! The security WARN log, in one place and de-duplicated: the first refusal of a kind from
//! a client is logged at once; repeats within the next minute are only counted, and the
//! next line for that client and kind says how many were left out
//! (`… (37 more refusals from this client in the last minute)`). Counts that no later
//! line carries are logged on their own by the next sweep, so none is lost (short of the
//! table's cap or a restart).
//!
//! A client hammering a refused route thus costs a few lines a minute, not one per
//! request. Clients are keyed like the limits (IPv6 per /64); the table has the same cap.

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::rate_limit::bucket;
use super::table::ClientTable;

/// How long repeats of one refusal from one client are only counted.
pub const QUIET_FOR: Duration = Duration::from_secs(60);

/// What was refused; each kind is de-duplicated on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    MissingKey,
    TwoAuthorizationHeaders,
    InvalidKey,
    /// The failure that started a lockout.
    LockedOut,
    /// A request while locked out.
    WhileLockedOut,
    RateLimited,
    WebhookAddressNotAllowed,
    WebhookWrongSecret,
}

impl Refusal {
    fn message(self) -> &'static str {
        match self {
            Refusal::MissingKey => "request without an API key",
            Refusal::TwoAuthorizationHeaders => "request with two Authorization headers",
            Refusal::InvalidKey => "invalid API key",
            Refusal::LockedOut => "too many failed authentications: locked out",
            Refusal::WhileLockedOut => "request from a locked-out client",
            Refusal::RateLimited => "rate limit exceeded",
            Refusal::WebhookAddressNotAllowed => {
                "webhook from an address not in WEBHOOK_ALLOWED_IPS"
            }
            Refusal::WebhookWrongSecret => "webhook without the right WEBHOOK_SECRET",
        }
    }
}

struct Tally {
    /// When the last line for this client and kind was written.
    logged_at: Instant,
    /// Refusals since then that were not logged.
    quiet: u64,
    /// The route of the last one left out, for the closing line.
    route: String,
}

struct Tallies {
    table: ClientTable<(IpAddr, Refusal), Tally>,
    last_sweep: Instant,
}

pub struct RefusalLog {
    tallies: Mutex<Tallies>,
}

impl RefusalLog {
    /// Remembers at most `max_clients` (client, kind) pairs.
    pub fn new(max_clients: usize) -> Self {
        Self {
            tallies: Mutex::new(Tallies {
                table: ClientTable::new(max_clients),
                last_sweep: Instant::now(),
            }),
        }
    }

    /// Logs a refusal at WARN, unless the same client had one of this kind logged within
    /// the last minute; `detail` follows the message (`rate limit exceeded: 30 per 1 minute`).
    pub fn warn(&self, ip: Option<IpAddr>, route: &str, kind: Refusal, detail: Option<&str>) {
        let Some(ip) = ip else {
            write(None, route, kind, detail, 0);
            return;
        };
        if let Some(left_out) = self.admit(ip, route, kind, Instant::now()) {
            write(Some(ip), route, kind, detail, left_out);
        }
    }

    /// `Some(refusals left out since the last line)` when this one is to be logged.
    fn admit(&self, ip: IpAddr, route: &str, kind: Refusal, now: Instant) -> Option<u64> {
        let mut tallies = self.tallies.lock().unwrap_or_else(|e| e.into_inner());
        if now.saturating_duration_since(tallies.last_sweep) >= QUIET_FOR {
            tallies.sweep(now);
        }
        let mut fresh = false;
        let tally = tallies.table.touch((bucket(ip), kind), now, || {
            fresh = true;
            Tally {
                logged_at: now,
                quiet: 0,
                route: String::new(),
            }
        });
        if fresh {
            return Some(0);
        }
        if now.saturating_duration_since(tally.logged_at) >= QUIET_FOR {
            tally.logged_at = now;
            return Some(std::mem::take(&mut tally.quiet));
        }
        tally.quiet += 1;
        if tally.route != route {
            route.clone_into(&mut tally.route);
        }
        None
    }

    /// How many (client, kind) pairs are remembered (for tests and metrics).
    pub fn len(&self) -> usize {
        let tallies = self.tallies.lock().unwrap_or_else(|e| e.into_inner());
        tallies.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Tallies {
    /// Forgets pairs with no line for two minutes (a repeat in the second minute gets a
    /// line that carries the count), first logging the refusals they left out.
    fn sweep(&mut self, now: Instant) {
        self.table.retain(|(ip, kind), tally| {
            if now.saturating_duration_since(tally.logged_at) < 2 * QUIET_FOR {
                return true;
            }
            if tally.quiet > 0 {
                tracing::warn!(
                    client_ip = %ip,
                    route = tally.route.as_str(),
                    "{}: {} more refusals from this client in the last minute",
                    kind.message(),
                    tally.quiet
                );
            }
            false
        });
        self.last_sweep = now;
    }
}

fn write(ip: Option<IpAddr>, route: &str, kind: Refusal, detail: Option<&str>, left_out: u64) {
    let client_ip = ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    let detail = detail.map(|d| format!(": {d}")).unwrap_or_default();
    let more = if left_out > 0 {
        format!(" ({left_out} more refusals from this client in the last minute)")
    } else {
        String::new()
    };
    tracing::warn!(client_ip = %client_ip, route, "{}{detail}{more}", kind.message());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn one_line_per_client_and_kind_per_minute_with_the_count_left_out() {
        let log = RefusalLog::new(1000);
        let start = Instant::now();
        let client = ip("203.0.113.7");
        let at = |ms: u64| start + Duration::from_millis(ms);
        assert_eq!(log.admit(client, "/a", Refusal::MissingKey, at(0)), Some(0));
        for n in 1..=37 {
            assert_eq!(log.admit(client, "/a", Refusal::MissingKey, at(n)), None);
        }
        // Another kind, and another client, are logged on their own.
        assert_eq!(
            log.admit(client, "/a", Refusal::InvalidKey, at(40)),
            Some(0)
        );
        let other = ip("203.0.113.8");
        assert_eq!(log.admit(other, "/a", Refusal::MissingKey, at(40)), Some(0));
        // A minute after the last line, the next one carries the count.
        assert_eq!(
            log.admit(client, "/a", Refusal::MissingKey, at(60_000)),
            Some(37)
        );
        assert_eq!(
            log.admit(client, "/a", Refusal::MissingKey, at(60_001)),
            None
        );
    }

    #[test]
    fn quiet_pairs_are_forgotten_and_the_table_is_capped() {
        let log = RefusalLog::new(100);
        let start = Instant::now();
        for n in 0..1000u32 {
            log.admit(
                IpAddr::from(n.to_be_bytes()),
                "/",
                Refusal::RateLimited,
                start,
            );
            assert!(log.len() <= 100);
        }
        log.admit(
            ip("192.0.2.1"),
            "/",
            Refusal::RateLimited,
            start + 2 * QUIET_FOR,
        );
        assert_eq!(log.len(), 1);
    }
}
