//! How a stored part is served, by the API and the webmail alike: the type in canonical
//! form, a disposition that never lets an active type render, and headers that keep a
//! browser from sniffing or scripting it (the Roundcube 2024 attachment XSS class);
//! bytes streamed from the store a chunk at a time, whole or the one range asked for.

mod range;

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use futures::TryStreamExt as _;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

use self::range::Requested;
use crate::email::{PartKind, PartMeta};
use crate::store::{Store, StoreError, blobs};

/// The part as a download: the whole of it (200), or the one byte range asked for (206,
/// 416 past the end), streamed from the store a chunk at a time, so that a 50 MB
/// attachment never sits in memory. `None` when its bytes are gone.
pub async fn response(
    store: Arc<dyn Store>,
    kind: PartKind,
    part: &PartMeta,
    range: Option<&HeaderValue>,
) -> Result<Option<Response>, StoreError> {
    let Some(size) = store.blobs().size(&part.blake3).await? else {
        return Ok(None);
    };
    let content_type = served_type(part.content_type.as_deref());
    let disposition = content_disposition(
        disposition_type(kind, &content_type),
        part.name.as_deref().unwrap_or("attachment"),
    );
    let content_type =
        HeaderValue::from_str(content_type.as_ref()).expect("a parsed type is a header value");
    let builder = Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_DISPOSITION, disposition)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        // Even if a browser renders the part, it gets no script, no forms, no same-origin access.
        .header(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; sandbox",
        );
    let asked = range::requested(range.and_then(|value| value.to_str().ok()), size);
    let (builder, bytes) = match asked {
        Requested::Whole => (builder.status(StatusCode::OK), 0..size),
        Requested::Part(bytes) => (
            builder.status(StatusCode::PARTIAL_CONTENT).header(
                header::CONTENT_RANGE,
                format!("bytes {}-{}/{size}", bytes.start, bytes.end - 1),
            ),
            bytes,
        ),
        Requested::Unsatisfiable => {
            let response = builder
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{size}"))
                .body(Body::empty());
            return Ok(Some(response.expect("valid download headers")));
        }
    };
    let length = bytes.end - bytes.start;
    let body = blobs::stream(store, part.blake3.clone(), bytes).map_ok(Bytes::from);
    let response = builder
        .header(header::CONTENT_LENGTH, length)
        .body(Body::from_stream(body));
    Ok(Some(response.expect("valid download headers")))
}

/// The type a part is served with: the stored one as a MIME parser reads it, reduced to
/// its essence and (for text) its charset, so a browser and this check can never read it
/// differently (`image/png;,text/html`); anything unparsable is `application/octet-stream`.
pub fn served_type(stored: Option<&str>) -> mime::Mime {
    let Some(parsed) = stored.and_then(|text| text.trim().parse::<mime::Mime>().ok()) else {
        return mime::APPLICATION_OCTET_STREAM;
    };
    let charset = parsed
        .get_param(mime::CHARSET)
        .filter(|_| parsed.type_() == mime::TEXT)
        .map(|charset| charset.as_str().to_ascii_lowercase());
    let essence = parsed.essence_str().to_ascii_lowercase();
    let canonical = match charset {
        Some(charset) => format!("{essence}; charset={charset}"),
        None => essence,
    };
    canonical.parse().unwrap_or(mime::APPLICATION_OCTET_STREAM)
}

/// Parts of `attachments` always download, as the old service's did. Parts of `inlines`
/// (`cid:` images) may show in place when their type is passive; every active type
/// (HTML, SVG, XML, JavaScript) downloads.
pub fn disposition_type(kind: PartKind, content_type: &mime::Mime) -> &'static str {
    const INLINE_SAFE: [&str; 6] = [
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "image/bmp",
        "application/pdf",
    ];
    if kind == PartKind::Inline && INLINE_SAFE.contains(&content_type.essence_str()) {
        "inline"
    } else {
        "attachment"
    }
}

