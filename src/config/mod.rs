//! Settings from the environment (and an optional `.env`), validated at startup.
//!
//! Variable names follow the service mailroom replaces (`API_KEY`, `DOMINIO`, …).
//! Every problem is collected, so a bad configuration is reported in one go.

mod api_key;
mod env;
mod limits;
mod outbound;
mod retention;
mod security;
mod webmail;

use std::net::IpAddr;
use std::path::PathBuf;

pub use api_key::{ApiKeySource, resolve_api_keys};
pub use env::Env;
pub use limits::{DEFAULT_MAX_WEBHOOK_BYTES, HttpSettings, WebhookSettings};
pub use outbound::{
    DEFAULT_SPAM_PHRASES, DEFAULT_URL_SHORTENERS, IpFamily, OutboundSettings, RateWindow,
    SmtpSecurity, parse_rate_windows,
};
pub use webmail::{DEFAULT_WEBMAIL_PORT, SESSION_ABSOLUTE, WebmailSettings};

use crate::secret::Secret;
use crate::security::SecuritySettings;
use crate::store::Engine;
use crate::store::retention::RetentionPolicy;
use crate::telemetry::LogFormat;

#[derive(Debug, Clone)]
pub struct Settings {
    pub host: IpAddr,
    pub port: u16,
    /// `METRICS_PORT`: where `GET /metrics` is served, on `host`; `None` (the default) is off.
    pub metrics_port: Option<u16>,
    /// May carry a password, hence secret; log it through `store::redact_url`.
    pub database_url: Secret,
    /// `DATABASE_ACQUIRE_TIMEOUT_SECS`: how long a request waits for a connection to a
    /// database server before it is answered 503.
    pub database_acquire_timeout: std::time::Duration,
    /// Where the generated API key (and the default SQLite file) live.
    pub data_dir: PathBuf,
    /// `API_KEY` and any `API_KEYS`; empty means "generate one in the data directory".
    pub api_keys: Vec<Secret>,
    /// How webhook bodies are received and what one payload may hold.
    pub webhook: WebhookSettings,
    /// Connection limits and timeouts of the listener.
    pub http: HttpSettings,
    /// `LIST_BODY_MAX_BYTES`: `text` and `html` of list items are cut above this.
    pub list_body_max_bytes: usize,
    pub log_format: LogFormat,
    /// The send API and the SMTP relay.
    pub outbound: OutboundSettings,
    /// Old-service variables that are set but no longer used (`MONGO_*`).
    pub legacy_mongo_vars: Vec<String>,
    /// Trusted proxies, webhook authenticity, CORS, rate limits, lockout.
    pub security: SecuritySettings,
    /// What the background sweep deletes, and how long the change log reaches back.
    pub retention: RetentionPolicy,
    /// `WEBMAIL_PORT`, `WEBMAIL_SESSION_IDLE`.
    pub webmail: WebmailSettings,
}

/// Every configuration problem found, one per line.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
pub struct ConfigError(pub Vec<String>);

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let names: Vec<String> = std::env::vars().map(|(name, _)| name).collect();
        Self::from_lookup(|name| std::env::var(name).ok(), &names)
    }

    /// Reads settings through `lookup`; `names` lists every variable set (for `MONGO_*`).
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
        names: &[String],
    ) -> Result<Self, ConfigError> {
        let mut env = Env::new(lookup);
        let data_dir = PathBuf::from(env.string("DATA_DIR").unwrap_or_else(|| "data".into()));
        let default_db = format!("sqlite://{}/mailroom.db", data_dir.display());
        let mut api_keys: Vec<Secret> =
            env.string("API_KEY").map(Secret::new).into_iter().collect();
        api_keys.extend(env.list("API_KEYS").into_iter().map(Secret::new));
        if api_keys.iter().any(|key| key.expose().len() < 16) {
            env.problem("API_KEY", "keys must be at least 16 characters long");
        }

        let settings = Settings {
            host: env.parse("HOST", IpAddr::from([127, 0, 0, 1])),
            port: env.parse("PORT", 42010),
            metrics_port: env.parse_with("METRICS_PORT", None, parse_metrics_port),
            database_url: Secret::new(env.string("DATABASE_URL").unwrap_or(default_db)),
            database_acquire_timeout: std::time::Duration::from_secs(
                env.parse("DATABASE_ACQUIRE_TIMEOUT_SECS", 3u64)
                    .clamp(1, 600),
            ),
            data_dir,
            api_keys,
            webhook: WebhookSettings::from_env(&mut env),
            http: HttpSettings::from_env(&mut env),
            list_body_max_bytes: env.parse("LIST_BODY_MAX_BYTES", 256 * 1024),
            log_format: env.parse("LOG_FORMAT", LogFormat::Text),
            outbound: OutboundSettings::from_env(&mut env),
            legacy_mongo_vars: names
                .iter()
                .filter(|name| name.starts_with("MONGO_"))
                .cloned()
                .collect(),
            security: SecuritySettings::from_env(&mut env),
            retention: RetentionPolicy::from_env(&mut env),
            webmail: WebmailSettings::from_env(&mut env),
        };
        if Engine::of(settings.database_url.expose()).is_err() {
            env.problem(
                "DATABASE_URL",
                "must start with sqlite://, postgres:// or postgresql://",
            );
        }
        if settings
            .metrics_port
            .is_some_and(|port| port != 0 && port == settings.port)
        {
            env.problem("METRICS_PORT", "must differ from PORT");
        }
        if settings.webmail.port.is_some_and(|port| {
            port != 0 && (port == settings.port || Some(port) == settings.metrics_port)
        }) {
            env.problem("WEBMAIL_PORT", "must differ from PORT and METRICS_PORT");
        }
        env.finish().map(|()| settings)
    }
}

