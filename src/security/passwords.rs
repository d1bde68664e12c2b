//! Webmail passwords: argon2id with OWASP's parameters (19 MiB, 2 passes, 1 lane), PHC
//! strings in the database. There is never a default password.
//!
//! The 19 MiB each hash works in is reserved here rather than by the crate: glibc keeps a
//! freed block of that size in the freeing thread's arena, so every blocking thread that
//! verified a login held 19 MiB for good (5 logins: 21 → 80 MiB of RSS). A reservation
//! above glibc's largest mmap threshold is always mapped on its own and unmapped when
//! freed; only the pages the hash touches become resident.

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};

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
        let params = params();
        let salt = Salt::generate();
        let mut output = [0; Params::DEFAULT_OUTPUT_LEN];
        derive(
            &params,
            Version::V0x13,
            self.0.as_bytes(),
            &salt,
            &mut output,
        )
        .expect("argon2id hashes any password with valid parameters");
        PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params).expect("valid argon2 parameters"),
            salt: Some(salt),
            hash: Some(Output::new(&output).expect("a 32-byte output")),
        }
        .to_string()
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
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let is_argon2id = parsed.algorithm == Algorithm::Argon2id.ident();
    let version = parsed.version.map_or(Ok(Version::V0x13), Version::try_from);
    let (Ok(params), Ok(version)) = (Params::try_from(&parsed), version) else {
        return false;
    };
    let mut output = vec![0; expected.len()];
    is_argon2id
        && derive(&params, version, attempt.as_bytes(), salt, &mut output).is_ok()
        // `Output` compares in constant time.
        && Output::new(&output).is_ok_and(|computed| &computed == expected)
}

fn params() -> Params {
    Params::new(MEMORY_KIB, PASSES, LANES, None).expect("valid argon2 parameters")
}

/// argon2id of `password` into `output`, in memory that is returned to the system after.
fn derive(
    params: &Params,
    version: Version,
    password: &[u8],
    salt: &[u8],
    output: &mut [u8],
) -> Result<(), argon2::Error> {
    let mut memory = working_memory(params.block_count());
    Argon2::new(Algorithm::Argon2id, version, params.clone()).hash_password_into_with_memory(
        password,
        salt,
        output,
        &mut memory[..],
    )
}

/// glibc's largest dynamic mmap threshold (`DEFAULT_MMAP_THRESHOLD_MAX` on 64-bit).
const ALWAYS_MAPPED_BYTES: usize = 32 * 1024 * 1024;

/// `blocks` zeroed blocks in a reservation glibc always maps apart (see the module doc).
fn working_memory(blocks: usize) -> Vec<Block> {
    let reserved = blocks.max(ALWAYS_MAPPED_BYTES / size_of::<Block>() + 1);
    let mut memory = Vec::with_capacity(reserved);
    memory.resize(blocks, Block::default());
    memory
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
    fn a_hash_of_the_crate_itself_verifies() {
        use argon2::password_hash::PasswordHasher as _;
        let hash = Argon2::new(Algorithm::Argon2id, Version::V0x13, params())
            .hash_password(b"correct horse battery")
            .unwrap()
            .to_string();
        assert!(verify("correct horse battery", &hash));
        assert!(!verify("correct horse batterY", &hash));
    }

    #[test]
    fn the_working_memory_is_reserved_above_the_mmap_threshold() {
        let memory = working_memory(params().block_count());
        assert_eq!(
            memory.len() * size_of::<Block>(),
            MEMORY_KIB as usize * 1024
        );
        assert!(memory.capacity() * size_of::<Block>() > ALWAYS_MAPPED_BYTES);
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
