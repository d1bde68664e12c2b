//! Bearer API keys: constant-time comparison over fixed-length digests, behind the
//! brute-force lockout. Only the `Authorization` header is read (never the query
//! string), and a key never reaches a log line.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{FromRef, FromRequestParts, MatchedPath};
use axum::http::{HeaderMap, header, request::Parts};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::Security;
use super::client_ip::client_ip;
use crate::config::Secret;
use crate::error::ApiError;

/// The accepted keys, held only as SHA-256 digests.
pub struct ApiKeys {
    digests: Vec<[u8; 32]>,
}

impl ApiKeys {
    pub fn new(keys: &[Secret]) -> Self {
        Self {
            digests: keys.iter().map(|key| digest(key.expose())).collect(),
        }
    }

    /// Compares against every key without stopping early, so timing reveals nothing.
    pub fn accepts(&self, candidate: &str) -> bool {
        let candidate = digest(candidate);
        let mut matched = subtle::Choice::from(0);
        for key in &self.digests {
            matched |= key.ct_eq(&candidate);
        }
        matched.into()
    }
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// Why a request carries no usable credentials.
#[derive(Debug, PartialEq, Eq)]
pub enum CredentialsError {
    Missing,
    Ambiguous,
}

/// The token of a single `Authorization: Bearer …` header (scheme case-insensitive).
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, CredentialsError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next().ok_or(CredentialsError::Missing)?;
    if values.next().is_some() {
        return Err(CredentialsError::Ambiguous);
    }
    let text = value.to_str().map_err(|_| CredentialsError::Missing)?;
    let (scheme, token) = text
        .trim()
        .split_once(' ')
        .ok_or(CredentialsError::Missing)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(CredentialsError::Missing);
    }
    Ok(token)
}

/// Proof that the request carried a valid API key. Handlers take it as an argument.
///
/// A locked-out client IP gets 429 before its key is even looked at; a wrong key counts
/// towards the lockout, a right one clears the count.
#[derive(Debug, Clone, Copy)]
pub struct Authenticated;

impl<S> FromRequestParts<S> for Authenticated
where
    S: Send + Sync,
    Arc<ApiKeys>: FromRef<S>,
    Arc<Security>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let keys = Arc::<ApiKeys>::from_ref(state);
        let security = Arc::<Security>::from_ref(state);
        let lockout = &security.lockout;
        let ip = client_ip(&parts.extensions).map(|c| c.0);
        let route = parts
            .extensions
            .get::<MatchedPath>()
            .map_or("unmatched", MatchedPath::as_str);
        let now = Instant::now();
        if let Some(ip) = ip
            && let Err(left) = lockout.check(ip, now)
        {
            tracing::warn!(client_ip = %ip, route, "request from a locked-out client");
            return Err(ApiError::LockedOut {
                retry_after: left.as_secs() + u64::from(left.subsec_nanos() > 0),
            });
        }
        match bearer_token(&parts.headers) {
            Ok(token) if keys.accepts(token) => {
                if let Some(ip) = ip {
                    lockout.succeed(ip);
                }
                Ok(Authenticated)
            }
            Ok(_) => {
                fail(&security, ip, route, now);
                Err(ApiError::InvalidApiKey)
            }
            Err(CredentialsError::Missing) => {
                tracing::warn!(client_ip = %shown(ip), route, "request without an API key");
                Err(ApiError::MissingCredentials)
            }
            Err(CredentialsError::Ambiguous) => {
                tracing::warn!(client_ip = %shown(ip), route, "request with two Authorization headers");
                Err(ApiError::bad_request(
                    "Invalid Authorization header",
                    "send exactly one Authorization header",
                ))
            }
        }
    }
}

fn shown(ip: Option<IpAddr>) -> String {
    ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
}

/// Logs a wrong key (never the key itself) and counts it towards the lockout.
fn fail(security: &Security, ip: Option<IpAddr>, route: &str, now: Instant) {
    tracing::warn!(client_ip = %shown(ip), route, "invalid API key");
    if let Some(ip) = ip
        && security.lockout.fail(ip, now)
    {
        tracing::warn!(client_ip = %ip, route, "too many failed authentications: locked out");
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer_token(&headers(&["bearer abc"])), Ok("abc"));
        assert_eq!(bearer_token(&headers(&["BEARER  abc "])), Ok("abc"));
    }

    #[test]
    fn other_schemes_and_empty_tokens_are_missing_credentials() {
        for value in ["Basic abc", "Bearer", "Bearer   ", "abc"] {
            assert_eq!(
                bearer_token(&headers(&[value])),
                Err(CredentialsError::Missing),
                "{value}"
            );
        }
        assert_eq!(
            bearer_token(&HeaderMap::new()),
            Err(CredentialsError::Missing)
        );
    }

    #[test]
    fn two_authorization_headers_are_refused() {
        assert_eq!(
            bearer_token(&headers(&["Bearer a", "Bearer b"])),
            Err(CredentialsError::Ambiguous)
        );
    }

    #[test]
    fn any_configured_key_is_accepted() {
        let keys = ApiKeys::new(&[
            Secret::new("first-key-0123456"),
            Secret::new("second-key-012345"),
        ]);
        assert!(keys.accepts("first-key-0123456"));
        assert!(keys.accepts("second-key-012345"));
        assert!(!keys.accepts("first-key-012345"));
        assert!(!keys.accepts(""));
    }
}
