//! HTML as the text a reader sees, by html5ever's tokenizer (so entities decode as a
//! browser decodes them).
//!
//! `mail_html_text` reads an email's HTML in one pass. It once ran `ammonia::clean`
//! first (a parse into a tree and a serialisation) and then the tokenizer over the
//! result: two parses of every email's HTML, and a tree of it in memory. Now the
//! tokenizer itself switches to raw text where a browser does, drops the content
//! of `script` and `style`, and breaks the text only at the tags ammonia kept; a
//! differential test holds it to the old two-pass reading.

use std::cell::{Cell, RefCell};

use html5ever::tokenizer::states::RawKind;
use html5ever::tokenizer::{
    BufferQueue, Tag, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};

/// Tags that start a new line of an email's text: those of ammonia's default allow-list
/// that are not inline (`vi<span>ag</span>ra` stays one word). Any other tag is as if
/// absent, as ammonia removed it.
const MAIL_BLOCK_TAGS: &[&str] = &[
    "acronym",
    "area",
    "article",
    "aside",
    "blockquote",
    "br",
    "caption",
    "center",
    "col",
    "colgroup",
    "data",
    "dd",
    "del",
    "details",
    "dfn",
    "div",
    "dl",
    "dt",
    "figcaption",
    "figure",
    "footer",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hgroup",
    "hr",
    "img",
    "ins",
    "li",
    "map",
    "nav",
    "ol",
    "p",
    "pre",
    "rp",
    "rt",
    "rtc",
    "ruby",
    "samp",
    "strike",
    "summary",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "time",
    "tr",
    "tt",
    "ul",
    "var",
];

/// Elements whose content is not read: ammonia drops `script` and `style` with their
/// content; a template's content is no part of the page; SVG and MathML are dropped
/// whole (ammonia dropped the text of their elements but kept text directly inside them,
/// the one difference from the two-pass reading, in foreign content mail hardly has).
const HIDDEN_CONTENT: &[&str] = &["script", "style", "template", "svg", "math"];

/// The text a reader sees of an email's HTML: scripts and styles dropped with their
/// content, entities decoded, blocks separated.
pub fn mail_html_text(html: &str) -> String {
    let sink = TextSink {
        text: RefCell::default(),
        breaks: Breaks::Listed(MAIL_BLOCK_TAGS),
        hidden: Cell::new(None),
    };
    read(html, sink)
}

/// The text of sanitised HTML (no script or style left whose content would be taken
/// for text); a tag not in `inline_tags` breaks the text with a newline.
pub fn html_text(html: &str, inline_tags: &'static [&'static str]) -> String {
    let sink = TextSink {
        text: RefCell::default(),
        breaks: Breaks::AllBut(inline_tags),
        hidden: Cell::new(None),
    };
    read(html, sink)
}

fn read(html: &str, sink: TextSink) -> String {
    let queue = BufferQueue::default();
    queue.push_back(html.into());
    let tokenizer = Tokenizer::new(sink, TokenizerOpts::default());
    let _ = tokenizer.feed(&queue);
    tokenizer.end();
    tokenizer.sink.text.take()
}

/// Which tags start a new line.
enum Breaks {
    Listed(&'static [&'static str]),
    AllBut(&'static [&'static str]),
}

impl Breaks {
    fn at(&self, tag: &Tag) -> bool {
        let listed = |tags: &[&str]| tags.contains(&&*tag.name);
        match self {
            // A browser reads a stray `</br>` as `<br>`.
            Breaks::Listed(tags) => listed(tags),
            // Sanitised HTML has no `</br>`; `<br></br>` is one line break.
            Breaks::AllBut(tags) => {
                !listed(tags) && (tag.kind == TagKind::StartTag || tag.name != *"br")
            }
        }
    }
}

struct TextSink {
    text: RefCell<String>,
    breaks: Breaks,
    /// The element of `HIDDEN_CONTENT` whose content is being dropped, until it ends,
    /// and how many more of it are open inside (templates nest).
    hidden: Cell<Option<(&'static str, u32)>>,
}

impl TokenSink for TextSink {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        match token {
            Token::CharacterTokens(chars) if self.hidden.get().is_none() => {
                self.text.borrow_mut().push_str(&chars);
            }
            Token::TagToken(tag) => return self.tag(&tag),
            _ => {}
        }
        TokenSinkResult::Continue
    }
}

