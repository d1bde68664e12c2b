//! PostgreSQL's word vectors and phrase queries, written as `tsvector` and `tsquery`
//! literals from the words that `search::text` already made.
//!
//! `to_tsvector('simple', words)` ran the full text-search parser (wide-character
//! conversion, `iswalpha` and `towlower` on every character) over words that were
//! already split, lower-cased and folded; its functions led a profile of the database
//! storing typical mail (bench/README.md). The literal needs only `tsvector`'s input
//! function. The queries are
//! written the same way, so both sides split words by the one normaliser that SQLite's
//! index uses too.

use std::collections::HashMap;
use std::fmt::Write as _;

/// `to_tsvector` keeps the first 255 positions of a lexeme (a `tsvector` holds 256).
const MAX_POSITIONS: usize = 255;
/// The largest position a `tsvector` holds; later words share it, as with `to_tsvector`.
const MAX_POSITION: usize = (1 << 14) - 1;
/// The longest lexeme a `tsvector` accepts; `to_tsvector` leaves longer words out.
const MAX_LEXEME_BYTES: usize = 2046;

/// `'a':1,3 'b':2` for the words ` a b a `: each word once, with the positions at which
/// it comes (from 1), in the byte order in which a `tsvector` keeps its lexemes (so its
/// input function finds them sorted).
pub fn vector_literal(words: &str) -> String {
    let mut positions: HashMap<&str, Vec<usize>, foldhash::fast::RandomState> = HashMap::default();
    let mut order: Vec<&str> = Vec::new();
    // A word too long to keep takes no position, as with `to_tsvector`.
    let kept = words
        .split_whitespace()
        .filter(|w| w.len() <= MAX_LEXEME_BYTES);
    for (index, word) in kept.enumerate() {
        let seen = positions.entry(word).or_insert_with(|| {
            order.push(word);
            Vec::new()
        });
        if seen.len() < MAX_POSITIONS {
            seen.push((index + 1).min(MAX_POSITION));
        }
    }
    order.sort_unstable();
    let mut literal = String::with_capacity(words.len() * 2);
    for word in order {
        if !literal.is_empty() {
            literal.push(' ');
        }
        push_quoted(&mut literal, word);
        let mut separator = ':';
        for position in &positions[word] {
            let _ = write!(literal, "{separator}{position}");
            separator = ',';
        }
    }
    literal
}

/// `'a' <-> 'b'`: the words of `phrase` (normalised, one space apart) in that order.
pub fn phrase_query_literal(phrase: &str) -> String {
    let mut literal = String::with_capacity(phrase.len() + 8);
    for word in phrase.split_whitespace() {
        if !literal.is_empty() {
            literal.push_str(" <-> ");
        }
        push_quoted(&mut literal, word);
    }
    literal
}

/// A lexeme in single quotes, its quotes doubled and backslashes escaped.
fn push_quoted(literal: &mut String, word: &str) {
    literal.push('\'');
    for c in word.chars() {
        match c {
            '\'' => literal.push_str("''"),
            '\\' => literal.push_str("\\\\"),
            c => literal.push(c),
        }
    }
    literal.push('\'');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_become_lexemes_with_their_positions() {
        assert_eq!(
            vector_literal(" hola mundo hola año 7 "),
            "'7':5 'año':4 'hola':1,3 'mundo':2"
        );
        assert_eq!(vector_literal(" "), "");
    }

    #[test]
    fn positions_and_lexemes_stay_within_what_a_tsvector_holds() {
        let many = " palabra".repeat(300);
        assert_eq!(
            vector_literal(&many).matches(',').count(),
            MAX_POSITIONS - 1
        );
        let late = format!("{} tarde ", " x".repeat(20_000));
        assert!(vector_literal(&late).starts_with("'tarde':16383 "));
        let long = format!(" {} corta ", "l".repeat(3_000));
        assert_eq!(vector_literal(&long), "'corta':1");
    }

    #[test]
    fn quotes_and_backslashes_are_escaped() {
        assert_eq!(vector_literal(" o'k a\\b "), r"'a\\b':2 'o''k':1");
        assert_eq!(phrase_query_literal("it's me"), "'it''s' <-> 'me'");
    }

    #[test]
    fn a_phrase_is_its_words_in_order() {
        assert_eq!(phrase_query_literal("credito"), "'credito'");
        assert_eq!(
            phrase_query_literal("factura de noviembre"),
            "'factura' <-> 'de' <-> 'noviembre'"
        );
    }
}
