//! Webhook authenticity: ImprovMX signs nothing, so a secret path segment and a source
//! allowlist stand in. Both are decided from the request line and the client IP alone,
//! before the body is read. Also here: the webhook takes JSON only (`require_json`).

use std::net::IpAddr;

use axum::extract::Request;
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::client_ip::IpSet;
use crate::error::ApiError;
use crate::secret::Secret;

/// `WEBHOOK_SECRET` and `WEBHOOK_ALLOWED_IPS`; neither set means anyone may deliver.
#[derive(Debug, Clone, Default)]
pub struct WebhookPolicy {
    secret: Option<[u8; 32]>,
    allowed: Option<IpSet>,
}

/// A delivery that may proceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookAccess {
    /// It proved itself (secret or allowlisted address): no per-IP limits.
    Authenticated,
    /// Nothing is configured: an open webhook, limited per IP.
    Anonymous,
}

/// Why a delivery is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookRefusal {
    AddressNotAllowed,
    /// Plain `/webhook` or a wrong `/webhook/<secret>` while a secret is configured.
    WrongSecret,
    /// `/webhook/<anything>` while no secret is configured: not a route at all.
    NoSecretConfigured,
}

impl WebhookPolicy {
    pub fn new(secret: Option<&Secret>, allowed: Option<IpSet>) -> Self {
        Self {
            secret: secret.map(|s| digest(s.expose())),
            allowed: allowed.filter(|set| !set.is_empty()),
        }
    }

    /// Decides on a delivery from `ip`, whose path carried `given` after `/webhook/`.
    pub fn check(&self, ip: IpAddr, given: Option<&str>) -> Result<WebhookAccess, WebhookRefusal> {
        if let Some(allowed) = &self.allowed
            && !allowed.contains(ip)
        {
            return Err(WebhookRefusal::AddressNotAllowed);
        }
        match (&self.secret, given) {
            (None, Some(_)) => Err(WebhookRefusal::NoSecretConfigured),
            (Some(_), None) => Err(WebhookRefusal::WrongSecret),
            (Some(secret), Some(given)) => {
                if bool::from(secret.ct_eq(&digest(given))) {
                    Ok(WebhookAccess::Authenticated)
                } else {
                    Err(WebhookRefusal::WrongSecret)
                }
            }
            (None, None) if self.allowed.is_some() => Ok(WebhookAccess::Authenticated),
            (None, None) => Ok(WebhookAccess::Anonymous),
        }
    }
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// Refuses a webhook body that is not `application/json` (parameters such as
/// `; charset=utf-8` allowed) with 415, before the body is read.
///
/// ImprovMX always sends `application/json`. What a web page on another site can send
/// without a CORS preflight is exactly what this refuses: forms (`text/plain`,
/// `application/x-www-form-urlencoded`, `multipart/form-data`) and, since `fetch` with a
/// `Blob` body sends no type at all, a missing `Content-Type` too. Anything else needs a
/// preflight, which the webhook never answers as allowed (see `cors`).
pub async fn require_json(request: Request, next: Next) -> Response {
    if is_json(request.headers()) {
        next.run(request).await
    } else {
        ApiError::UnsupportedMediaType {
            expected: "application/json",
        }
        .into_response()
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return false;
    };
    let essence = value.to_str().unwrap_or_default().split(';').next();
    essence.is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

/// A secret must be long and fit in a URL path segment unescaped.
pub fn validate_secret(secret: &str) -> Result<(), String> {
    if secret.len() < 16 {
        return Err("must be at least 16 characters long".into());
    }
    if !secret
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
    {
        return Err("may only hold letters, digits and - . _ ~".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "s3cret-path-0123456789";

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn allowed(items: &[&str]) -> Option<IpSet> {
        Some(IpSet::parse_list(&items.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap())
    }

    #[test]
    fn without_configuration_the_webhook_is_open_but_anonymous() {
        let policy = WebhookPolicy::default();
        assert_eq!(
            policy.check(ip("192.0.2.1"), None),
            Ok(WebhookAccess::Anonymous)
        );
        assert_eq!(
            policy.check(ip("192.0.2.1"), Some("guess")),
            Err(WebhookRefusal::NoSecretConfigured)
        );
    }

    #[test]
    fn with_a_secret_only_the_secret_path_delivers() {
        let policy = WebhookPolicy::new(Some(&Secret::new(SECRET)), None);
        let client = ip("192.0.2.1");
        assert_eq!(
            policy.check(client, Some(SECRET)),
            Ok(WebhookAccess::Authenticated)
        );
        assert_eq!(policy.check(client, None), Err(WebhookRefusal::WrongSecret));
        assert_eq!(
            policy.check(client, Some(&SECRET[..SECRET.len() - 1])),
            Err(WebhookRefusal::WrongSecret)
        );
        assert_eq!(
            policy.check(client, Some("")),
            Err(WebhookRefusal::WrongSecret)
        );
    }

    #[test]
    fn the_allowlist_refuses_other_addresses_and_authenticates_its_own() {
        let policy = WebhookPolicy::new(None, allowed(&["198.51.100.0/24"]));
        assert_eq!(
            policy.check(ip("198.51.100.9"), None),
            Ok(WebhookAccess::Authenticated)
        );
        assert_eq!(
            policy.check(ip("192.0.2.1"), None),
            Err(WebhookRefusal::AddressNotAllowed)
        );
        let both = WebhookPolicy::new(Some(&Secret::new(SECRET)), allowed(&["198.51.100.9"]));
        assert_eq!(
            both.check(ip("198.51.100.9"), None),
            Err(WebhookRefusal::WrongSecret)
        );
        assert_eq!(
            both.check(ip("192.0.2.1"), Some(SECRET)),
            Err(WebhookRefusal::AddressNotAllowed)
        );
        assert_eq!(
            both.check(ip("198.51.100.9"), Some(SECRET)),
            Ok(WebhookAccess::Authenticated)
        );
    }

    #[test]
    fn only_json_bodies_are_taken() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, value.parse().unwrap());
            is_json(&headers)
        };
        assert!(with("application/json"));
        assert!(with("application/json; charset=utf-8"));
        assert!(with(" Application/JSON ;charset=UTF-8"));
        for other in [
            "text/plain",
            "application/jsonp",
            "application/x-www-form-urlencoded",
            "",
        ] {
            assert!(!with(other), "{other}");
        }
        assert!(!is_json(&HeaderMap::new()));
    }

    #[test]
    fn secrets_must_be_long_and_path_safe() {
        assert!(validate_secret(SECRET).is_ok());
        assert!(validate_secret("short").is_err());
        assert!(validate_secret("with/slash-0123456789").is_err());
        assert!(validate_secret("with space 0123456789").is_err());
    }
}
