//! HTML bodies cut down to a small, safe subset with ammonia; the links they carried and
//! the text a reader will see.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use ammonia::{Builder, UrlRelative};

use crate::search::text::html_text;

/// The only tags that survive.
pub const ALLOWED_TAGS: &[&str] = &[
    "p", "br", "strong", "em", "u", "h1", "h2", "h3", "h4", "ul", "ol", "li", "a",
];

/// Tags that do not break the text around them: `vi<em>ag</em>ra` reads "viagra".
const INLINE_TAGS: &[&str] = &["a", "strong", "em", "u"];

/// A sanitised HTML body, every `href` the input held (entities decoded), and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SanitizedHtml {
    pub html: String,
    pub hrefs: Vec<String>,
    /// What a reader sees of `html`: tags removed, entities decoded, a line break
    /// for each block tag. The content checks read this.
    pub text: String,
}

/// Keeps `ALLOWED_TAGS`, `href` on links only (http, https, mailto; relative URLs dropped),
/// removes scripts and styles with their content, and marks links `noopener noreferrer nofollow`.
pub fn sanitize_html(input: &str) -> SanitizedHtml {
    let hrefs = Arc::new(Mutex::new(Vec::new()));
    let seen = hrefs.clone();
    let html = Builder::empty()
        .tags(ALLOWED_TAGS.iter().copied().collect())
        .generic_attributes(HashSet::new())
        .tag_attributes(HashMap::from([("a", HashSet::from(["href"]))]))
        .url_schemes(HashSet::from(["http", "https", "mailto"]))
        .url_relative(UrlRelative::Deny)
        .clean_content_tags(HashSet::from(["script", "style", "title", "head"]))
        .link_rel(Some("noopener noreferrer nofollow"))
        .strip_comments(true)
        .attribute_filter(move |_, attribute, value| {
            if attribute == "href"
                && let Ok(mut seen) = seen.lock()
            {
                seen.push(value.to_owned());
            }
            Some(value.into())
        })
        .clean(input)
        .to_string();
    let hrefs = hrefs.lock().map(|h| h.clone()).unwrap_or_default();
    let text = html_text(&html, INLINE_TAGS);
    SanitizedHtml { html, hrefs, text }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_and_handlers_are_removed_with_their_content() {
        let clean = sanitize_html(
            r#"<p onclick="x()">Hi<script>alert(1)</script><style>p{}</style><img src=x onerror=y></p>"#,
        );
        assert_eq!(clean.html, "<p>Hi</p>");
    }

    #[test]
    fn allowed_tags_survive_and_others_unwrap() {
        let clean =
            sanitize_html("<h1>T</h1><div><em>a</em><u>b</u><h5>c</h5></div><ol><li>1</li></ol>");
        assert_eq!(
            clean.html,
            "<h1>T</h1><em>a</em><u>b</u>c<ol><li>1</li></ol>"
        );
    }

    #[test]
    fn only_web_and_mail_links_are_kept() {
        let clean = sanitize_html(
            r#"<a href="javascript:alert(1)">j</a><a href="/relative">r</a><a href="data:text/html,x">d</a><a href="https://example.org/">ok</a><a href="mailto:a@example.org">m</a>"#,
        );
        assert_eq!(
            clean.html,
            "<a rel=\"noopener noreferrer nofollow\">j</a><a rel=\"noopener noreferrer nofollow\">r</a>\
             <a rel=\"noopener noreferrer nofollow\">d</a>\
             <a href=\"https://example.org/\" rel=\"noopener noreferrer nofollow\">ok</a>\
             <a href=\"mailto:a@example.org\" rel=\"noopener noreferrer nofollow\">m</a>"
        );
    }

    #[test]
    fn the_text_is_what_a_reader_sees() {
        let clean = sanitize_html(
            "vi<span></span>agra cl&#105;ck here!&#33;!<p>bit&#46;ly/<em>abc</em></p>\
             <ul><li>a&amp;b &lt;i&gt;</li><li>&nbsp;x<br>y</li></ul><script>hidden</script>",
        );
        assert_eq!(
            clean.text,
            "viagra click here!!!\nbit.ly/abc\n\n\na&b <i>\n\n\u{a0}x\ny\n\n"
        );
    }

    #[test]
    fn hrefs_are_reported_decoded() {
        let clean = sanitize_html(r#"<a href="&#104;ttps://bit&#46;ly/x">x</a>"#);
        assert_eq!(clean.hrefs, ["https://bit.ly/x"]);
    }
}
