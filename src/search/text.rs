//! The words an email is found by, and the words a query looks for, made by one
//! normaliser so both engines and both sides agree: lower-cased, accents removed
//! (`Crédito` → `credito`), every run of other characters than letters and digits a
//! single space. Stored as ` w1 w2 … ` (spaces on both ends), so a word or phrase of
//! an email not yet in the full-text index is found as ` word ` with a substring test.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::ControlFlow;

use html5ever::tokenizer::{
    BufferQueue, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};

pub use super::words::{for_each_word, words};

/// At most this many bytes of words are indexed per email (DESIGN §7).
pub const MAX_INDEXED_BYTES: usize = 1 << 20;
/// PostgreSQL refuses a `tsvector` over 1 MB, and one of distinct short words is larger
/// than their text (1.75 MB for 1 MiB, measured). Words stop once this estimate of the
/// vector's size would be passed: a new word costs its length and 8 bytes, a repeat 2
/// bytes (positions, at most 256 a word). Ordinary text, which repeats its words, is cut
/// by `MAX_INDEXED_BYTES` first.
const MAX_VECTOR_BYTES: usize = 900_000;
const MAX_POSITIONS: u16 = 256;

/// Tags that do not break a word when they split it (`vi<span>ag</span>ra`).
const MAIL_INLINE_TAGS: &[&str] = &[
    "a", "abbr", "b", "bdi", "bdo", "cite", "code", "em", "font", "i", "kbd", "mark", "q", "s",
    "small", "span", "strong", "sub", "sup", "u", "wbr",
];

/// The indexed words of an email's searchable fields, as ` w1 w2 … `, within the caps.
/// Words are lent, not allocated; a distinct word is copied once, as its count's key.
pub fn indexed_words<'a>(fields: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::from(" ");
    let mut seen: HashMap<Box<str>, u16, foldhash::fast::RandomState> = HashMap::default();
    let mut vector_bytes = 0;
    for field in fields {
        let flow = for_each_word(field, |word| {
            let count = seen.get_mut(word);
            let cost = match &count {
                Some(count) if **count >= MAX_POSITIONS => 0,
                Some(_) => 2,
                None => word.len() + 8,
            };
            if out.len() + word.len() + 1 > MAX_INDEXED_BYTES
                || vector_bytes + cost > MAX_VECTOR_BYTES
            {
                return ControlFlow::Break(());
            }
            vector_bytes += cost;
            out.push_str(word);
            out.push(' ');
            match count {
                Some(count) => *count = (*count + 1).min(MAX_POSITIONS),
                None => {
                    seen.insert(word.into(), 1);
                }
            }
            ControlFlow::Continue(())
        });
        if flow.is_break() {
            break;
        }
    }
    out
}

/// The text a reader sees of an email's HTML: scripts and styles dropped with their
/// content (by ammonia), entities decoded, blocks separated.
pub fn mail_html_text(html: &str) -> String {
    let bare = ammonia::clean(html);
    html_text(&bare, MAIL_INLINE_TAGS)
}

/// The text of an HTML fragment, by html5ever's tokenizer (so entities decode as a
/// browser decodes them); a tag not in `inline_tags` breaks the text with a newline.
/// Meant for ammonia's output: no script or style is left whose content would be taken
/// for text.
pub fn html_text(html: &str, inline_tags: &'static [&'static str]) -> String {
    let queue = BufferQueue::default();
    queue.push_back(html.into());
    let sink = TextSink {
        text: RefCell::default(),
        inline_tags,
    };
    let tokenizer = Tokenizer::new(sink, TokenizerOpts::default());
    let _ = tokenizer.feed(&queue);
    tokenizer.end();
    tokenizer.sink.text.take()
}

struct TextSink {
    text: RefCell<String>,
    inline_tags: &'static [&'static str],
}

impl TokenSink for TextSink {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        let mut text = self.text.borrow_mut();
        match token {
            Token::CharacterTokens(chars) => text.push_str(&chars),
            Token::TagToken(tag)
                if !self.inline_tags.contains(&&*tag.name)
                    && (tag.kind == TagKind::StartTag || tag.name != *"br") =>
            {
                text.push('\n');
            }
            _ => {}
        }
        TokenSinkResult::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexed_words_have_spaces_on_both_ends() {
        assert_eq!(indexed_words(["Hola Mundo", "mundo"]), " hola mundo mundo ");
        assert_eq!(indexed_words([""]), " ");
    }

    #[test]
    fn indexed_words_are_capped_in_bytes_and_in_distinct_words() {
        let repeated = "palabra ".repeat(300_000);
        let text = indexed_words([repeated.as_str()]);
        assert!(text.len() <= MAX_INDEXED_BYTES);
        assert!(text.len() > MAX_INDEXED_BYTES - 10);
        let distinct: String = (0..300_000).map(|n| format!("w{n} ")).collect();
        let text = indexed_words([distinct.as_str()]);
        let estimate: usize = text.split_whitespace().map(|w| w.len() + 8).sum();
        assert!(estimate <= MAX_VECTOR_BYTES);
    }

    #[test]
    fn html_is_read_as_text_without_scripts_and_with_entities_decoded() {
        let text = mail_html_text(
            "<style>p{}</style><p>cl&#105;ck vi<span>ag</span>ra</p><script>secret()</script><div>next</div>",
        );
        assert_eq!(words(&text), ["click", "viagra", "next"]);
    }
}
