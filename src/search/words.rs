//! The word normaliser shared by indexing and queries: lower-cased, accents removed
//! (`Crédito` → `credito`), split at every character that is not a letter or a digit.
//!
//! Most mail is mostly ASCII, and ASCII needs neither decomposition nor Unicode case
//! mapping, so ASCII bytes take a fast path and only runs of other characters go
//! through NFD. The two agree exactly: an ASCII character is a starter that decomposes
//! to itself, so NFD never reorders anything across it, and NFD of the text is the NFD
//! of its pieces cut there.

use std::ops::ControlFlow;

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// The words of `text`, normalised, each once per occurrence, in order.
pub fn words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let _ = for_each_word(text, |word| {
        words.push(word.to_owned());
        ControlFlow::Continue(())
    });
    words
}

/// Lends each normalised word of `text` to `each`, in order, until it breaks. The word
/// lives in one buffer reused for the next, so a word costs no allocation.
pub fn for_each_word(text: &str, mut each: impl FnMut(&str) -> ControlFlow<()>) -> ControlFlow<()> {
    let mut word = String::new();
    let bytes = text.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        let run_end = |test: fn(&u8) -> bool| {
            bytes[at..]
                .iter()
                .position(|b| !test(b))
                .map_or(bytes.len(), |n| at + n)
        };
        if bytes[at].is_ascii_alphanumeric() {
            let end = run_end(u8::is_ascii_alphanumeric);
            let start = word.len();
            word.push_str(&text[at..end]);
            word[start..].make_ascii_lowercase();
            at = end;
        } else if bytes[at].is_ascii() {
            at = run_end(|b| b.is_ascii() && !b.is_ascii_alphanumeric());
            end_word(&mut word, &mut each)?;
        } else {
            let end = run_end(|b| !b.is_ascii());
            fold_general(&text[at..end], &mut word, &mut each)?;
            at = end;
        }
    }
    end_word(&mut word, &mut each)
}

/// The general path, for a run of non-ASCII characters: NFD, combining marks dropped,
/// Unicode lower case.
fn fold_general(
    run: &str,
    word: &mut String,
    each: &mut impl FnMut(&str) -> ControlFlow<()>,
) -> ControlFlow<()> {
    for c in run.nfd() {
        if is_combining_mark(c) {
            continue;
        }
        if c.is_alphanumeric() {
            word.extend(c.to_lowercase());
        } else {
            end_word(word, each)?;
        }
    }
    ControlFlow::Continue(())
}

fn end_word(word: &mut String, each: &mut impl FnMut(&str) -> ControlFlow<()>) -> ControlFlow<()> {
    if word.is_empty() {
        return ControlFlow::Continue(());
    }
    let flow = each(word);
    word.clear();
    flow
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The normaliser before the fast path: every character through NFD.
    fn words_by_general_path(text: &str) -> Vec<String> {
        let mut words = Vec::new();
        let mut word = String::new();
        for c in text.nfd() {
            if is_combining_mark(c) {
                continue;
            }
            if c.is_alphanumeric() {
                word.extend(c.to_lowercase());
            } else if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
        }
        if !word.is_empty() {
            words.push(word);
        }
        words
    }

    #[test]
    fn words_are_folded_and_split_at_anything_else() {
        assert_eq!(
            words("Crédito, ÁRBOL-niño ana@x.org 10:30 日本語"),
            [
                "credito",
                "arbol",
                "nino",
                "ana",
                "x",
                "org",
                "10",
                "30",
                "日本語"
            ]
        );
        assert!(words(" ¡!? ").is_empty());
    }

    #[test]
    fn the_fast_path_gives_the_words_of_the_general_path() {
        let table = [
            "",
            "plain ascii words",
            "MiXeD CaSe ABC xyz",
            "digits 0123456789 a1b2C3",
            "punctuation: a.b,c;d!e?f(g)h[i]j{k}l<m>n\"o'p`q~r@s#t$u%v^w&x*y-z_0+1=2|3\\4/5",
            "\ttabs\nand\r\nnewlines\u{0}nul\u{7f}del",
            "Crédito ÁRBOL niño Ñandú façade",
            "Credito\u{301} e\u{301}te\u{301} A\u{30a}ngstro\u{308}m",
            "\u{301}leading mark and trailing mark\u{301}",
            "e\u{301}\u{327}\u{300}\u{323} marks in any order",
            "ANGSTROM \u{212b} KELVIN \u{212a} OHM \u{2126}",
            "İstanbul ΣΊΣΥΦΟΣ straße ǅemal ﬁnance",
            "日本語テキスト 中文 한국어 العربية עברית",
            "full-width ＡＢＣ１２３ and ½ ² ③ Ⅻ",
            "no-break\u{a0}space en\u{2002}space zero\u{200b}width joiner\u{200d}x",
            "emoji 😀 in 👍🏽 words",
            "ascii-then-é-then-ascii é2 2é éA Aé",
            "mixed\u{301}ASCII\u{0301}Runs ǆ Ǆ ǅ",
        ];
        for text in table {
            assert_eq!(words(text), words_by_general_path(text), "{text:?}");
        }
    }

    #[test]
    fn the_fast_path_agrees_on_every_mix_of_tricky_characters() {
        // Every string of up to three of these, so each pair meets at a run boundary.
        let alphabet = [
            "a", "Z", "7", " ", "-", "é", "E\u{301}", "\u{301}", "\u{327}", "İ", "Σ", "ß", "ǅ",
            "\u{212b}", "日", "\u{a0}", "½", "😀",
        ];
        for a in alphabet {
            for b in alphabet {
                for c in alphabet {
                    let text = format!("{a}{b}{c}");
                    assert_eq!(words(&text), words_by_general_path(&text), "{text:?}");
                }
            }
        }
    }

    #[test]
    fn lending_stops_when_asked() {
        let mut seen = Vec::new();
        let flow = for_each_word("one two three", |word| {
            seen.push(word.to_owned());
            if word == "two" {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        assert!(flow.is_break());
        assert_eq!(seen, ["one", "two"]);
    }
}