/// A port, or `off` (the same as unset).
fn parse_metrics_port(text: &str) -> Result<Option<u16>, String> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| "expected a port or `off`".into())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let names: Vec<String> = map.keys().cloned().collect();
        Settings::from_lookup(|name| map.get(name).cloned(), &names)
    }

    #[test]
    fn defaults_match_the_service_being_replaced() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.host.to_string(), "127.0.0.1");
        assert_eq!(s.port, 42010);
        assert_eq!(s.database_url.expose(), "sqlite://data/mailroom.db");
        assert_eq!(s.webhook.max_body_bytes, 73_400_320);
        assert!(s.api_keys.is_empty());
        assert_eq!(s.log_format, LogFormat::Text);
        assert_eq!(s.metrics_port, None);
        assert_eq!(s.webmail.port, Some(26000));
        assert_eq!(s.webmail.session_idle.as_secs(), 8 * 3600);
    }

    #[test]
    fn the_webmail_port_may_be_off_and_never_the_api_port() {
        assert_eq!(
            settings(&[("WEBMAIL_PORT", "off")]).unwrap().webmail.port,
            None
        );
        assert!(settings(&[("WEBMAIL_PORT", "42010")]).is_err());
        assert!(settings(&[("WEBMAIL_SESSION_IDLE", "0")]).is_err());
    }

    #[test]
    fn metrics_port_is_off_unless_set_and_never_the_api_port() {
        assert_eq!(
            settings(&[("METRICS_PORT", "off")]).unwrap().metrics_port,
            None
        );
        let s = settings(&[("METRICS_PORT", "9100")]).unwrap();
        assert_eq!(s.metrics_port, Some(9100));
        let error = settings(&[("METRICS_PORT", "42010")]).unwrap_err();
        assert!(error.to_string().contains("METRICS_PORT"), "{error}");
        assert!(settings(&[("METRICS_PORT", "metrics")]).is_err());
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let error = settings(&[
            ("PORT", "http"),
            ("HOST", "nowhere"),
            ("DATABASE_URL", "mysql://x"),
        ])
        .unwrap_err();
        let text = error.to_string();
        assert!(text.contains("PORT"), "{text}");
        assert!(text.contains("HOST"), "{text}");
        assert!(text.contains("DATABASE_URL"), "{text}");
    }

    #[test]
    fn keys_and_domains_are_lists() {
        let s = settings(&[
            ("API_KEY", "0123456789abcdef"),
            ("API_KEYS", "fedcba9876543210, 1111111111111111"),
            ("DOMINIO", "PuntoA.ar, example.org"),
        ])
        .unwrap();
        assert_eq!(s.api_keys.len(), 3);
        assert_eq!(s.outbound.sender_domains, ["puntoa.ar", "example.org"]);
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(settings(&[("API_KEY", "short")]).is_err());
    }

    #[test]
    fn mongo_variables_are_noticed() {
        let s = settings(&[("MONGO_HOST", "localhost")]).unwrap();
        assert_eq!(s.legacy_mongo_vars, ["MONGO_HOST"]);
    }

    #[test]
    fn secrets_do_not_debug_print() {
        let s = settings(&[("API_KEY", "super-secret-value-123")]).unwrap();
        assert!(!format!("{s:?}").contains("super-secret"));
    }
}
