//! Reading the security settings (trusted proxies, webhook authenticity, CORS, limits,
//! lockout) from the environment; the settings type is `security`'s own.

use std::time::Duration;

use super::Env;
use crate::secret::Secret;
use crate::security::SecuritySettings;
use crate::security::client_ip::IpSet;
use crate::security::cors::CorsOrigins;
use crate::security::lockout::{LockoutPolicy, MAX_PERIOD};
use crate::security::rate_limit::{Policy, RateLimits, parse_limits};
use crate::security::table::DEFAULT_MAX_CLIENTS;
use crate::security::webhook::validate_secret;

impl SecuritySettings {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> Self {
        let trusted_proxies = ip_set(env, "TRUSTED_PROXIES")
            .unwrap_or_else(|| IpSet::parse_list(&["127.0.0.1".into(), "::1".into()]).unwrap());
        let webhook_secret = env.string("WEBHOOK_SECRET").map(Secret::new);
        if let Some(Err(problem)) = webhook_secret.as_ref().map(|s| validate_secret(s.expose())) {
            env.problem("WEBHOOK_SECRET", &problem);
        }
        let webhook_allowed_ips = ip_set(env, "WEBHOOK_ALLOWED_IPS").filter(|set| !set.is_empty());
        let origins = env.list("CORS_ORIGINS");
        let cors_origins = CorsOrigins::parse_list(&origins).unwrap_or_else(|problem| {
            env.problem("CORS_ORIGINS", &problem);
            CorsOrigins::Any
        });
        let rate_limits = RateLimits::new(Policy::ALL.map(|policy| {
            let default = parse_limits(policy.default_limits()).expect("valid defaults");
            (
                policy,
                env.parse_with(policy.variable(), default, parse_limits),
            )
        }));
        let defaults = LockoutPolicy::default();
        let lockout = LockoutPolicy {
            max_failures: env.parse("LOCKOUT_MAX_FAILURES", defaults.max_failures),
            window: seconds(env, "LOCKOUT_WINDOW_SECS", defaults.window),
            duration: seconds(env, "LOCKOUT_SECS", defaults.duration),
        };
        let max_clients = env.parse("RATE_LIMIT_MAX_CLIENTS", DEFAULT_MAX_CLIENTS);
        if max_clients == 0 {
            env.problem("RATE_LIMIT_MAX_CLIENTS", "must be at least 1");
        }
        let events_max_streams = env.parse("EVENTS_MAX_STREAMS", 4);
        Self {
            trusted_proxies,
            webhook_secret,
            webhook_allowed_ips,
            cors_origins,
            rate_limits,
            lockout,
            max_clients,
            events_max_streams,
        }
    }
}

fn ip_set<F: Fn(&str) -> Option<String>>(env: &mut Env<F>, name: &str) -> Option<IpSet> {
    let items = env.list(name);
    if items.is_empty() {
        return None;
    }
    IpSet::parse_list(&items)
        .map_err(|problem| env.problem(name, &problem))
        .ok()
}

