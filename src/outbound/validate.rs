//! The send request as sent, and the checks that turn it into an `OutgoingEmail`.
//! Every check runs before anything is queued; the first failure names itself.

use serde::Deserialize;

use super::address::{ParsedAddress, parse_address};
use super::content::{Shorteners, SpamRules, header_injection, text_urls};
use super::sanitize::sanitize_html;
use crate::config::OutboundSettings;

/// A bound on the subject in characters (RFC 5322's line length; the header is folded, so
/// the subject may be that long whatever it is made of).
const MAX_SUBJECT_CHARS: usize = 998;

/// `to`, `cc` and `bcc` take one address or a list.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Recipients {
    One(String),
    Many(Vec<String>),
}

impl Recipients {
    fn items(&self) -> &[String] {
        match self {
            Recipients::One(one) => std::slice::from_ref(one),
            Recipients::Many(many) => many,
        }
    }
}

/// The body of `POST /api/email/send` as the client sent it: at most 5 recipients in
/// all, a body of at most 10,000 characters. A missing field is refused by `validate`,
/// which names it, rather than by the JSON reader.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct SendRequest {
    #[schema(required = true, value_type = Recipients)]
    pub to: Option<Recipients>,
    pub cc: Option<Recipients>,
    pub bcc: Option<Recipients>,
    /// Must belong to one of the domains in `DOMINIO`.
    #[schema(required = true, value_type = String, example = "noreply@example.org")]
    pub from: Option<String>,
    #[schema(required = true, value_type = String)]
    pub subject: Option<String>,
    #[schema(required = true, value_type = String)]
    pub body: Option<String>,
    #[serde(rename = "isHtml")]
    pub is_html: Option<bool>,
}

/// A refused request: a short name of the check and what exactly failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub error: &'static str,
    pub message: String,
}

fn reject(error: &'static str, message: impl Into<String>) -> Rejection {
    Rejection {
        error,
        message: message.into(),
    }
}

/// An email that passed every check; `body` is already sanitised when `is_html`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEmail {
    pub from: ParsedAddress,
    pub to: Vec<ParsedAddress>,
    pub cc: Vec<ParsedAddress>,
    pub bcc: Vec<ParsedAddress>,
    pub subject: String,
    pub body: String,
    pub is_html: bool,
}

impl OutgoingEmail {
    pub fn recipients(&self) -> impl Iterator<Item = &ParsedAddress> {
        self.to.iter().chain(&self.cc).chain(&self.bcc)
    }
}

/// The checks, compiled once from the settings.
pub struct Validator {
    sender_domains: Vec<String>,
    allowed_domains: Vec<String>,
    max_recipients: usize,
    max_body_chars: usize,
    max_urls: usize,
    spam: SpamRules,
    shorteners: Shorteners,
}

impl Validator {
    pub fn new(settings: &OutboundSettings) -> Self {
        Self {
            sender_domains: settings.sender_domains.clone(),
            allowed_domains: settings.allowed_domains.clone(),
            max_recipients: settings.max_recipients,
            max_body_chars: settings.max_body_chars,
            max_urls: settings.max_urls,
            spam: SpamRules::new(&settings.spam_phrases),
            shorteners: Shorteners::new(&settings.url_shorteners),
        }
    }

    pub fn validate(&self, request: &SendRequest) -> Result<OutgoingEmail, Rejection> {
        let from = required(request.from.as_deref(), "from")?;
        let subject = required(request.subject.as_deref(), "subject")?;
        let body = required(request.body.as_deref(), "body")?;
        let lists = [
            ("to", &request.to),
            ("cc", &request.cc),
            ("bcc", &request.bcc),
        ];
        check_headers(from, subject, &lists)?;

        let from = address("from", from)?;
        if !self.sender_domains.contains(&from.domain) {
            return Err(reject(
                "Sender not allowed",
                format!("from must be an address of DOMINIO, not @{}", from.domain),
            ));
        }
        let [to, cc, bcc] = lists.map(|(field, list)| parse_list(field, list.as_ref()));
        let (to, cc, bcc) = (to?, cc?, bcc?);
        if to.is_empty() {
            return Err(reject("Missing field", "to needs at least one address"));
        }
        let email = OutgoingEmail {
            from,
            to,
            cc,
            bcc,
            subject: subject.to_owned(),
            body: body.to_owned(),
            is_html: request.is_html.unwrap_or(false),
        };
        self.check_recipients(&email)?;
        self.check_content(email)
    }

