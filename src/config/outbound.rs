//! Settings of the send API and the SMTP relay (`SEND_*`, `SMTP_*`, `OUTBOX_*`).

use std::time::Duration;

use super::Env;
use crate::secret::Secret;

/// How the relay connection is secured (`SMTP_SEC_TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// STARTTLS, required (port 587).
    StartTls,
    /// Implicit TLS (port 465).
    Tls,
    /// Plain text, for a local relay only.
    None,
}

impl SmtpSecurity {
    fn parse(text: &str) -> Result<Self, String> {
        match text.to_ascii_uppercase().as_str() {
            "TLS" | "STARTTLS" => Ok(SmtpSecurity::StartTls),
            "SSL" => Ok(SmtpSecurity::Tls),
            "NONE" => Ok(SmtpSecurity::None),
            _ => Err("expected TLS (STARTTLS), SSL (implicit TLS) or NONE".into()),
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            SmtpSecurity::StartTls => 587,
            SmtpSecurity::Tls => 465,
            SmtpSecurity::None => 25,
        }
    }
}

/// Which addresses of `SMTP_SERVER` are tried (`SMTP_IP_FAMILY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpFamily {
    Auto,
    V4,
    V6,
}

impl IpFamily {
    fn parse(text: &str) -> Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "auto" => Ok(IpFamily::Auto),
            "ipv4" | "4" => Ok(IpFamily::V4),
            "ipv6" | "6" => Ok(IpFamily::V6),
            _ => Err("expected auto, ipv4 or ipv6".into()),
        }
    }
}

/// One sliding window of the per-IP send limit, e.g. `2/minute`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateWindow {
    pub limit: u32,
    pub window: Duration,
}

impl RateWindow {
    /// The unit's name as the 429 message spells it.
    pub fn unit(&self) -> &'static str {
        match self.window.as_secs() {
            1 => "second",
            60 => "minute",
            3600 => "hour",
            _ => "day",
        }
    }
}

/// `N/second|minute|hour|day`, comma-separated; `off` for none.
pub fn parse_rate_windows(text: &str) -> Result<Vec<RateWindow>, String> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            let (count, unit) = item
                .split_once('/')
                .ok_or_else(|| format!("{item:?} is not N/unit"))?;
            let limit: u32 = count
                .trim()
                .parse()
                .map_err(|_| format!("{count:?} is not a whole number"))?;
            let secs = match unit.trim().to_ascii_lowercase().as_str() {
                "second" | "s" => 1,
                "minute" | "m" => 60,
                "hour" | "h" => 3600,
                "day" | "d" => 86_400,
                other => return Err(format!("unknown unit {other:?}")),
            };
            Ok(RateWindow {
                limit,
                window: Duration::from_secs(secs),
            })
        })
        .collect()
}

pub const DEFAULT_SPAM_PHRASES: &[&str] = &[
    "viagra",
    "cialis",
    "casino",
    "lottery",
    "winner",
    "you have won",
    "buy now",
    "click here",
    "limited time",
    "free money",
    "act now",
    "risk free",
    "100% free",
    "make money fast",
];

pub const DEFAULT_URL_SHORTENERS: &[&str] = &[
    "bit.ly",
    "bitly.com",
    "tinyurl.com",
    "goo.gl",
    "t.co",
    "ow.ly",
    "is.gd",
    "v.gd",
    "buff.ly",
    "adf.ly",
    "bit.do",
    "cutt.ly",
    "shorturl.at",
    "rebrand.ly",
    "tiny.cc",
    "rb.gy",
    "t.ly",
    "s.id",
    "lnkd.in",
    "shorte.st",
];

