//! Content checks: header injection, spam heuristics and links. All regexes are the
//! `regex` crate's, which runs in linear time on any input.

use std::sync::LazyLock;

use base64::Engine as _;
use regex::Regex;

/// Characters that end or fold a header line somewhere (SMTP, MIME, Unicode-aware parsers).
pub fn is_line_breaking(c: char) -> bool {
    matches!(
        c,
        '\r' | '\n' | '\0' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}'
    )
}

/// A header value is refused when it holds a line break, any other control character
/// but tab, or an encoded word (`=?…?=`) that decodes to one.
pub fn header_injection(value: &str) -> Option<&'static str> {
    if value.chars().any(is_line_breaking) {
        return Some("contains a line break or NUL");
    }
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Some("contains a control character");
    }
    if encoded_words_smuggle(value) {
        return Some("contains an encoded word that decodes to a line break");
    }
    None
}

static ENCODED_WORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"=\?[^?\s]*\?([BbQq])\?([^?\s]*)\?=").expect("valid regex"));

fn encoded_words_smuggle(value: &str) -> bool {
    ENCODED_WORD.captures_iter(value).any(|word| {
        let payload = &word[2];
        let bytes = if word[1].eq_ignore_ascii_case("b") {
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(payload.trim_end_matches('='))
                .unwrap_or_default()
        } else {
            decode_q(payload)
        };
        let text = String::from_utf8_lossy(&bytes);
        bytes
            .iter()
            .any(|b| matches!(b, b'\r' | b'\n' | 0 | 0x0B | 0x0C))
            || text.chars().any(is_line_breaking)
    })
}

fn decode_q(payload: &str) -> Vec<u8> {
    let bytes = payload.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'_' => out.push(b' '),
            b'=' if i + 2 < bytes.len() => match hex::decode(&bytes[i + 1..i + 3]) {
                Ok(decoded) if decoded.len() == 1 => {
                    out.push(decoded[0]);
                    i += 2;
                }
                _ => out.push(b'='),
            },
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// Spam heuristics over the subject and the body's text.
pub struct SpamRules {
    phrases: Option<Regex>,
}

/// At least this many cased letters before the uppercase ratio means anything.
const MIN_CASED_LETTERS: usize = 10;

static RUNS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[!！]{3,}|[$＄]{3,}").expect("valid regex"));

impl SpamRules {
    pub fn new(phrases: &[String]) -> Self {
        let alternatives: Vec<String> = phrases
            .iter()
            .map(|p| p.trim())
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.split_whitespace()
                    .map(regex::escape)
                    .collect::<Vec<_>>()
                    .join(r"\s+")
            })
            .collect();
        let phrases = (!alternatives.is_empty()).then(|| {
            Regex::new(&format!(
                r"(?i)(?:^|[^\p{{L}}\p{{N}}_])(?:{})(?:$|[^\p{{L}}\p{{N}}_])",
                alternatives.join("|")
            ))
            .expect("escaped phrases form a valid regex")
        });
        Self { phrases }
    }

    /// The first heuristic the text trips, if any.
    pub fn check(&self, text: &str) -> Option<String> {
        if let Some(found) = self.phrases.as_ref().and_then(|re| re.find(text)) {
            let phrase = found.as_str().trim_matches(|c: char| !c.is_alphanumeric());
            return Some(format!("contains the spam phrase {phrase:?}"));
        }
        if RUNS.is_match(text) {
            return Some("contains a run of '!' or '$'".into());
        }
        let (upper, cased) = text.chars().fold((0usize, 0usize), |(u, n), c| {
            if c.is_uppercase() {
                (u + 1, n + 1)
            } else if c.is_lowercase() {
                (u, n + 1)
            } else {
                (u, n)
            }
        });
        if cased >= MIN_CASED_LETTERS && upper * 2 > cased {
            return Some(format!("is {}% uppercase (limit 50%)", upper * 100 / cased));
        }
        None
    }
}

static URL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"(?i)(?:https?://|www\.)[^\s<>"'`]+"#).expect("valid regex"));

/// Web links in plain text (or in raw HTML, attributes included).
pub fn text_urls(text: &str) -> Vec<String> {
    URL.find_iter(text)
        .map(|m| {
            m.as_str()
                .trim_end_matches(['.', ',', ')', ';', '!', '?'])
                .to_owned()
        })
        .collect()
}

/// The lower-case host of a link, if it has one (`www.` and `//` forms included).
pub fn url_host(link: &str) -> Option<String> {
    let link = link.trim();
    let absolute = if link.starts_with("//") {
        format!("http:{link}")
    } else if link
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("www."))
    {
        format!("http://{link}")
    } else {
        link.to_owned()
    };
    let url = url::Url::parse(&absolute).ok()?;
    let host = url.host_str()?.trim_end_matches('.').to_ascii_lowercase();
    Some(host)
}

/// URL shorteners, recognised by host, subdomains included.
pub struct Shorteners {
    hosts: Vec<String>,
    bare: Option<Regex>,
}

