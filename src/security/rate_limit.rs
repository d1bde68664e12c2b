//! Per-client-IP request limits: the policy per route, in one place, and an atomic counter.
//!
//! Each policy holds one or more fixed windows (`30/minute`, `50/hour,200/day`), anchored
//! at a client's first request. A request passes only if every window has room, and then
//! counts in all of them; check and count happen under one lock, so concurrent requests
//! at the boundary never overshoot. IPv6 clients are counted per /64, the block a single
//! subscriber usually holds. Expired buckets are swept, so memory follows active clients,
//! and each policy's table is capped (`RATE_LIMIT_MAX_CLIENTS`, least recently seen out
//! first), so many addresses within one window cannot grow it without bound.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::table::ClientTable;

/// Which limits a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Policy {
    Webhook,
    Health,
    Docs,
    List,
    Get,
    Attachment,
    /// Changes to stored mail: `PATCH` and `DELETE /emails/<id>`, `POST /emails/bulk`.
    Modify,
    /// Every route without its own policy.
    Global,
}

impl Policy {
    pub const ALL: [Policy; 8] = [
        Policy::Webhook,
        Policy::Health,
        Policy::Docs,
        Policy::List,
        Policy::Get,
        Policy::Attachment,
        Policy::Modify,
        Policy::Global,
    ];

    /// The environment variable that overrides the default.
    pub fn variable(self) -> &'static str {
        match self {
            Policy::Webhook => "RATE_LIMIT_WEBHOOK",
            Policy::Health => "RATE_LIMIT_HEALTH",
            Policy::Docs => "RATE_LIMIT_DOCS",
            Policy::List => "RATE_LIMIT_LIST",
            Policy::Get => "RATE_LIMIT_GET",
            Policy::Attachment => "RATE_LIMIT_ATTACHMENT",
            Policy::Modify => "RATE_LIMIT_MODIFY",
            Policy::Global => "RATE_LIMIT_GLOBAL",
        }
    }

    /// The limits of the service mailroom replaces.
    pub fn default_limits(self) -> &'static str {
        match self {
            Policy::Webhook => "200/minute",
            Policy::Health => "30/minute",
            Policy::Docs => "60/minute",
            Policy::List => "20/minute",
            Policy::Get => "30/minute",
            Policy::Attachment => "10/minute",
            Policy::Modify => "60/minute",
            Policy::Global => "50/hour,200/day",
        }
    }

    /// The policy's short name, in `RateLimit` headers and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Webhook => "webhook",
            Policy::Health => "health",
            Policy::Docs => "docs",
            Policy::List => "list",
            Policy::Get => "get",
            Policy::Attachment => "attachment",
            Policy::Modify => "modify",
            Policy::Global => "global",
        }
    }

    /// The policy of a route template (`None`: no route matched); `None` back means exempt.
    ///
    /// Exempt: the probes (`/healthz`, `/readyz`), `POST /api/email/send`, which counts
    /// accepted emails with limits of its own, and the stats that report them; requests to
    /// those two refused for their key count against the global limit all the same (see
    /// `auth::Authenticated`). The outbox reads have no limit of their own, so the global
    /// one applies.
    pub fn for_route(template: Option<&str>) -> Option<Policy> {
        let Some(template) = template else {
            return Some(Policy::Global);
        };
        Some(match template {
            "/healthz" | "/readyz" => return None,
            // Counted in open streams (EVENTS_MAX_STREAMS), not requests.
            "/events" => return None,
            "/api/email/send" | "/api/email/stats" => return None,
            "/webhook" | "/webhook/{secret}" => Policy::Webhook,
            "/" => Policy::Health,
            "/openapi.json" => Policy::Docs,
            t if t == "/docs" || t.starts_with("/docs/") => Policy::Docs,
            "/emails" | "/mailboxes" => Policy::List,
            "/emails/bulk" => Policy::Modify,
            "/emails/{id}" | "/emails/{id}/raw" => Policy::Get,
            t if t.starts_with("/emails/{id}/") => Policy::Attachment,
            _ => Policy::Global,
        })
    }
}

