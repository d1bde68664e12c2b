//! SPF, DKIM and DMARC verdicts for badges, read from the `Authentication-Results`
//! (RFC 8601) and `Received-SPF` (RFC 7208) headers that the receiving MX added.

use crate::email::Message;

/// One badge: the method, its verdict, and how it should look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Badge {
    pub name: &'static str,
    pub verdict: String,
    /// `pass`, `fail` or `neutral`, for the CSS.
    pub class: &'static str,
    pub title: String,
}

const METHODS: [(&str, &str); 3] = [("spf", "SPF"), ("dkim", "DKIM"), ("dmarc", "DMARC")];

/// The verdicts found in the message's headers, in the order SPF, DKIM, DMARC; a method
/// the headers do not mention has no badge.
pub fn badges(message: &Message) -> Vec<Badge> {
    let results: Vec<&str> = message.header_values("authentication-results").collect();
    let received_spf = message.header("received-spf");
    METHODS
        .into_iter()
        .filter_map(|(method, name)| {
            let verdict = results
                .iter()
                .find_map(|value| verdict_in(value, method))
                .or_else(|| {
                    (method == "spf")
                        .then(|| received_spf.and_then(first_word))
                        .flatten()
                })?;
            Some(badge(name, verdict))
        })
        .collect()
}

fn badge(name: &'static str, verdict: String) -> Badge {
    let class = match verdict.as_str() {
        "pass" => "pass",
        "fail" | "softfail" | "permerror" => "fail",
        _ => "neutral",
    };
    Badge {
        name,
        title: format!("{name} {verdict}, as reported by the receiving server"),
        verdict,
        class,
    }
}

/// `dkim=pass` in `mx.example; spf=pass smtp.mailfrom=…; dkim=pass header.d=…`.
fn verdict_in(value: &str, method: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|clause| {
        let (name, rest) = clause.trim().split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case(method)
            .then(|| first_word(rest))
            .flatten()
    })
}

fn first_word(text: &str) -> Option<String> {
    let word: String = text
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    (!word.is_empty() && word.len() <= 16).then(|| word.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn verdicts(headers: Value) -> Vec<(&'static str, String, &'static str)> {
        let document = json!({ "headers": headers });
        let message = crate::inbound::improvmx::message(document.as_object().unwrap());
        badges(&message)
            .into_iter()
            .map(|b| (b.name, b.verdict, b.class))
            .collect()
    }

    #[test]
    fn authentication_results_give_each_methods_verdict() {
        let headers = json!({
            "Authentication-Results": ["mx1.improvmx.com; spf=pass smtp.mailfrom=x.org; dkim=FAIL header.d=x.org; dmarc=none"]
        });
        assert_eq!(
            verdicts(headers),
            [
                ("SPF", "pass".into(), "pass"),
                ("DKIM", "fail".into(), "fail"),
                ("DMARC", "none".into(), "neutral")
            ]
        );
    }

    #[test]
    fn received_spf_stands_in_for_a_missing_spf_result() {
        let headers = json!({"received-spf": "softfail (domain does not designate)", "Authentication-Results": "mx; dkim=pass"});
        assert_eq!(
            verdicts(headers),
            [
                ("SPF", "softfail".into(), "fail"),
                ("DKIM", "pass".into(), "pass")
            ]
        );
    }

    #[test]
    fn no_headers_no_badges() {
        assert!(badges(&Message::default()).is_empty());
        assert!(verdicts(json!({"Subject": "x"})).is_empty());
    }
}
