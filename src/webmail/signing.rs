//! Short-lived signed URLs for what a sandboxed body frame loads: its requests carry no
//! cookie (the frame's origin is opaque), so the URL itself names the user, the email,
//! the part and an expiry, under a keyed BLAKE3 MAC with a key kept in the database.

use chrono::{DateTime, Utc};

use crate::email::EmailId;

/// How long a signed URL works: long enough to read a message, short enough that a
/// leaked URL (a log, a copied link) soon stops working.
pub const LIFETIME_SECS: i64 = 30 * 60;

pub struct Signer {
    key: [u8; 32],
}

/// The signed fields of a URL, as its query string carries them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Signature {
    /// The user the URL was made for.
    pub u: i64,
    /// Expiry, in seconds since the epoch.
    pub x: i64,
    /// The MAC, hex.
    pub s: String,
}

impl Signer {
    /// A signer from a stored 32-byte hex key; `None` when it is malformed.
    pub fn from_hex(key: &str) -> Option<Self> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(key, &mut bytes).ok()?;
        Some(Self { key: bytes })
    }

    /// A fresh random key, hex, for the first start.
    pub fn new_key() -> String {
        hex::encode(rand::random::<[u8; 32]>())
    }

    /// `u=…&x=…&s=…` for `part` of the email, made for `user`, valid from `now`.
    pub fn query(&self, user: i64, email: EmailId, part: &str, now: DateTime<Utc>) -> String {
        let expires = now.timestamp() + LIFETIME_SECS;
        let mac = self.mac(user, email, part, expires);
        format!("u={user}&x={expires}&s={mac}")
    }

    /// Whether `signature` was made by this server for `part` of the email and is unexpired.
    pub fn verify(
        &self,
        signature: &Signature,
        email: EmailId,
        part: &str,
        now: DateTime<Utc>,
    ) -> bool {
        let Ok(given) = blake3::Hash::from_hex(&signature.s) else {
            return false;
        };
        let expected = blake3::Hash::from_hex(self.mac(signature.u, email, part, signature.x))
            .expect("a MAC is hex");
        // `Hash` compares in constant time.
        signature.x >= now.timestamp() && given == expected
    }

    fn mac(&self, user: i64, email: EmailId, part: &str, expires: i64) -> String {
        let message = format!("{user}\n{email}\n{part}\n{expires}");
        blake3::keyed_hash(&self.key, message.as_bytes())
            .to_hex()
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(query: &str) -> Signature {
        let mut fields = query.split('&').map(|kv| kv.split_once('=').unwrap().1);
        Signature {
            u: fields.next().unwrap().parse().unwrap(),
            x: fields.next().unwrap().parse().unwrap(),
            s: fields.next().unwrap().to_owned(),
        }
    }

    #[test]
    fn a_signature_opens_only_its_own_part_user_and_time() {
        let signer = Signer::from_hex(&Signer::new_key()).unwrap();
        let now = Utc::now();
        let email = EmailId::generate(now);
        let signature = parse(&signer.query(7, email, "body", now));
        assert!(signer.verify(&signature, email, "body", now));
        assert!(!signer.verify(&signature, email, "inlines/0", now));
        assert!(!signer.verify(&signature, EmailId::generate(now), "body", now));
        let other_user = Signature {
            u: 8,
            ..signature.clone()
        };
        assert!(!signer.verify(&other_user, email, "body", now));
        let later = now + chrono::Duration::seconds(LIFETIME_SECS + 1);
        assert!(!signer.verify(&signature, email, "body", later));
        let other_key = Signer::from_hex(&Signer::new_key()).unwrap();
        assert!(!other_key.verify(&signature, email, "body", now));
        let garbage = Signature {
            s: "zz".into(),
            ..signature
        };
        assert!(!signer.verify(&garbage, email, "body", now));
    }
}