fn seconds<F: Fn(&str) -> Option<String>>(
    env: &mut Env<F>,
    name: &str,
    default: Duration,
) -> Duration {
    let secs = env.parse(name, default.as_secs());
    if secs == 0 {
        env.problem(name, "must be at least 1 second");
        return default;
    }
    if secs > MAX_PERIOD.as_secs() {
        let max = MAX_PERIOD.as_secs();
        env.problem(name, &format!("must be at most {max} seconds (one year)"));
        return default;
    }
    Duration::from_secs(secs)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::net::IpAddr;

    use super::*;
    use crate::config::ConfigError;

    fn security(vars: &[(&str, &str)]) -> Result<SecuritySettings, ConfigError> {
        let map: HashMap<&str, &str> = vars.iter().copied().collect();
        let mut env = Env::new(|name: &str| map.get(name).map(|v| v.to_string()));
        let settings = SecuritySettings::from_env(&mut env);
        env.finish().map(|()| settings)
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let s = security(&[]).unwrap();
        assert!(s.trusted_proxies.contains(ip("127.0.0.1")));
        assert!(s.trusted_proxies.contains(ip("::1")));
        assert!(!s.trusted_proxies.contains(ip("127.0.0.2")));
        assert!(s.webhook_secret.is_none());
        assert!(s.webhook_allowed_ips.is_none());
        assert_eq!(s.cors_origins, CorsOrigins::Any);
        assert_eq!(s.rate_limits, RateLimits::default());
        assert_eq!(s.lockout, LockoutPolicy::default());
        assert_eq!(s.lockout.max_failures, 5);
        assert_eq!(s.lockout.window, Duration::from_secs(300));
        assert_eq!(s.lockout.duration, Duration::from_secs(900));
        assert_eq!(s.max_clients, 100_000);
    }

    #[test]
    fn every_variable_is_read() {
        let s = security(&[
            ("TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.1"),
            ("WEBHOOK_SECRET", "abcdefghijklmnop-123"),
            ("WEBHOOK_ALLOWED_IPS", "198.51.100.7"),
            ("CORS_ORIGINS", "https://app.example.org"),
            ("RATE_LIMIT_LIST", "off"),
            ("RATE_LIMIT_GLOBAL", "3/second,10/hour"),
            ("LOCKOUT_MAX_FAILURES", "3"),
            ("LOCKOUT_WINDOW_SECS", "2"),
            ("LOCKOUT_SECS", "4"),
            ("RATE_LIMIT_MAX_CLIENTS", "5000"),
        ])
        .unwrap();
        assert!(s.trusted_proxies.contains(ip("10.1.1.1")));
        assert!(!s.trusted_proxies.contains(ip("127.0.0.1")));
        assert_eq!(s.webhook_secret.unwrap().expose(), "abcdefghijklmnop-123");
        assert!(s.webhook_allowed_ips.unwrap().contains(ip("198.51.100.7")));
        assert!(matches!(s.cors_origins, CorsOrigins::List(ref l) if l.len() == 1));
        assert!(s.rate_limits.of(Policy::List).is_empty());
        assert_eq!(s.rate_limits.of(Policy::Global).len(), 2);
        assert_eq!(s.rate_limits.of(Policy::Get).len(), 1);
        assert_eq!(s.lockout.max_failures, 3);
        assert_eq!(s.lockout.duration, Duration::from_secs(4));
        assert_eq!(s.max_clients, 5000);
    }

    #[test]
    fn bad_values_are_all_reported() {
        let error = security(&[
            ("TRUSTED_PROXIES", "proxy.local"),
            ("WEBHOOK_SECRET", "short"),
            ("WEBHOOK_ALLOWED_IPS", "10.0.0.0/99"),
            ("CORS_ORIGINS", "example.org"),
            ("RATE_LIMIT_DOCS", "lots"),
            ("LOCKOUT_SECS", "0"),
            ("LOCKOUT_MAX_FAILURES", "-1"),
            ("RATE_LIMIT_MAX_CLIENTS", "0"),
        ])
        .unwrap_err()
        .to_string();
        for name in [
            "TRUSTED_PROXIES",
            "WEBHOOK_SECRET",
            "WEBHOOK_ALLOWED_IPS",
            "CORS_ORIGINS",
            "RATE_LIMIT_DOCS",
            "LOCKOUT_SECS",
            "LOCKOUT_MAX_FAILURES",
            "RATE_LIMIT_MAX_CLIENTS",
        ] {
            assert!(error.contains(name), "{name}: {error}");
        }
        assert!(
            !error.contains("short\""),
            "the secret must not be echoed: {error}"
        );
    }

    #[test]
    fn lockout_periods_longer_than_a_year_are_refused() {
        let year = "31536000";
        let s = security(&[("LOCKOUT_SECS", year), ("LOCKOUT_WINDOW_SECS", year)]).unwrap();
        assert_eq!(s.lockout.duration, Duration::from_secs(31_536_000));
        for name in ["LOCKOUT_SECS", "LOCKOUT_WINDOW_SECS"] {
            for value in ["31536001", "18446744073709551615"] {
                let error = security(&[(name, value)]).unwrap_err().to_string();
                assert!(error.contains(name), "{error}");
                assert!(error.contains("one year"), "{error}");
            }
        }
    }

    #[test]
    fn trusted_proxies_none_trusts_nobody() {
        let s = security(&[("TRUSTED_PROXIES", "none")]).unwrap();
        assert!(!s.trusted_proxies.contains(ip("127.0.0.1")));
    }
}