#[derive(Debug, Clone)]
pub struct OutboundSettings {
    pub smtp_server: String,
    pub smtp_port: u16,
    pub smtp_security: SmtpSecurity,
    pub smtp_username: Option<String>,
    pub smtp_password: Option<Secret>,
    pub smtp_ip_family: IpFamily,
    /// TCP connect timeout per address.
    pub smtp_connect_timeout: Duration,
    /// Timeout of each SMTP command (greeting, EHLO, DATA, …).
    pub smtp_command_timeout: Duration,
    /// Delay before racing the next address while earlier ones have not greeted (RFC 8305).
    pub smtp_fallback_delay: Duration,
    /// Our name in EHLO: the first `DOMINIO`, else `localhost`.
    pub smtp_hello_name: String,
    /// Extra PEM root certificate for a private relay (`SMTP_TLS_CA_FILE`).
    pub smtp_tls_ca_file: Option<String>,
    /// Recipients per rolling day, across all clients (`SMTP_DAILY_QUOTA`).
    pub smtp_daily_quota: Option<u32>,
    pub rate_limit: Vec<RateWindow>,
    pub max_recipients: usize,
    pub max_body_chars: usize,
    pub max_urls: usize,
    /// IDNA-normalised, lower-cased; empty means every domain.
    pub allowed_domains: Vec<String>,
    /// IDNA-normalised, lower-cased senders' domains (`DOMINIO`).
    pub sender_domains: Vec<String>,
    pub spam_phrases: Vec<String>,
    pub url_shorteners: Vec<String>,
    pub retry_base: Duration,
    pub retry_max_delay: Duration,
    /// After this long since acceptance a temporary failure becomes permanent.
    pub retry_horizon: Duration,
    pub poll_interval: Duration,
    /// A row left in `sending` this long is assumed abandoned and queued again.
    pub sending_lease: Duration,
}

impl OutboundSettings {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> Self {
        let domains = env.list("DOMINIO");
        let security = env.parse_with("SMTP_SEC_TYPE", SmtpSecurity::StartTls, SmtpSecurity::parse);
        let secs = |env: &mut Env<F>, name: &str, default: f64| {
            let value = env.parse_with(name, default, |text| {
                text.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v >= 0.0 && *v < 1e9)
                    .ok_or_else(|| "expected a number of seconds".into())
            });
            Duration::from_secs_f64(value)
        };
        let normalise = |list: Vec<String>, name: &str, env: &mut Env<F>| -> Vec<String> {
            list.iter()
                .filter_map(|d| match idna::domain_to_ascii(d) {
                    Ok(ascii) if !ascii.is_empty() => Some(ascii),
                    _ => {
                        env.problem(name, &format!("{d:?} is not a domain"));
                        None
                    }
                })
                .collect()
        };
        let allowed = env.list("SEND_ALLOWED_DOMAINS");
        let spam = env.list("SEND_SPAM_PHRASES");
        let shorteners = env.list("SEND_URL_SHORTENERS");
        let sender_domains = normalise(domains, "DOMINIO", env);
        let settings = OutboundSettings {
            smtp_server: env
                .string("SMTP_SERVER")
                .unwrap_or_else(|| "smtp.improvmx.com".into()),
            smtp_port: env.parse("SMTP_PORT", security.default_port()),
            smtp_security: security,
            smtp_username: env.string("SMTP_USERNAME"),
            smtp_password: env.string("SMTP_PASSWORD").map(Secret::new),
            smtp_ip_family: env.parse_with("SMTP_IP_FAMILY", IpFamily::Auto, IpFamily::parse),
            smtp_connect_timeout: secs(env, "SMTP_CONNECT_TIMEOUT_SECS", 10.0),
            smtp_command_timeout: secs(env, "SMTP_COMMAND_TIMEOUT_SECS", 60.0),
            smtp_fallback_delay: secs(env, "SMTP_FALLBACK_DELAY_SECS", 0.25),
            smtp_hello_name: env
                .string("SMTP_HELO_NAME")
                .or_else(|| sender_domains.first().cloned())
                .unwrap_or_else(|| "localhost".into()),
            smtp_tls_ca_file: env.string("SMTP_TLS_CA_FILE"),
            smtp_daily_quota: env.parse_with("SMTP_DAILY_QUOTA", None, |t| {
                t.parse::<u32>().map(Some).map_err(|e| e.to_string())
            }),
            rate_limit: env.parse_with(
                "SEND_RATE_LIMIT",
                parse_rate_windows("2/minute,10/hour,50/day").unwrap_or_default(),
                parse_rate_windows,
            ),
            max_recipients: env.parse("SEND_MAX_RECIPIENTS", 5),
            max_body_chars: env.parse("SEND_MAX_BODY_CHARS", 10_000),
            max_urls: env.parse("SEND_MAX_URLS", 10),
            allowed_domains: normalise(allowed, "SEND_ALLOWED_DOMAINS", env),
            sender_domains,
            spam_phrases: if spam.is_empty() {
                DEFAULT_SPAM_PHRASES.iter().map(|s| s.to_string()).collect()
            } else if spam.len() == 1 && spam[0].eq_ignore_ascii_case("off") {
                Vec::new()
            } else {
                spam.iter().map(|s| s.to_lowercase()).collect()
            },
            url_shorteners: if shorteners.is_empty() {
                DEFAULT_URL_SHORTENERS
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            } else {
                shorteners.iter().map(|s| s.to_lowercase()).collect()
            },
            retry_base: secs(env, "OUTBOX_RETRY_BASE_SECS", 30.0),
            retry_max_delay: secs(env, "OUTBOX_RETRY_MAX_DELAY_SECS", 3600.0),
            retry_horizon: secs(env, "OUTBOX_RETRY_HORIZON_SECS", 2.0 * 86_400.0),
            poll_interval: secs(env, "OUTBOX_POLL_SECS", 5.0),
            sending_lease: secs(env, "OUTBOX_SENDING_LEASE_SECS", 600.0),
        };
        if settings.smtp_username.is_some() != settings.smtp_password.is_some() {
            env.problem(
                "SMTP_USERNAME",
                "SMTP_USERNAME and SMTP_PASSWORD go together",
            );
        }
        if settings.poll_interval.is_zero() {
            env.problem("OUTBOX_POLL_SECS", "must be more than 0");
        }
        settings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_windows_parse_like_the_other_limits() {
        let windows = parse_rate_windows("2/minute, 10/hour,50/day").unwrap();
        assert_eq!(windows.len(), 3);
        assert_eq!(windows[0].limit, 2);
        assert_eq!(windows[1].window, Duration::from_secs(3600));
        assert_eq!(windows[2].unit(), "day");
        assert!(parse_rate_windows("off").unwrap().is_empty());
        assert!(parse_rate_windows("2/fortnight").is_err());
        assert!(parse_rate_windows("x/minute").is_err());
    }