/// RFC 6266: an ASCII `filename` with quotes, backslashes and controls neutralised,
/// plus an RFC 8187 `filename*` when the name is not plain ASCII.
fn content_disposition(disposition: &str, name: &str) -> String {
    // attr-char of RFC 8187: everything else is percent-encoded.
    const ATTR_CHAR: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'!')
        .remove(b'#')
        .remove(b'$')
        .remove(b'&')
        .remove(b'+')
        .remove(b'-')
        .remove(b'.')
        .remove(b'^')
        .remove(b'_')
        .remove(b'`')
        .remove(b'|')
        .remove(b'~');
    // Format characters (U+202E and other bidi controls, zero-width marks) are dropped:
    // they make "gnp.exe" show as "exe.png".
    let cleaned: String = name
        .chars()
        .filter(|c| c.general_category() != GeneralCategory::Format)
        .map(|c| {
            if c.is_control() || c == '/' || c == '\\' {
                '_'
            } else {
                c
            }
        })
        .collect();
    let ascii: String = cleaned
        .chars()
        .map(|c| if c.is_ascii() && c != '"' { c } else { '_' })
        .collect();
    let mut value = format!("{disposition}; filename=\"{ascii}\"");
    if ascii != cleaned {
        value.push_str("; filename*=UTF-8''");
        value.extend(utf8_percent_encode(&cleaned, ATTR_CHAR));
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_get_a_quoted_filename() {
        assert_eq!(
            content_disposition("inline", "factura-0001.pdf"),
            "inline; filename=\"factura-0001.pdf\""
        );
    }

    #[test]
    fn non_ascii_names_also_get_filename_star() {
        assert_eq!(
            content_disposition("attachment", "notas de la reunión.txt"),
            "attachment; filename=\"notas de la reuni_n.txt\"; filename*=UTF-8''notas%20de%20la%20reuni%C3%B3n.txt"
        );
    }

    #[test]
    fn quotes_and_line_breaks_cannot_escape_the_header() {
        let value = content_disposition("attachment", "a\"b\r\nSet-Cookie: x.csv");
        assert!(!value.contains('\r') && !value.contains('\n'));
        assert!(value.starts_with("attachment; filename=\"a_b__Set-Cookie: x.csv\""));
        assert!(HeaderValue::from_str(&value).is_ok());
    }

    #[test]
    fn active_types_always_download() {
        for active in [
            "text/html",
            "TEXT/HTML; charset=utf-8",
            "image/svg+xml",
            "application/xml",
            "text/xml",
            "application/javascript",
            "text/javascript",
            "application/xhtml+xml",
            "image/png;,text/html",
            "image/png, text/html",
        ] {
            let served = served_type(Some(active));
            assert_eq!(
                disposition_type(PartKind::Inline, &served),
                "attachment",
                "{active}"
            );
        }
        let png = served_type(Some("image/png"));
        assert_eq!(disposition_type(PartKind::Inline, &png), "inline");
        assert_eq!(disposition_type(PartKind::Attachment, &png), "attachment");
        let unknown = served_type(None);
        assert_eq!(disposition_type(PartKind::Inline, &unknown), "attachment");
    }

    #[test]
    fn stored_types_are_served_in_canonical_form() {
        assert_eq!(
            served_type(Some("image/png;,text/html")).to_string(),
            "application/octet-stream"
        );
        assert_eq!(
            served_type(Some("not a type")).to_string(),
            "application/octet-stream"
        );
        assert_eq!(
            served_type(Some(" Image/PNG; name=x.png")).to_string(),
            "image/png"
        );
        assert_eq!(
            served_type(Some("text/plain; format=flowed; charset=\"UTF-8\"")).to_string(),
            "text/plain; charset=utf-8"
        );
    }

    #[test]
    fn format_characters_are_dropped_from_names() {
        let value = content_disposition("attachment", "inv\u{202E}gnp.exe\u{200B}");
        assert_eq!(value, "attachment; filename=\"invgnp.exe\"");
    }
}
