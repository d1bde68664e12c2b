//! CSRF tokens: each session has one; an anonymous visitor (login, setup) gets a
//! pre-session token in its own cookie (double submit). Every POST must send the
//! expected token back, as the `csrf` form field or the `X-CSRF-Token` header.

use subtle::ConstantTimeEq as _;

/// The form field that carries the token.
pub const FIELD: &str = "csrf";
/// The header scripts send it in (read from `<meta name="csrf-token">`).
pub const HEADER: &str = "x-csrf-token";

/// A fresh random token: 256 bits, hex.
pub fn new_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// The `csrf` field of an `application/x-www-form-urlencoded` body.
pub fn form_token(body: &[u8]) -> Option<String> {
    url::form_urlencoded::parse(body)
        .find(|(name, _)| name == FIELD)
        .map(|(_, value)| value.into_owned())
}

/// Whether `given` is the expected token; an empty expectation matches nothing.
pub fn matches(expected: &str, given: Option<&str>) -> bool {
    match given {
        Some(given) if !expected.is_empty() => {
            bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_token_matches() {
        let token = new_token();
        assert!(matches(&token, Some(&token)));
        assert!(!matches(&token, Some("wrong")));
        assert!(!matches(&token, None));
        assert!(!matches("", Some("")));
    }

    #[test]
    fn the_token_is_read_from_a_form_body() {
        assert_eq!(form_token(b"a=1&csrf=abc%2B&b=2").as_deref(), Some("abc+"));
        assert_eq!(form_token(b"a=1"), None);
    }
}