impl Shorteners {
    pub fn new(hosts: &[String]) -> Self {
        let hosts: Vec<String> = hosts
            .iter()
            .map(|h| h.trim().to_ascii_lowercase())
            .collect();
        let alternatives: Vec<String> = hosts.iter().map(|h| regex::escape(h)).collect();
        // A shortener named without a scheme: `see bit.ly/abc`.
        let bare = (!alternatives.is_empty()).then(|| {
            Regex::new(&format!(
                r"(?i)(?:^|[^\w.-])(?:[\w-]+\.)*(?:{})(?:/|$|[^\w.-])",
                alternatives.join("|")
            ))
            .expect("escaped hosts form a valid regex")
        });
        Self { hosts, bare }
    }

    pub fn is_shortener(&self, host: &str) -> bool {
        self.hosts.iter().any(|h| {
            host == h
                || host
                    .strip_suffix(h.as_str())
                    .is_some_and(|p| p.ends_with('.'))
        })
    }

    /// The first shortener among `links` or named bare in `text`.
    pub fn find(&self, links: &[String], text: &str) -> Option<String> {
        links
            .iter()
            .filter_map(|link| url_host(link))
            .find(|host| self.is_shortener(host))
            .or_else(|| {
                self.bare.as_ref()?.find(text).map(|m| {
                    m.as_str()
                        .trim_matches(|c: char| !c.is_alphanumeric())
                        .to_owned()
                })
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_break_is_injection() {
        for value in [
            "a\r\nBcc: x@evil.example",
            "a\nb",
            "a\rb",
            "a\0b",
            "a\u{0B}b",
            "a\u{0C}b",
            "a\u{85}b",
            "a\u{2028}b",
            "a\u{2029}b",
            "a\u{1B}b",
        ] {
            assert!(header_injection(value).is_some(), "{value:?}");
        }
        assert_eq!(header_injection("Hola, ¿qué tal?\tok"), None);
    }

    #[test]
    fn encoded_words_that_decode_to_line_breaks_are_injection() {
        assert!(header_injection("=?utf-8?B?aGkNCkJjYzogeEBldmlsLmV4YW1wbGU=?=").is_some());
        assert!(header_injection("=?UTF-8?Q?hi=0D=0ABcc:_x@evil.example?=").is_some());
        assert!(header_injection("=?utf-8?q?x=E2=80=A8y?=").is_some());
        assert_eq!(header_injection("=?utf-8?Q?caf=C3=A9?="), None);
        assert_eq!(header_injection("=?utf-8?B?Y2Fmw6k=?="), None);
        assert_eq!(header_injection("=?utf-8?Q?trailing="), None);
    }

    fn spam(text: &str) -> Option<String> {
        let phrases: Vec<String> = crate::config::DEFAULT_SPAM_PHRASES
            .iter()
            .map(|p| p.to_string())
            .collect();
        SpamRules::new(&phrases).check(text)
    }

    #[test]
    fn spam_phrases_match_whole_words_caselessly() {
        assert!(spam("Cheap ViAgRa today").is_some());
        assert!(spam("please click\n here").is_some());
        assert_eq!(spam("the casinos report"), None);
        assert_eq!(spam("Winnerton is a town"), None);
    }

    #[test]
    fn runs_and_shouting_are_spam() {
        assert!(spam("wow!!!").is_some());
        assert!(spam("only $$$ here").is_some());
        assert!(spam("THIS IS ALL SHOUTING, friend").is_some());
        assert_eq!(spam("Hi!! It costs $5, fine? NASA says ok"), None);
        assert_eq!(spam("1234567890 ... ---"), None);
        assert_eq!(spam(""), None);
        assert_eq!(spam("日本語のメールです。こんにちは、お元気ですか"), None);
    }

    #[test]
    fn shorteners_are_found_by_host() {
        let s = Shorteners::new(&["bit.ly".into(), "t.co".into()]);
        let found = |links: &[&str], text: &str| {
            let links: Vec<String> = links.iter().map(|l| l.to_string()).collect();
            s.find(&links, text)
        };
        assert!(found(&["https://BIT.LY/x"], "").is_some());
        assert!(found(&["https://go.bit.ly./x"], "").is_some());
        assert!(found(&["//t.co/x"], "").is_some());
        assert!(found(&[], "see bit.ly/abc").is_some());
        assert_eq!(
            found(&["https://notbit.ly/x", "https://t.com/"], "rabbit.lyre"),
            None
        );
        assert_eq!(found(&["https://bit.ly.example.org/"], ""), None);
        assert_eq!(found(&["ñandú", "wwwñ", "", "http://[::1"], ""), None);
    }

    #[test]
    fn urls_are_found_in_text_and_attributes() {
        assert_eq!(
            text_urls("a https://x.org/a, www.y.org and <a href=\"http://z.org\">"),
            ["https://x.org/a", "www.y.org", "http://z.org"]
        );
    }
}