    fn outbound(vars: &[(&str, &str)]) -> Result<OutboundSettings, crate::config::ConfigError> {
        let mut env = Env::new(|name: &str| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        });
        let settings = OutboundSettings::from_env(&mut env);
        env.finish().map(|()| settings)
    }

    #[test]
    fn defaults_follow_the_old_service_and_improvmx() {
        let s = outbound(&[("DOMINIO", "PuntoA.ar, bücher.example")]).unwrap();
        assert_eq!(s.smtp_server, "smtp.improvmx.com");
        assert_eq!(
            (s.smtp_security, s.smtp_port),
            (SmtpSecurity::StartTls, 587)
        );
        assert_eq!(s.sender_domains, ["puntoa.ar", "xn--bcher-kva.example"]);
        assert_eq!(s.smtp_hello_name, "puntoa.ar");
        assert_eq!(s.rate_limit.len(), 3);
        assert_eq!((s.max_recipients, s.max_body_chars), (5, 10_000));
        assert_eq!(s.smtp_daily_quota, None);
        assert_eq!(
            outbound(&[("SMTP_SEC_TYPE", "SSL")]).unwrap().smtp_port,
            465
        );
    }

    #[test]
    fn bad_values_are_reported_together_and_passwords_never_print() {
        let error = outbound(&[
            ("SMTP_SEC_TYPE", "maybe"),
            ("SEND_RATE_LIMIT", "lots"),
            ("OUTBOX_RETRY_BASE_SECS", "-1"),
            ("SMTP_USERNAME", "me"),
        ])
        .unwrap_err()
        .to_string();
        for name in [
            "SMTP_SEC_TYPE",
            "SEND_RATE_LIMIT",
            "OUTBOX_RETRY_BASE_SECS",
            "SMTP_USERNAME",
        ] {
            assert!(error.contains(name), "{error}");
        }
        let s = outbound(&[("SMTP_USERNAME", "me"), ("SMTP_PASSWORD", "hunter2-secret")]).unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn security_types_keep_the_old_names() {
        assert_eq!(SmtpSecurity::parse("tls"), Ok(SmtpSecurity::StartTls));
        assert_eq!(SmtpSecurity::parse("SSL"), Ok(SmtpSecurity::Tls));
        assert_eq!(SmtpSecurity::parse("none"), Ok(SmtpSecurity::None));
        assert!(SmtpSecurity::parse("maybe").is_err());
    }
}
