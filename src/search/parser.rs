//! Text → `Query`. Terms are separated by white space; `"…"` groups words (a phrase, or
//! an operator's value); a leading `-` negates; `name:value` is an operator when `name`
//! is one of the known ones, and a plain word otherwise (so `10:30` or a URL still
//! search as words).

use chrono::NaiveDate;

use super::{Condition, Flag, Query, Term};

/// Bounds that keep one query's cost small.
const MAX_QUERY_CHARS: usize = 1_000;
const MAX_TERMS: usize = 32;

/// Where a query failed to parse, and why: the 400's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at character {position}: {reason}")]
pub struct ParseError {
    /// 1-based character position of the offending term.
    pub position: usize,
    pub reason: String,
}

/// Parses one query; an empty or blank query has no terms.
pub fn parse(text: &str) -> Result<Query, ParseError> {
    let chars = text.chars().count();
    if chars > MAX_QUERY_CHARS {
        return Err(error(
            1,
            format!("a query is at most {MAX_QUERY_CHARS} characters"),
        ));
    }
    let mut terms = Vec::new();
    for token in tokens(text)? {
        if terms.len() == MAX_TERMS {
            return Err(error(
                token.position,
                format!("a query has at most {MAX_TERMS} terms"),
            ));
        }
        terms.push(term(&token)?);
    }
    Ok(Query { terms })
}

/// One white-space separated piece, its quotes resolved.
struct Token {
    position: usize,
    negated: bool,
    /// `name:` before the value, when the piece had one outside quotes.
    name: Option<String>,
    value: String,
    quoted: bool,
}

fn tokens(text: &str) -> Result<Vec<Token>, ParseError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let negated = chars[i] == '-';
        if negated {
            i += 1;
        }
        let mut name = None;
        let mut value = String::new();
        let mut quoted = false;
        while i < chars.len() && !chars[i].is_whitespace() {
            match chars[i] {
                '"' => {
                    let close = chars[i + 1..].iter().position(|&c| c == '"');
                    let close = close.ok_or_else(|| error(i + 1, "a quote is not closed"))?;
                    value.extend(&chars[i + 1..i + 1 + close]);
                    quoted = true;
                    i += close + 2;
                }
                ':' if name.is_none() && !quoted && !value.is_empty() => {
                    name = Some(std::mem::take(&mut value));
                    i += 1;
                }
                c => {
                    value.push(c);
                    i += 1;
                }
            }
        }
        if negated && name.is_none() && value.is_empty() && !quoted {
            return Err(error(start + 1, "`-` must be followed by a term"));
        }
        tokens.push(Token {
            position: start + 1,
            negated,
            name,
            value,
            quoted,
        });
    }
    Ok(tokens)
}

fn term(token: &Token) -> Result<Term, ParseError> {
    let condition = match token.name.as_deref().map(str::to_ascii_lowercase) {
        None => text_condition(token)?,
        Some(name) => match operator(&name, token)? {
            Some(condition) => condition,
            // Not an operator: the whole piece is a word (`10:30`, `re:hola`).
            None => Condition::Word(format!(
                "{}:{}",
                token.name.as_deref().unwrap_or(""),
                token.value
            )),
        },
    };
    Ok(Term {
        negated: token.negated,
        condition,
    })
}

fn text_condition(token: &Token) -> Result<Condition, ParseError> {
    let words: Vec<String> = token.value.split_whitespace().map(str::to_owned).collect();
    match (token.quoted, words.len()) {
        (_, 0) => Err(error(token.position, "an empty phrase matches nothing")),
        (true, n) if n > 1 => Ok(Condition::Phrase(words)),
        _ => Ok(Condition::Word(token.value.trim().to_owned())),
    }
}

/// The operator `name` with the token's value; `None` when `name` is no operator.
fn operator(name: &str, token: &Token) -> Result<Option<Condition>, ParseError> {
    let value = token.value.trim();
    let at = token.position;
    if value.is_empty() && KNOWN.contains(&name) {
        return Err(error(at, format!("`{name}:` needs a value")));
    }
    let condition = match name {
        "from" => Condition::From(value.to_owned()),
        "to" => Condition::To(value.to_owned()),
        "subject" => Condition::Subject(value.to_owned()),
        "mailbox" => Condition::Mailbox(value.to_owned()),
        "has" => match value.to_ascii_lowercase().as_str() {
            "attachment" | "attachments" => Condition::HasAttachment,
            _ => return Err(error(at, "`has:` takes `attachment`")),
        },
        "is" => Condition::Is(
            flag(value)
                .ok_or_else(|| error(at, "`is:` takes `unread`, `read`, `starred` or `trashed`"))?,
        ),
        "before" => Condition::Before(date(value, at)?),
        "after" => Condition::After(date(value, at)?),
        "larger" => Condition::Larger(size(value, at)?),
        "smaller" => Condition::Smaller(size(value, at)?),
        _ => return Ok(None),
    };
    Ok(Some(condition))
}

const KNOWN: [&str; 10] = [
    "from", "to", "subject", "mailbox", "has", "is", "before", "after", "larger", "smaller",
];

fn flag(value: &str) -> Option<Flag> {
    match value.to_ascii_lowercase().as_str() {
        "unread" => Some(Flag::Unread),
        "read" => Some(Flag::Read),
        "starred" => Some(Flag::Starred),
        "trashed" | "trash" | "deleted" => Some(Flag::Trashed),
        _ => None,
    }
}

