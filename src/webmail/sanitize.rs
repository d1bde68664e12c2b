//! HTML mail made safe to show: ammonia's allow-list (no script, no event handlers,
//! no forms, no `<base>`, no `<meta>`, no SVG, no `javascript:`/`data:`/`vbscript:`
//! URLs), links that open a new tab without an opener or referrer, and `cid:` images
//! pointed at signed part URLs, all in ammonia's one pass: nothing edits its output.
//! The frame's sandbox and CSP (see `body`) are the second wall, should this one fail.

use std::borrow::Cow;
use std::collections::HashMap;

use ammonia::{Builder, UrlRelative};

/// Where rewritten `cid:` images point: the only relative URLs let through.
pub const PART_PATH_PREFIX: &str = "/ui/part/";

/// Attributes kept on every element besides ammonia's defaults: layout that mail relies on.
/// `style` may name remote images (`url(…)`): the frame's CSP blocks those until allowed.
const GENERIC_ATTRIBUTES: [&str; 6] = ["style", "align", "valign", "bgcolor", "width", "height"];

/// The sanitised body; `inline_urls` maps each normalised `cid` to its signed URL
/// (an unknown `cid:` image is dropped).
pub fn clean(html: &str, inline_urls: HashMap<String, String>) -> String {
    let mut builder = Builder::default();
    builder
        .add_generic_attributes(GENERIC_ATTRIBUTES)
        .add_url_schemes(["cid"])
        .link_rel(Some("noopener noreferrer"))
        .set_tag_attribute_value("a", "target", "_blank")
        .attribute_filter(move |_element, attribute, value| {
            rewrite_cid(&inline_urls, attribute, value)
        })
        .url_relative(UrlRelative::Custom(Box::new(only_part_urls)));
    builder.clean(html).to_string()
}

/// The content id as stored parts and `cid:` URLs both reduce to.
pub fn normalise_cid(cid: &str) -> String {
    let cid = cid.trim();
    let cid = cid.strip_prefix("cid:").unwrap_or(cid);
    cid.trim_start_matches('<')
        .trim_end_matches('>')
        .to_lowercase()
}

fn rewrite_cid<'a>(
    inline_urls: &HashMap<String, String>,
    attribute: &str,
    value: &'a str,
) -> Option<Cow<'a, str>> {
    let is_cid = value
        .trim_start()
        .get(..4)
        .is_some_and(|s| s.eq_ignore_ascii_case("cid:"));
    if !is_cid {
        return Some(Cow::Borrowed(value));
    }
    // Only an image's source may name a part; `cid:` anywhere else goes.
    if attribute != "src" {
        return None;
    }
    inline_urls
        .get(&normalise_cid(value))
        .map(|url| Cow::Owned(url.clone()))
}

/// Relative URLs written by the sender (`/logout`, `../x`) are dropped; only the part
/// URLs this module wrote survive.
fn only_part_urls(url: &str) -> Option<Cow<'_, str>> {
    url.starts_with(PART_PATH_PREFIX)
        .then_some(Cow::Borrowed(url))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cleaned(html: &str) -> String {
        let urls = HashMap::from([("logo@x".to_owned(), "/ui/part/1/inlines/0?s=1".to_owned())]);
        clean(html, urls)
    }

    #[test]
    fn scripts_handlers_and_dangerous_urls_are_gone() {
        let out = cleaned(
            "<script>alert(1)</script><img src=x onerror=alert(1)>\
             <a href=\"javascript:alert(1)\">a</a><a href=\"vbscript:x\">b</a>\
             <a href=\"data:text/html,<script>alert(1)</script>\">c</a>\
             <svg onload=alert(1)></svg><meta http-equiv=refresh content=\"0;url=http://x\">\
             <base href=\"http://evil/\"><form action=\"http://evil\"><input></form>\
             <iframe src=\"http://evil\"></iframe><object data=x></object>",
        );
        for banned in [
            "script",
            "onerror",
            "javascript",
            "vbscript",
            "data:",
            "svg",
            "meta",
            "base",
            "form",
            "iframe",
            "object",
            "alert",
        ] {
            assert!(!out.to_lowercase().contains(banned), "{banned} in {out}");
        }
    }

    #[test]
    fn links_open_a_new_tab_without_opener_or_referrer() {
        let out = cleaned("<a href=\"https://example.org/\">x</a>");
        assert!(out.contains("target=\"_blank\""), "{out}");
        assert!(out.contains("rel=\"noopener noreferrer\""), "{out}");
    }

    #[test]
    fn cid_images_point_at_signed_parts_and_unknown_ones_are_dropped() {
        let out = cleaned(
            "<img src=\"cid:LOGO@x\"><img src=\"cid:other@x\"><a href=\"cid:logo@x\">l</a>",
        );
        assert!(out.contains("src=\"/ui/part/1/inlines/0?s=1\""), "{out}");
        assert_eq!(out.matches("src=").count(), 1, "{out}");
        assert!(!out.contains("href"), "{out}");
    }

    #[test]
    fn the_senders_relative_urls_are_dropped() {
        let out =
            cleaned("<a href=\"/logout\">x</a><img src=\"/ui/body/1\"><a href=\"../x\">y</a>");
        assert!(!out.contains("href"), "{out}");
        assert!(!out.contains("src"), "{out}");
    }

    #[test]
    fn malformed_quoting_cannot_smuggle_an_attribute() {
        // The shape behind CVE-2024-42009: an attribute value that closes early.
        let out = cleaned(
            "<img src=\"x\"\" onerror=\"alert(1)\"><a href='x' title=\"'\"onmouseover=alert(1)//>z</a>",
        );
        assert!(
            !out.contains("onerror") && !out.contains("onmouseover"),
            "{out}"
        );
    }
}
