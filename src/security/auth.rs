//! Bearer API keys: constant-time comparison over fixed-length digests, behind the
//! brute-force lockout. Only the `Authorization` header is read (never the query
//! string), and a key never reaches a log line.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts, MatchedPath};
use axum::http::{HeaderMap, header, request::Parts};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::Security;
use super::client_ip::client_ip;
use super::guard::rate_limited;
use super::rate_limit::Policy;
use super::refusals::Refusal;
use crate::error::ApiError;
use crate::secret::Secret;
use crate::telemetry::metrics;

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
/// towards the lockout, a right one clears the count. Refusals are logged through
/// `Security::refusals`, at most once a minute per client and kind.
///
/// On the routes exempt from the per-IP limits (the send API, whose own limits count
/// accepted emails; a refused request is no email), every refused authentication counts
/// against the global limit (`RATE_LIMIT_GLOBAL`) instead, and over it the answer is 429.
/// Without that, a caller with no key, or a wrong one, could call them without bound.
/// This reuses the limit meant for routes without their own, rather than the lockout,
/// because a missing key is not a guess (it never locks a client out, see the README);
/// a valid key is never held back by this count.
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
        let ip = client_ip(&parts.extensions).map(|c| c.0);
        let route = parts
            .extensions
            .get::<MatchedPath>()
            .map_or("unmatched", MatchedPath::as_str);
        let admitted = match ip {
            Some(ip) => match security.lockout.check(ip).await {
                Ok(admitted) => Some((ip, admitted)),
                Err(left) => {
                    metrics::lockout_hit(route, "refused");
                    security
                        .refusals
                        .warn(Some(ip), route, Refusal::WhileLockedOut, None);
                    return Err(ApiError::LockedOut {
                        retry_after: left.as_secs() + u64::from(left.subsec_nanos() > 0),
                    });
                }
            },
            None => None,
        };
        let (kind, error) = match bearer_token(&parts.headers) {
            Ok(token) if keys.accepts(token) => {
                if let Some((ip, admitted)) = admitted {
                    security.lockout.succeed(ip, admitted).await;
                }
                return Ok(Authenticated);
            }
            Ok(_) => {
                fail(&security, ip, route).await;
                (Refusal::InvalidKey, ApiError::InvalidApiKey)
            }
            Err(CredentialsError::Missing) => (Refusal::MissingKey, ApiError::MissingCredentials),
            Err(CredentialsError::Ambiguous) => (
                Refusal::TwoAuthorizationHeaders,
                ApiError::bad_request(
                    "Invalid Authorization header",
                    "send exactly one Authorization header",
                ),
            ),
        };
        if let Some(limited) = limit_refusal(&security, ip, route).await {
            return Err(limited);
        }
        security.refusals.warn(ip, route, kind, None);
        Err(error)
    }
}

/// Counts a refusal on a route exempt from the per-IP limits against the global limit;
/// the 429 when that is spent. Other routes were counted by the guard already.
async fn limit_refusal(security: &Security, ip: Option<IpAddr>, route: &str) -> Option<ApiError> {
    let ip = ip?;
    if Policy::for_route(Some(route)).is_some() {
        return None;
    }
    let quota = security.limiter.check(Policy::Global, ip).await?;
    rate_limited(security, &quota, ip, route)
}

/// Counts a wrong key (never logged itself) towards the lockout.
async fn fail(security: &Security, ip: Option<IpAddr>, route: &str) {
    let Some(ip) = ip else {
        return;
    };
    if security.lockout.fail(ip).await {
        metrics::lockout_hit(route, "locked_out");
        security
            .refusals
            .warn(Some(ip), route, Refusal::LockedOut, None);
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
