//! The shape of webmail logins and readable addresses, checked before anything is stored.

use rand::Rng as _;
use rand::distr::Alphanumeric;

/// Logins and addresses fit a mail address's limit, and a B-tree entry.
const MAX_BYTES: usize = 320;

/// A login: an email address or a bare name (`webmaster`), trimmed and lower-cased.
pub fn normalize_login(text: &str) -> Result<String, String> {
    let login = text.trim().to_lowercase();
    if login.is_empty() || login.len() > MAX_BYTES {
        return Err(format!("a login has 1 to {MAX_BYTES} bytes"));
    }
    match login.split_once('@') {
        Some(_) => address(&login).map(|()| login),
        None if login
            .chars()
            .all(|c| c.is_alphanumeric() || "._-".contains(c)) =>
        {
            Ok(login)
        }
        None => Err(format!(
            "{login:?} is neither an email address nor a name of letters, digits, `.`, `_` and `-`"
        )),
    }
}

/// An address a user may read: `ana@x.org`, or a catch-all `*@x.org`; lower-cased.
pub fn normalize_address(text: &str) -> Result<String, String> {
    let address = text.trim().to_lowercase();
    if address.len() > MAX_BYTES {
        return Err(format!("an address has at most {MAX_BYTES} bytes"));
    }
    self::address(address.strip_prefix("*").unwrap_or(&address))
        .or_else(|_| self::address(&address))?;
    Ok(address)
}

fn address(text: &str) -> Result<(), String> {
    let valid = match text.rsplit_once('@') {
        Some((local, domain)) => {
            (local.is_empty() || !local.contains(char::is_whitespace))
                && domain.contains('.')
                && !domain.contains(char::is_whitespace)
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        }
        None => false,
    };
    if valid && !text.starts_with('@') {
        Ok(())
    } else if let Some(domain) = text.strip_prefix('@') {
        Err(format!("write a catch-all as *@{domain}"))
    } else {
        Err(format!("{text:?} is not an email address"))
    }
}

/// A random password for a user created without one: 20 letters and digits.
pub fn generate_password() -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(20)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_are_addresses_or_names_lower_cased() {
        assert_eq!(normalize_login(" Ana@X.org ").unwrap(), "ana@x.org");
        assert_eq!(normalize_login("webmaster").unwrap(), "webmaster");
        for bad in [
            "",
            "a b",
            "ana@",
            "@x.org",
            "x@nodot",
            "<script>",
            &"a".repeat(400),
        ] {
            assert!(normalize_login(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn addresses_may_be_catch_alls() {
        assert_eq!(normalize_address("*@PuntoA.ar").unwrap(), "*@puntoa.ar");
        assert_eq!(normalize_address("info@x.org").unwrap(), "info@x.org");
        assert!(normalize_address("@x.org").unwrap_err().contains("*@x.org"));
        assert!(normalize_address("nobody").is_err());
    }

    #[test]
    fn generated_passwords_are_long_and_differ() {
        let (a, b) = (generate_password(), generate_password());
        assert_eq!(a.len(), 20);
        assert_ne!(a, b);
    }
}
