//! Resource caps of the listeners and the webhook: each far above any real use, each
//! named and configurable, and the only refusals besides the body size (DESIGN §3).

use std::time::Duration;

use super::Env;
use crate::inbound::improvmx::PayloadLimits;

/// The default body limit on `/webhook`: 70 MiB, enough for ImprovMX's largest mail.
pub const DEFAULT_MAX_WEBHOOK_BYTES: usize = 70 * 1024 * 1024;

/// How webhook bodies are received.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// `MAX_WEBHOOK_BYTES`: the largest body.
    pub max_body_bytes: usize,
    /// `WEBHOOK_BYTES_IN_FLIGHT`: body bytes held by all deliveries at once, charged as
    /// they arrive; never less than one maximal body.
    pub bytes_in_flight: usize,
    /// `WEBHOOK_MIN_BYTES_PER_SEC`: after the grace period, a body that arrives slower
    /// than this on average gets 408; 0 disables.
    pub min_bytes_per_sec: u64,
    /// `WEBHOOK_BODY_GRACE_SECS`: how long a body may take before the rate counts.
    pub body_grace: Duration,
    /// `WEBHOOK_MAX_PARTS`, `WEBHOOK_MAX_JSON_KEYS`.
    pub payload: PayloadLimits,
}

/// Connection-level limits of both listeners.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// `MAX_CONNECTIONS`: open connections at once; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// `HTTP_HEADER_TIMEOUT_SECS`: time to send a request's headers, and to start the
    /// next request on a kept-alive connection.
    pub header_timeout: Duration,
    /// `HTTP_REQUEST_TIMEOUT_SECS`: time until a response starts (the webhook, whose
    /// body has its own rate rule, and streaming bodies are not cut).
    pub request_timeout: Duration,
}

impl WebhookSettings {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> Self {
        let defaults = PayloadLimits::default();
        let settings = Self {
            max_body_bytes: env.parse("MAX_WEBHOOK_BYTES", DEFAULT_MAX_WEBHOOK_BYTES),
            bytes_in_flight: env.parse("WEBHOOK_BYTES_IN_FLIGHT", 256 * 1024 * 1024),
            min_bytes_per_sec: env.parse("WEBHOOK_MIN_BYTES_PER_SEC", 16 * 1024),
            body_grace: seconds(env, "WEBHOOK_BODY_GRACE_SECS", 10),
            payload: PayloadLimits {
                max_parts: env.parse("WEBHOOK_MAX_PARTS", defaults.max_parts),
                max_json_items: env.parse("WEBHOOK_MAX_JSON_KEYS", defaults.max_json_items),
            },
        };
        if settings.max_body_bytes < 1024 {
            env.problem("MAX_WEBHOOK_BYTES", "must be at least 1024");
        }
        if settings.payload.max_json_items < 100 {
            env.problem("WEBHOOK_MAX_JSON_KEYS", "must be at least 100");
        }
        settings
    }
}

impl HttpSettings {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> Self {
        let settings = Self {
            max_connections: env.parse("MAX_CONNECTIONS", 10_000),
            header_timeout: seconds(env, "HTTP_HEADER_TIMEOUT_SECS", 30),
            request_timeout: seconds(env, "HTTP_REQUEST_TIMEOUT_SECS", 60),
        };
        if settings.max_connections == 0 {
            env.problem("MAX_CONNECTIONS", "must be at least 1");
        }
        settings
    }
}

/// Whole seconds from 1 to a day: a timeout of 0 would refuse everything, and one
/// longer than a day protects nothing.
fn seconds<F: Fn(&str) -> Option<String>>(env: &mut Env<F>, name: &str, default: u64) -> Duration {
    Duration::from_secs(
        env.parse_with(name, default, |text| match text.parse::<u64>() {
            Ok(secs) if (1..=86_400).contains(&secs) => Ok(secs),
            _ => Err("expected whole seconds from 1 to 86400".into()),
        }),
    )
}
