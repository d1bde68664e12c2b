//! Mail addresses parsed from untrusted input: one mailbox per element, no routing tricks,
//! IDNA-normalised, case-folded domains.

use lettre::Address;
use lettre::message::Mailbox;

/// Why an address element was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressProblem {
    Empty,
    /// Several mailboxes inside one element (`a@x, b@y`).
    List,
    /// `!` or `%` in the local part, quoted local parts, source routes.
    Routing,
    Invalid(&'static str),
}

impl AddressProblem {
    pub fn describe(&self) -> &'static str {
        match self {
            AddressProblem::Empty => "is empty",
            AddressProblem::List => "holds more than one address; send a list instead",
            AddressProblem::Routing => {
                "uses a routing trick (!, %, quoted local part or source route)"
            }
            AddressProblem::Invalid(why) => why,
        }
    }
}

/// A mailbox that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedAddress {
    pub name: Option<String>,
    pub local: String,
    /// ASCII (punycode), lower-case.
    pub domain: String,
}

impl ParsedAddress {
    pub fn address(&self) -> String {
        format!("{}@{}", self.local, self.domain)
    }

    /// The lettre mailbox; the parts were validated, so this only fails on lettre's own rules.
    pub fn mailbox(&self) -> Result<Mailbox, AddressProblem> {
        let address = Address::new(&self.local, &self.domain)
            .map_err(|_| AddressProblem::Invalid("is not a valid address"))?;
        Ok(Mailbox::new(self.name.clone(), address))
    }
}

/// Parses `user@domain`, `Name <user@domain>` or `"Name" <user@domain>`.
/// Header-injection characters are checked before this runs.
pub fn parse_address(raw: &str) -> Result<ParsedAddress, AddressProblem> {
    let text = raw.trim();
    if text.is_empty() {
        return Err(AddressProblem::Empty);
    }
    let (name, spec) = match text.strip_suffix('>') {
        Some(head) => {
            let open = head
                .rfind('<')
                .ok_or(AddressProblem::Invalid("has an unmatched '>'"))?;
            (parse_name(&head[..open])?, &head[open + 1..])
        }
        None => (None, text),
    };
    let spec = spec.trim();
    if spec.starts_with('@') {
        return Err(AddressProblem::Routing);
    }
    if spec.contains([',', ';', '<', '>', ' ']) {
        return Err(if spec.matches('@').count() > 1 {
            AddressProblem::List
        } else {
            AddressProblem::Invalid("is not a valid address")
        });
    }
    let (local, domain) = spec
        .rsplit_once('@')
        .ok_or(AddressProblem::Invalid("has no @domain"))?;
    check_local(local)?;
    Ok(ParsedAddress {
        name,
        local: local.to_owned(),
        domain: normalise_domain(domain)?,
    })
}

fn parse_name(raw: &str) -> Result<Option<String>, AddressProblem> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let name = match raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        Some(quoted) => unquote(quoted)?,
        None => {
            if raw.contains(['<', '>', '@', ',', ';', '"']) {
                return Err(AddressProblem::List);
            }
            raw.to_owned()
        }
    };
    Ok(Some(name).filter(|n| !n.trim().is_empty()))
}

/// Undoes `\"` and `\\`; a bare quote inside means the element held more than one name.
fn unquote(quoted: &str) -> Result<String, AddressProblem> {
    let mut name = String::with_capacity(quoted.len());
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => name.push(
                chars
                    .next()
                    .ok_or(AddressProblem::Invalid("has a bad display name"))?,
            ),
            '"' => return Err(AddressProblem::List),
            c => name.push(c),
        }
    }
    Ok(name)
}

fn check_local(local: &str) -> Result<(), AddressProblem> {
    if local.is_empty() || local.len() > 64 {
        return Err(AddressProblem::Invalid(
            "has an empty or over-long local part",
        ));
    }
    if local.contains(['!', '%', '"', '\\', '@', ':']) {
        return Err(AddressProblem::Routing);
    }
    let atom = |c: char| c.is_ascii_alphanumeric() || "#$&'*+-/=?^_`{|}~.".contains(c);
    if !local.chars().all(atom)
        || local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..")
    {
        return Err(AddressProblem::Invalid("has an invalid local part"));
    }
    Ok(())
}

/// IDNA (UTS #46) to ASCII, lower-cased, one trailing dot dropped; IP literals refused.
pub fn normalise_domain(raw: &str) -> Result<String, AddressProblem> {
    let raw = raw.strip_suffix('.').unwrap_or(raw);
    if raw.starts_with('[') {
        return Err(AddressProblem::Invalid(
            "uses an IP literal instead of a domain",
        ));
    }
    let ascii = idna::domain_to_ascii(raw)
        .map_err(|_| AddressProblem::Invalid("has an invalid domain"))?
        .to_ascii_lowercase();
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if ascii.len() > 253 || !ascii.contains('.') || !ascii.split('.').all(label_ok) {
        return Err(AddressProblem::Invalid("has an invalid domain"));
    }
    Ok(ascii)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str) -> ParsedAddress {
        parse_address(raw).unwrap_or_else(|e| panic!("{raw}: {e:?}"))
    }

    #[test]
    fn plain_and_named_forms_parse() {
        assert_eq!(ok("a@example.org").address(), "a@example.org");
        let named = ok("Ana Pérez <ana@Example.ORG>");
        assert_eq!(named.name.as_deref(), Some("Ana Pérez"));
        assert_eq!(named.address(), "ana@example.org");
        assert_eq!(
            ok(r#""Pérez, Ana" <ana@example.org>"#).name.as_deref(),
            Some("Pérez, Ana")
        );
    }

    #[test]
    fn domains_are_idna_normalised_and_case_folded() {
        assert_eq!(ok("x@BÜCHER.example").domain, "xn--bcher-kva.example");
        assert_eq!(ok("x@EXAMPLE.org.").domain, "example.org");
    }

    #[test]
    fn routing_tricks_are_refused() {
        for raw in [
            "victim!a@example.org",
            "a%b@example.org",
            r#""a@b"@example.org"#,
            "@relay.example:a@example.org",
            "<@relay.example:a@example.org>",
        ] {
            assert_eq!(parse_address(raw), Err(AddressProblem::Routing), "{raw}");
        }
    }

    #[test]
    fn lists_inside_one_element_are_refused() {
        for raw in [
            "a@example.org, b@example.org",
            "a@example.org;b@example.org",
            "A <a@example.org>, B <b@example.org>",
            r#""A" <a@example.org>, "B" <b@example.org>"#,
        ] {
            assert_eq!(parse_address(raw), Err(AddressProblem::List), "{raw}");
        }
    }

    #[test]
    fn malformed_addresses_are_refused() {
        for raw in [
            "",
            "   ",
            "nobody",
            "a@",
            "@",
            "a@localhost",
            "a@[127.0.0.1]",
            "a..b@x.org",
            "a@-x.org",
            "<a@x.org",
        ] {
            assert!(parse_address(raw).is_err(), "{raw}");
        }
    }
}
