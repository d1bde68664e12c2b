//! The words an email is found by, and the words a query looks for, made by one
//! normaliser so both engines and both sides agree: lower-cased, accents removed
//! (`Crédito` → `credito`), every run of other characters than letters and digits a
//! single space. Stored as ` w1 w2 … ` (spaces on both ends), so a word or phrase of
//! an email not yet in the full-text index is found as ` word ` with a substring test.

use std::collections::HashMap;
use std::ops::ControlFlow;

pub use super::html::{html_text, mail_html_text};
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

/// The indexed words of an email's searchable fields, as ` w1 w2 … `, within the caps.
pub fn indexed_words<'a>(fields: impl IntoIterator<Item = &'a str>) -> String {
    let mut words = IndexedWords::default();
    for field in fields {
        words.add(field);
    }
    words.finish()
}

/// An email's indexed words, built field by field within the caps. Words are lent, not
/// allocated; a distinct word is copied once, as its count's key.
pub struct IndexedWords {
    out: String,
    seen: HashMap<Box<str>, u16, foldhash::fast::RandomState>,
    vector_bytes: usize,
    full: bool,
}

impl Default for IndexedWords {
    fn default() -> Self {
        Self {
            out: String::from(" "),
            seen: HashMap::default(),
            vector_bytes: 0,
            full: false,
        }
    }
}

impl IndexedWords {
    /// Adds the words of `field`, until a cap is reached; nothing once one has been.
    pub fn add(&mut self, field: &str) {
        if self.full {
            return;
        }
        let flow = for_each_word(field, |word| {
            let count = self.seen.get_mut(word);
            let cost = match &count {
                Some(count) if **count >= MAX_POSITIONS => 0,
                Some(_) => 2,
                None => word.len() + 8,
            };
            if self.out.len() + word.len() + 1 > MAX_INDEXED_BYTES
                || self.vector_bytes + cost > MAX_VECTOR_BYTES
            {
                return ControlFlow::Break(());
            }
            self.vector_bytes += cost;
            self.out.push_str(word);
            self.out.push(' ');
            match count {
                Some(count) => *count = (*count + 1).min(MAX_POSITIONS),
                None => {
                    self.seen.insert(word.into(), 1);
                }
            }
            ControlFlow::Continue(())
        });
        self.full = flow.is_break();
    }

    /// Whether every word of `text` is among the words added so far.
    pub fn has_every_word_of(&self, text: &str) -> bool {
        let known = |word: &str| match self.seen.contains_key(word) {
            true => ControlFlow::Continue(()),
            false => ControlFlow::Break(()),
        };
        for_each_word(text, known).is_continue()
    }

    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_of_a_text_is_known_only_once_all_were_added() {
        let mut words = IndexedWords::default();
        words.add("Hola Ana: el crédito llegó. Saludos");
        assert!(words.has_every_word_of("HOLA ana, saludos: credito llego"));
        assert!(words.has_every_word_of(""));
        assert!(!words.has_every_word_of("Hola Ana, adjunto factura"));
        assert!(!IndexedWords::default().has_every_word_of("hola"));
    }

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
}