impl TextSink {
    fn tag(&self, tag: &Tag) -> TokenSinkResult<()> {
        if let Some((hidden, nested)) = self.hidden.get() {
            if &*tag.name == hidden {
                let still = match tag.kind {
                    TagKind::StartTag => Some((hidden, nested + 1)),
                    TagKind::EndTag => nested.checked_sub(1).map(|n| (hidden, n)),
                };
                self.hidden.set(still);
            }
            return TokenSinkResult::Continue;
        }
        if self.breaks.at(tag) {
            self.text.borrow_mut().push('\n');
        }
        if tag.kind == TagKind::EndTag {
            return TokenSinkResult::Continue;
        }
        if let Some(hidden) = HIDDEN_CONTENT.iter().find(|name| &*tag.name == **name) {
            self.hidden.set(Some((hidden, 0)));
        }
        // What a browser's tree builder tells its tokenizer at these start tags: their
        // content is text (or, for `script` and `style`, dropped), never markup.
        match &*tag.name {
            "script" => TokenSinkResult::RawData(RawKind::ScriptData),
            "style" | "xmp" | "iframe" | "noembed" | "noframes" | "noscript" => {
                TokenSinkResult::RawData(RawKind::Rawtext)
            }
            "title" | "textarea" => TokenSinkResult::RawData(RawKind::Rcdata),
            "plaintext" => TokenSinkResult::Plaintext,
            _ => TokenSinkResult::Continue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::text::words;

    /// The inline tags of the reading `mail_html_text` replaced.
    const MAIL_INLINE_TAGS: &[&str] = &[
        "a", "abbr", "b", "bdi", "bdo", "cite", "code", "em", "font", "i", "kbd", "mark", "q", "s",
        "small", "span", "strong", "sub", "sup", "u", "wbr",
    ];

    /// The reading `mail_html_text` replaced: ammonia's tree, then the tokenizer.
    fn two_pass(html: &str) -> String {
        html_text(&ammonia::clean(html), MAIL_INLINE_TAGS)
    }

    #[test]
    fn html_is_read_as_text_without_scripts_and_with_entities_decoded() {
        let text = mail_html_text(
            "<style>p{}</style><p>cl&#105;ck vi<span>ag</span>ra</p><script>secret()</script><div>next</div>",
        );
        assert_eq!(words(&text), ["click", "viagra", "next"]);
    }

    #[test]
    fn the_block_tags_are_ammonias_allowed_tags_that_are_not_inline() {
        let mut expected: Vec<&str> = ammonia::Builder::default()
            .clone_tags()
            .into_iter()
            .filter(|tag| !MAIL_INLINE_TAGS.contains(tag))
            .collect();
        expected.sort_unstable();
        assert_eq!(MAIL_BLOCK_TAGS, expected);
        let hidden = ammonia::Builder::default().clone_clean_content_tags();
        assert!(hidden.iter().all(|tag| HIDDEN_CONTENT.contains(tag)));
    }

    #[test]
    fn one_pass_gives_the_words_of_the_two_pass_reading() {
        let cases = [
            "<p>Hola <b>mundo</b></p><p>otra línea</p>",
            "foo<script>x = '<p>no</p>'</script>bar",
            "<script><!-- <script> </script> visible --></script>después",
            "<style>a{}</style><STYLE>b{}</STYLE>fin",
            "<title>Asunto &amp; más</title><body>cuerpo</body>",
            "<textarea><b>literal</b></textarea>",
            "<noscript><img src=x>texto</noscript>",
            "<iframe><p>dentro</p></iframe>fuera",
            "<xmp><i>raw</i></xmp><noembed>a<b>b</noembed><noframes>c</noframes>",
            "uno<font>dos</font>tres<center>cuatro</center><tfoot>cinco</tfoot>seis",
            "<table><tr><td>a</td><td>b</td></tr></table>c<br>d</br>e",
            "<!-- comentario --><!DOCTYPE html><html><head><meta charset=utf-8></head>x</html>",
            "&nbsp;&lt;tag&gt; &eacute;l &#x41;&#66; &amp;amp; &unknown; &copy",
            "<p>unclosed <b>bold <i>both</b> italic</i> after",
            "<div>a<p>b<div>c</p>d</div>e</div>",
            "<img alt=\"texto alternativo\" src=cid:logo>despues<hr>linea",
            "<a href=\"http://x\">enlace</a>sigue<wbr>junto",
            "text with < lone less-than and > greater & ampersand",
            "<h1>T</h1><ul><li>uno<li>dos</ul><pre>  code  </pre>",
            "<script src=x></script>después<style media=x>z{}</style>fin",
            "<template><p>plantilla</p></template>visible",
            "<template>a<template>b</template>c</template>d",
            "<svg><title>icono</title><text>dibujo</text></svg>tras",
            "<select><option>uno</option><option>dos</option></select>",
            "<form><input value=no><button>enviar</button><label>campo</label></form>",
            "<p>a<table>b<tr><td>c</td></tr></table>",
            "<plaintext><b>todo</b> es texto",
            "",
        ];
        for html in cases {
            assert_eq!(
                words(&mail_html_text(html)),
                words(&two_pass(html)),
                "{html:?}"
            );
        }
    }

    #[test]
    fn foreign_content_is_not_read() {
        let text = mail_html_text("<math><mi>x</mi></math>y <svg><svg>z</svg>w</svg> v");
        assert_eq!(words(&text), ["y", "v"]);
    }

    #[test]
    fn the_fixture_html_reads_as_before() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/improvmx");
        let mut read = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let Ok(payload) =
                serde_json::from_slice::<serde_json::Value>(&std::fs::read(&path).unwrap())
            else {
                continue;
            };
            if let Some(html) = payload.get("html").and_then(|h| h.as_str()) {
                let shown = path.display();
                assert_eq!(
                    words(&mail_html_text(html)),
                    words(&two_pass(html)),
                    "{shown}"
                );
                read += 1;
            }
        }
        assert!(read > 0, "no fixture has HTML");
    }
}