fn date(value: &str, at: usize) -> Result<NaiveDate, ParseError> {
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map_err(|_| error(at, format!("`{value}` is not a date like 2026-12-01")))
}

/// `10MB`, `500KB`, `1.5M`, `2048` (bytes); units of 1,024.
fn size(value: &str, at: usize) -> Result<u64, ParseError> {
    let bad = || error(at, format!("`{value}` is not a size like 500KB or 10MB"));
    let split = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let factor: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1 << 10,
        "m" | "mb" => 1 << 20,
        "g" | "gb" => 1 << 30,
        _ => return Err(bad()),
    };
    let number: f64 = number.parse().map_err(|_| bad())?;
    let bytes = number * factor as f64;
    if !bytes.is_finite() || bytes > u64::MAX as f64 / 2.0 {
        return Err(bad());
    }
    Ok(bytes.round() as u64)
}

fn error(position: usize, reason: impl Into<String>) -> ParseError {
    ParseError {
        position,
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Term {
        let query = parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert_eq!(query.terms.len(), 1, "{text:?}");
        query.terms.into_iter().next().unwrap()
    }

    fn plain(condition: Condition) -> Term {
        Term {
            negated: false,
            condition,
        }
    }

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn every_operator_parses_to_its_condition() {
        let table = [
            ("factura", Condition::Word("factura".into())),
            ("Crédito", Condition::Word("Crédito".into())),
            (
                "\"buenos días\"",
                Condition::Phrase(vec!["buenos".into(), "días".into()]),
            ),
            ("\"solo\"", Condition::Word("solo".into())),
            ("from:ana@x.org", Condition::From("ana@x.org".into())),
            ("FROM:Ana", Condition::From("Ana".into())),
            ("to:ventas", Condition::To("ventas".into())),
            (
                "subject:\"nueva factura\"",
                Condition::Subject("nueva factura".into()),
            ),
            ("mailbox:ana@x.org", Condition::Mailbox("ana@x.org".into())),
            ("has:attachment", Condition::HasAttachment),
            ("is:unread", Condition::Is(Flag::Unread)),
            ("is:read", Condition::Is(Flag::Read)),
            ("is:starred", Condition::Is(Flag::Starred)),
            ("is:trashed", Condition::Is(Flag::Trashed)),
            ("before:2026-12-01", Condition::Before(day("2026-12-01"))),
            ("after:2026-01-31", Condition::After(day("2026-01-31"))),
            ("larger:10MB", Condition::Larger(10 << 20)),
            ("larger:1.5m", Condition::Larger(1_572_864)),
            ("smaller:500KB", Condition::Smaller(500 << 10)),
            ("smaller:2048", Condition::Smaller(2048)),
            ("10:30", Condition::Word("10:30".into())),
            ("https://x.org/a", Condition::Word("https://x.org/a".into())),
        ];
        for (text, condition) in table {
            assert_eq!(one(text), plain(condition), "{text:?}");
        }
    }

    #[test]
    fn a_leading_minus_negates_any_term() {
        for text in [
            "-factura",
            "-\"dos palabras\"",
            "-from:ana",
            "-is:read",
            "-has:attachment",
        ] {
            assert!(one(text).negated, "{text:?}");
        }
        assert!(!one("semi-final").negated);
        assert_eq!(
            one("semi-final").condition,
            Condition::Word("semi-final".into())
        );
    }

    #[test]
    fn several_terms_must_all_match_in_order_given() {
        let query = parse("  is:unread  from:ana   factura ").unwrap();
        assert_eq!(
            query.terms,
            vec![
                plain(Condition::Is(Flag::Unread)),
                plain(Condition::From("ana".into())),
                plain(Condition::Word("factura".into())),
            ]
        );
        assert!(parse("").unwrap().terms.is_empty());
        assert!(parse("   ").unwrap().terms.is_empty());
    }

    #[test]
    fn bad_queries_say_where_and_why() {
        let table = [
            ("hola \"sin cerrar", 6, "quote"),
            ("from:", 1, "needs a value"),
            ("ok is:maybe", 4, "is:"),
            ("has:pdf", 1, "has:"),
            ("before:yesterday", 1, "date"),
            ("after:2026-13-01", 1, "date"),
            ("larger:lots", 1, "size"),
            ("smaller:10XB", 1, "size"),
            ("larger:1e400", 1, "size"),
            ("a - b", 3, "followed by a term"),
            ("\"\"", 1, "empty phrase"),
        ];
        for (text, position, reason) in table {
            let error = parse(text).expect_err(text);
            assert_eq!(error.position, position, "{text:?}: {error}");
            assert!(error.reason.contains(reason), "{text:?}: {error}");
        }
    }

    #[test]
    fn long_queries_are_refused_before_any_work() {
        assert!(parse(&"a".repeat(MAX_QUERY_CHARS + 1)).is_err());
        let many = vec!["w"; MAX_TERMS + 1].join(" ");
        assert!(parse(&many).unwrap_err().reason.contains("terms"));
    }

    #[test]
    fn a_nul_is_part_of_a_word_not_a_wildcard() {
        assert_eq!(one("a\0b").condition, Condition::Word("a\0b".into()));
    }
}