impl Policy {
    /// `for_route`, with the method: changing an email is `Modify`, reading it `Get`.
    pub fn for_request(template: Option<&str>, method: &axum::http::Method) -> Option<Policy> {
        let changes = matches!(
            *method,
            axum::http::Method::PATCH | axum::http::Method::DELETE
        );
        match Policy::for_route(template) {
            Some(Policy::Get) if changes => Some(Policy::Modify),
            policy => policy,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Second,
    Minute,
    Hour,
    Day,
}

impl Unit {
    fn seconds(self) -> u64 {
        match self {
            Unit::Second => 1,
            Unit::Minute => 60,
            Unit::Hour => 3600,
            Unit::Day => 86_400,
        }
    }
}

/// `count` requests per `unit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub count: u32,
    pub unit: Unit,
}

impl Limit {
    pub fn window(self) -> Duration {
        Duration::from_secs(self.unit.seconds())
    }
}

/// As the old service said it: `30 per 1 minute`.
impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.unit {
            Unit::Second => "second",
            Unit::Minute => "minute",
            Unit::Hour => "hour",
            Unit::Day => "day",
        };
        write!(f, "{} per 1 {unit}", self.count)
    }
}

/// Parses `30/minute`, `50/hour,200/day` or `off` (no limit: an empty list).
pub fn parse_limits(text: &str) -> Result<Vec<Limit>, String> {
    if text.trim().eq_ignore_ascii_case("off") {
        return Ok(Vec::new());
    }
    text.split(',').map(parse_limit).collect()
}

fn parse_limit(item: &str) -> Result<Limit, String> {
    let expected = || format!("{item:?} is not N/second, N/minute, N/hour, N/day or off");
    let (count, unit) = item.trim().split_once('/').ok_or_else(expected)?;
    let count: u32 = count.trim().parse().map_err(|_| expected())?;
    if count == 0 {
        return Err(format!(
            "{item:?}: the count must be at least 1 (use `off`)"
        ));
    }
    let unit = match unit.trim().to_ascii_lowercase().trim_end_matches('s') {
        "second" | "sec" => Unit::Second,
        "minute" | "min" => Unit::Minute,
        "hour" => Unit::Hour,
        "day" => Unit::Day,
        _ => return Err(expected()),
    };
    Ok(Limit { count, unit })
}

/// The limits of every policy, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits(HashMap<Policy, Vec<Limit>>);

impl RateLimits {
    pub fn new(limits: impl IntoIterator<Item = (Policy, Vec<Limit>)>) -> Self {
        Self(limits.into_iter().collect())
    }

    pub fn of(&self, policy: Policy) -> &[Limit] {
        self.0.get(&policy).map(Vec::as_slice).unwrap_or_default()
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        Self::new(Policy::ALL.map(|policy| {
            let limits = parse_limits(policy.default_limits()).expect("valid defaults");
            (policy, limits)
        }))
    }
}

/// Where one window of a policy stands for one client, after this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowStatus {
    pub limit: Limit,
    pub remaining: u32,
    pub reset: Duration,
}

/// One window's count and the time until it resets, as a limiter found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowState {
    pub count: u32,
    pub reset: Duration,
}

/// The outcome of counting one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quota {
    pub policy: Policy,
    pub windows: Vec<WindowStatus>,
    /// The window that refused the request, if one did.
    pub exceeded: Option<WindowStatus>,
}

impl Quota {
    /// The quota of `policy` from its windows' states, in the order of `limits`; when
    /// `refused`, the full window that resets last is the one that refused.
    pub fn of(
        policy: Policy,
        limits: &[Limit],
        states: impl IntoIterator<Item = WindowState>,
        refused: bool,
    ) -> Self {
        let windows: Vec<WindowStatus> = states
            .into_iter()
            .zip(limits)
            .map(|(state, limit)| WindowStatus {
                limit: *limit,
                remaining: limit.count.saturating_sub(state.count),
                reset: state.reset,
            })
            .collect();
        let exceeded = refused
            .then(|| {
                windows
                    .iter()
                    .filter(|w| w.remaining == 0)
                    .max_by_key(|w| w.reset)
                    .copied()
            })
            .flatten();
        Self {
            policy,
            windows,
            exceeded,
        }
    }

    /// Whole seconds until the refusing window resets (at least 1).
    pub fn retry_after(&self) -> u64 {
        self.exceeded.map_or(0, |w| ceil_secs(w.reset))
    }

