//! Webmail passwords: argon2id with OWASP's parameters (19 MiB, 2 passes, 1 lane), PHC
//! strings in the database. There is never a default password.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

/// OWASP's password storage cheat sheet, argon2id: m=19456 KiB, t=2, p=1.
const MEMORY_KIB: u32 = 19_456;
const PASSES: u32 = 2;
const LANES: u32 = 1;

pub const MIN_CHARS: usize = 10;
/// Bounds the work one login attempt can ask for.
pub const MAX_CHARS: usize = 1_024;

/// A password that meets the rules; its text never reaches a log (`Debug` hides it).
pub struct Password(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("a password has at least {MIN_CHARS} characters")]
    TooShort,
    #[error("a password has at most {MAX_CHARS} characters")]
    TooLong,
}

impl Password {
    /// Checks the rules for a new password (login attempts use `verify` directly).
    pub fn new(text: &str) -> Result<Self, PasswordError> {
        let chars = text.chars().count();
        if chars < MIN_CHARS {
            Err(PasswordError::TooShort)
        } else if chars > MAX_CHARS {
            Err(PasswordError::TooLong)
        } else {
            Ok(Self(text.to_owned()))
        }
    }

    /// The PHC string to store, with a fresh random salt.
    pub fn hash(&self) -> String {
        let hash: PasswordHash = hasher()
            .hash_password(self.0.as_bytes())
            .expect("argon2id hashes any password with valid parameters");
        hash.to_string()
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

/// Whether `attempt` matches the stored PHC string; a malformed hash never matches.
pub fn verify(attempt: &str, stored: &str) -> bool {
    if attempt.chars().count() > MAX_CHARS {
        return false;
    }
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    hasher()
        .verify_password(attempt.as_bytes(), &parsed)
        .is_ok()
}

fn hasher() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, PASSES, LANES, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_and_nothing_else() {
        let hash = Password::new("correct horse battery").unwrap().hash();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify("correct horse battery", &hash));
        assert!(!verify("correct horse batterY", &hash));
        assert!(!verify("", &hash));
        assert!(!verify("correct horse battery", "not a hash"));
    }

    #[test]
    fn the_same_password_hashes_differently_each_time() {
        let password = Password::new("0123456789").unwrap();
        assert_ne!(password.hash(), password.hash());
    }

    #[test]
    fn short_and_huge_passwords_are_refused() {
        assert_eq!(
            Password::new("123456789").unwrap_err(),
            PasswordError::TooShort
        );
        assert!(Password::new("ññññññññññ").is_ok(), "characters, not bytes");
        assert_eq!(
            Password::new(&"x".repeat(MAX_CHARS + 1)).unwrap_err(),
            PasswordError::TooLong
        );
    }

    #[test]
    fn passwords_never_debug_print() {
        let password = Password::new("super secret 123").unwrap();
        assert!(!format!("{password:?}").contains("secret"));
    }
}