    fn check_recipients(&self, email: &OutgoingEmail) -> Result<(), Rejection> {
        let count = email.recipients().count();
        if count > self.max_recipients {
            return Err(reject(
                "Too many recipients",
                format!(
                    "{count} recipients; at most {} across to, cc and bcc",
                    self.max_recipients
                ),
            ));
        }
        if let Some(outside) = email
            .recipients()
            .find(|r| !self.allowed_domains.is_empty() && !self.allowed_domains.contains(&r.domain))
        {
            return Err(reject(
                "Recipient not allowed",
                format!("@{} is not in SEND_ALLOWED_DOMAINS", outside.domain),
            ));
        }
        Ok(())
    }

    fn check_content(&self, mut email: OutgoingEmail) -> Result<OutgoingEmail, Rejection> {
        let chars = email.body.chars().count();
        if chars > self.max_body_chars {
            return Err(reject(
                "Body too long",
                format!("{chars} characters; at most {}", self.max_body_chars),
            ));
        }
        if email.subject.chars().count() > MAX_SUBJECT_CHARS {
            return Err(reject(
                "Subject too long",
                format!("at most {MAX_SUBJECT_CHARS} characters"),
            ));
        }
        if email.body.contains('\0') {
            return Err(reject("Invalid body", "body contains NUL"));
        }
        let (text, mut links, raw_html) = content_to_judge(&mut email);
        links.extend(text_urls(&text));
        let text = format!("{}\n{}", email.subject, text);
        if let Some(why) = self.spam.check(&text) {
            return Err(reject("Spam detected", format!("the message {why}")));
        }
        let shortener = self.shorteners.find(&links, &text);
        if let Some(host) = shortener.or_else(|| self.shorteners.find(&[], &raw_html)) {
            return Err(reject(
                "URL shortener not allowed",
                format!("links through {host} are refused; link to the destination"),
            ));
        }
        links.sort();
        links.dedup();
        if links.len() > self.max_urls {
            return Err(reject(
                "Too many URLs",
                format!("{} links; at most {}", links.len(), self.max_urls),
            ));
        }
        Ok(email)
    }
}

/// What the content checks read: the text that will be sent and the links it carries,
/// plus the HTML as given. An HTML body is sanitised in place, and its text is what is left:
/// tags removed, entities decoded (`vi<span></span>agra`, `bit&#46;ly`). Shorteners are
/// also looked for in the HTML as given, since a link that sanitising drops
/// (`href="//tinyurl.com/x"`) still shows what the sender meant.
fn content_to_judge(email: &mut OutgoingEmail) -> (String, Vec<String>, String) {
    if !email.is_html {
        return (email.body.clone(), Vec::new(), String::new());
    }
    let clean = sanitize_html(&email.body);
    let raw_html = std::mem::replace(&mut email.body, clean.html);
    let links = clean
        .hrefs
        .into_iter()
        .filter(|h| !h.trim_start().starts_with("mailto:"))
        .collect();
    (clean.text, links, raw_html)
}

fn required<'a>(value: Option<&'a str>, field: &str) -> Result<&'a str, Rejection> {
    match value {
        Some(text) if !text.trim().is_empty() => Ok(text),
        _ => Err(reject("Missing field", format!("{field} is required"))),
    }
}

fn check_headers(
    from: &str,
    subject: &str,
    lists: &[(&str, &Option<Recipients>)],
) -> Result<(), Rejection> {
    let fields = [("from", from), ("subject", subject)]
        .into_iter()
        .chain(lists.iter().flat_map(|(field, list)| {
            list.iter()
                .flat_map(|l| l.items())
                .map(move |item| (*field, item.as_str()))
        }));
    for (field, value) in fields {
        if let Some(why) = header_injection(value) {
            return Err(reject(
                "Header injection detected",
                format!("{field} {why}"),
            ));
        }
    }
    Ok(())
}

fn address(field: &str, raw: &str) -> Result<ParsedAddress, Rejection> {
    parse_address(raw)
        .map_err(|problem| reject("Invalid address", format!("{field} {}", problem.describe())))
}

fn parse_list(field: &str, list: Option<&Recipients>) -> Result<Vec<ParsedAddress>, Rejection> {
    list.map(Recipients::items)
        .unwrap_or_default()
        .iter()
        .map(|raw| address(field, raw))
        .collect()
}