    /// The IETF `RateLimit-Policy` and `RateLimit` header values
    /// (draft-ietf-httpapi-ratelimit-headers: `"name";q=30;w=60`, `"name";r=29;t=60`).
    pub fn header_values(&self) -> (String, String) {
        let name =
            |w: &WindowStatus| format!("\"{}-{}\"", self.policy.name(), w.limit.unit.seconds());
        let policy = self
            .windows
            .iter()
            .map(|w| {
                format!(
                    "{};q={};w={}",
                    name(w),
                    w.limit.count,
                    w.limit.unit.seconds()
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let state = self
            .windows
            .iter()
            .map(|w| format!("{};r={};t={}", name(w), w.remaining, ceil_secs(w.reset)))
            .collect::<Vec<_>>()
            .join(", ");
        (policy, state)
    }
}

fn ceil_secs(duration: Duration) -> u64 {
    let secs = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    secs.max(1)
}

/// How often expired buckets are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    count: u32,
}

struct Buckets {
    /// One table per policy, each with its own cap.
    tables: HashMap<Policy, ClientTable<IpAddr, Vec<Window>>>,
    last_sweep: Instant,
}

/// The counters of one instance, in memory.
pub struct RateLimiter {
    limits: RateLimits,
    max_clients: usize,
    buckets: Mutex<Buckets>,
}

impl RateLimiter {
    /// Counters for `limits`, holding at most `max_clients` clients per policy.
    pub fn new(limits: RateLimits, max_clients: usize) -> Self {
        Self {
            limits,
            max_clients,
            buckets: Mutex::new(Buckets {
                tables: HashMap::new(),
                last_sweep: Instant::now(),
            }),
        }
    }

    /// Counts one request by `ip` against `policy`, unless a window is full;
    /// `None` when the policy has no limits (`off`).
    pub fn check(&self, policy: Policy, ip: IpAddr, now: Instant) -> Option<Quota> {
        let limits = self.limits.of(policy);
        if limits.is_empty() {
            return None;
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if now.saturating_duration_since(buckets.last_sweep) >= SWEEP_EVERY {
            buckets.sweep(&self.limits, now);
        }
        let table = buckets
            .tables
            .entry(policy)
            .or_insert_with(|| ClientTable::new(self.max_clients));
        let windows = table.touch(bucket(ip), now, || {
            vec![
                Window {
                    start: now,
                    count: 0
                };
                limits.len()
            ]
        });
        for (window, limit) in windows.iter_mut().zip(limits) {
            if now.saturating_duration_since(window.start) >= limit.window() {
                *window = Window {
                    start: now,
                    count: 0,
                };
            }
        }
        let refused = windows.iter().zip(limits).any(|(w, l)| w.count >= l.count);
        if !refused {
            windows.iter_mut().for_each(|w| w.count += 1);
        }
        let states = windows.iter().zip(limits).map(|(w, l)| WindowState {
            count: w.count,
            reset: (w.start + l.window()).saturating_duration_since(now),
        });
        Some(Quota::of(policy, limits, states, refused))
    }

    /// Drops every bucket whose windows have all expired.
    pub fn sweep(&self, now: Instant) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        buckets.sweep(&self.limits, now);
    }

    /// How many client buckets are held, over all policies (for tests and metrics).
    pub fn len(&self) -> usize {
        let buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        buckets.tables.values().map(ClientTable::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Buckets {
    fn sweep(&mut self, limits: &RateLimits, now: Instant) {
        for (policy, table) in &mut self.tables {
            table.retain(|_, windows| {
                windows
                    .iter()
                    .zip(limits.of(*policy))
                    .any(|(w, l)| now.saturating_duration_since(w.start) < l.window())
            });
        }
        self.last_sweep = now;
    }
}

/// The key a client is counted under: the address, or its /64 for IPv6.
pub fn bucket(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::super::table::DEFAULT_MAX_CLIENTS;
    use super::*;

    fn limiter(policy: Policy, text: &str) -> RateLimiter {
        RateLimiter::new(
            RateLimits::new([(policy, parse_limits(text).unwrap())]),
            DEFAULT_MAX_CLIENTS,
        )
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn defaults_parse_to_the_documented_limits() {
        let limits = RateLimits::default();
        let text = |p| {
            limits
                .of(p)
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        assert_eq!(text(Policy::Webhook), "200 per 1 minute");
        assert_eq!(text(Policy::Health), "30 per 1 minute");
        assert_eq!(text(Policy::Docs), "60 per 1 minute");
        assert_eq!(text(Policy::List), "20 per 1 minute");
        assert_eq!(text(Policy::Get), "30 per 1 minute");
        assert_eq!(text(Policy::Attachment), "10 per 1 minute");
        assert_eq!(text(Policy::Global), "50 per 1 hour, 200 per 1 day");
    }

    #[test]
    fn limits_parse_leniently_and_refuse_nonsense() {
        assert_eq!(parse_limits("off").unwrap(), []);
        assert_eq!(parse_limits(" OFF ").unwrap(), []);
        let parsed = parse_limits("3/second, 5/Minutes,7/hours,9/DAY").unwrap();
        let units: Vec<Unit> = parsed.iter().map(|l| l.unit).collect();
        assert_eq!(units, [Unit::Second, Unit::Minute, Unit::Hour, Unit::Day]);
        for bad in [
            "",
            "30",
            "30/fortnight",
            "0/minute",
            "-1/minute",
            "x/minute",
            "30/minute,",
        ] {
            assert!(parse_limits(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn routes_map_to_their_policies() {
        let table = [
            (Some("/webhook"), Some(Policy::Webhook)),
            (Some("/webhook/{secret}"), Some(Policy::Webhook)),
            (Some("/"), Some(Policy::Health)),
            (Some("/docs"), Some(Policy::Docs)),
            (Some("/emails"), Some(Policy::List)),
            (Some("/emails/{id}"), Some(Policy::Get)),
            (
                Some("/emails/{id}/attachment/{name}"),
                Some(Policy::Attachment),
            ),
            (
                Some("/emails/{id}/inlines/{index}"),
                Some(Policy::Attachment),
            ),
            (Some("/something/new"), Some(Policy::Global)),
            (None, Some(Policy::Global)),
            (Some("/healthz"), None),
            (Some("/readyz"), None),
            (Some("/api/email/send"), None),
            (Some("/api/email/stats"), None),
            (Some("/api/email/outbox/{id}"), Some(Policy::Global)),
            (Some("/openapi.json"), Some(Policy::Docs)),
            (Some("/mailboxes"), Some(Policy::List)),
            (Some("/emails/bulk"), Some(Policy::Modify)),
            (Some("/emails/{id}/raw"), Some(Policy::Get)),
            (Some("/events"), None),
        ];
        for (route, policy) in table {
            assert_eq!(Policy::for_route(route), policy, "{route:?}");
        }
    }

    #[test]
    fn changing_an_email_has_its_own_limit() {
        use axum::http::Method;
        let email = Some("/emails/{id}");
        assert_eq!(Policy::for_request(email, &Method::GET), Some(Policy::Get));
        assert_eq!(
            Policy::for_request(email, &Method::PATCH),
            Some(Policy::Modify)
        );
        assert_eq!(
            Policy::for_request(email, &Method::DELETE),
            Some(Policy::Modify)
        );
        assert_eq!(
            Policy::for_request(Some("/emails"), &Method::GET),
            Some(Policy::List)
        );
    }

    #[test]
    fn the_limit_refuses_the_next_request_until_the_window_resets() {
        let limiter = limiter(Policy::List, "3/minute");
        let start = Instant::now();
        let client = ip("203.0.113.7");
        for remaining in [2, 1, 0] {
            let quota = limiter.check(Policy::List, client, start).unwrap();
            assert_eq!(quota.exceeded, None);
            assert_eq!(quota.windows[0].remaining, remaining);
        }
        let refused = limiter
            .check(Policy::List, client, start + Duration::from_secs(20))
            .unwrap();
        assert_eq!(
            refused.exceeded.unwrap().limit.to_string(),
            "3 per 1 minute"
        );
        assert_eq!(refused.retry_after(), 40);
        // Another client and another policy have buckets of their own.
        let other = limiter
            .check(Policy::List, ip("203.0.113.8"), start)
            .unwrap();
        assert_eq!(other.exceeded, None);
        assert!(limiter.check(Policy::Get, client, start).is_none());
        let later = start + Duration::from_secs(60);
        assert_eq!(
            limiter.check(Policy::List, client, later).unwrap().exceeded,
            None
        );
    }

    #[test]
    fn a_refused_request_is_not_counted_in_any_window() {
        let limiter = limiter(Policy::Global, "2/second,3/minute");
        let start = Instant::now();
        let client = ip("198.51.100.1");
        let at = |ms| start + Duration::from_millis(ms);
        assert!(
            limiter
                .check(Policy::Global, client, at(0))
                .unwrap()
                .exceeded
                .is_none()
        );
        assert!(
            limiter
                .check(Policy::Global, client, at(1))
                .unwrap()
                .exceeded
                .is_none()
        );
        let refused = limiter.check(Policy::Global, client, at(2)).unwrap();
        assert_eq!(refused.exceeded.unwrap().limit.unit, Unit::Second);
        // The second resets; the minute has one request left, not zero.
        assert!(
            limiter
                .check(Policy::Global, client, at(1000))
                .unwrap()
                .exceeded
                .is_none()
        );
        let refused = limiter.check(Policy::Global, client, at(1001)).unwrap();
        assert_eq!(refused.exceeded.unwrap().limit.unit, Unit::Minute);
        assert_eq!(refused.retry_after(), 59);
    }

    #[test]
    fn ipv6_clients_share_their_64_and_mapped_ipv4_is_ipv4() {
        let limiter = limiter(Policy::Get, "1/minute");
        let now = Instant::now();
        assert!(
            limiter
                .check(Policy::Get, ip("2001:db8:0:1::1"), now)
                .unwrap()
                .exceeded
                .is_none()
        );
        assert!(
            limiter
                .check(Policy::Get, ip("2001:db8:0:1::2"), now)
                .unwrap()
                .exceeded
                .is_some()
        );
        assert!(
            limiter
                .check(Policy::Get, ip("2001:db8:0:2::1"), now)
                .unwrap()
                .exceeded
                .is_none()
        );
        assert!(
            limiter
                .check(Policy::Get, ip("192.0.2.1"), now)
                .unwrap()
                .exceeded
                .is_none()
        );
        assert!(
            limiter
                .check(Policy::Get, ip("::ffff:192.0.2.1"), now)
                .unwrap()
                .exceeded
                .is_some()
        );
    }

    #[test]
    fn expired_buckets_are_swept() {
        let limiter = limiter(Policy::Docs, "5/second");
        let start = Instant::now();
        for n in 0..10_000u32 {
            limiter.check(Policy::Docs, IpAddr::from(n.to_be_bytes()), start);
        }
        assert_eq!(limiter.len(), 10_000);
        limiter.sweep(start + Duration::from_millis(500));
        assert_eq!(limiter.len(), 10_000);
        limiter.sweep(start + Duration::from_secs(1));
        assert_eq!(limiter.len(), 0);
        // The periodic sweep runs on its own as requests arrive.
        limiter.check(Policy::Docs, ip("192.0.2.1"), start);
        limiter.check(Policy::Docs, ip("192.0.2.2"), start + SWEEP_EVERY * 2);
        assert_eq!(limiter.len(), 1);
    }

    #[test]
    fn the_table_is_capped_and_recent_clients_keep_their_windows() {
        let limiter = RateLimiter::new(
            RateLimits::new([(Policy::Global, parse_limits("50/hour,200/day").unwrap())]),
            1000,
        );
        let start = Instant::now();
        let regular = ip("203.0.113.7");
        let at = |n: u32| start + Duration::from_millis(n.into());
        for n in 0..5000u32 {
            // 5,000 distinct addresses, as forged X-Forwarded-For values would be.
            let flood = IpAddr::from((0x0a00_0000 + n).to_be_bytes());
            limiter.check(Policy::Global, flood, at(n));
            // A regular client keeps coming back between them.
            if n % 100 == 0 {
                limiter.check(Policy::Global, regular, at(n));
            }
            assert!(limiter.len() <= 1000, "{} clients after {n}", limiter.len());
        }
        // Its 50 requests were all counted: eviction of others never reset its window.
        let quota = limiter.check(Policy::Global, regular, at(5000)).unwrap();
        assert_eq!(quota.exceeded.unwrap().limit.unit, Unit::Hour);
        // The most recent of the flood keeps its count too.
        let last = IpAddr::from((0x0a00_0000 + 4999u32).to_be_bytes());
        let quota = limiter.check(Policy::Global, last, at(5000)).unwrap();
        assert_eq!(quota.windows[0].remaining, 48);
    }

    #[test]
    fn each_policy_has_a_cap_of_its_own() {
        let limiter = RateLimiter::new(
            RateLimits::new([
                (Policy::Docs, parse_limits("5/minute").unwrap()),
                (Policy::Get, parse_limits("5/minute").unwrap()),
            ]),
            10,
        );
        let now = Instant::now();
        for n in 0..100u32 {
            limiter.check(Policy::Docs, IpAddr::from(n.to_be_bytes()), now);
        }
        limiter.check(Policy::Get, ip("192.0.2.1"), now);
        assert!(limiter.len() <= 11, "{}", limiter.len());
        assert!(limiter.len() >= 2, "{}", limiter.len());
    }

    #[test]
    fn headers_follow_the_ietf_draft() {
        let limiter = limiter(Policy::Global, "50/hour,200/day");
        let quota = limiter
            .check(Policy::Global, ip("192.0.2.1"), Instant::now())
            .unwrap();
        let (policy, state) = quota.header_values();
        assert_eq!(
            policy,
            "\"global-3600\";q=50;w=3600, \"global-86400\";q=200;w=86400"
        );
        assert_eq!(
            state,
            "\"global-3600\";r=49;t=3600, \"global-86400\";r=199;t=86400"
        );
    }
}
