//! Bearer API keys: constant-time comparison over fixed-length digests.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::{HeaderMap, header, request::Parts};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

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
#[derive(Debug, Clone, Copy)]
pub struct Authenticated;

impl<S> FromRequestParts<S> for Authenticated
where
    S: Send + Sync,
    Arc<ApiKeys>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let keys = Arc::<ApiKeys>::from_ref(state);
        match bearer_token(&parts.headers) {
            Ok(token) if keys.accepts(token) => Ok(Authenticated),
            Ok(_) => {
                tracing::warn!(route = parts.uri.path(), "invalid API key");
                Err(ApiError::InvalidApiKey)
            }
            Err(CredentialsError::Missing) => Err(ApiError::MissingCredentials),
            Err(CredentialsError::Ambiguous) => Err(ApiError::bad_request(
                "Invalid Authorization header",
                "send exactly one Authorization header",
            )),
        }
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
