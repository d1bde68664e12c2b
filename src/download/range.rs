//! `Range: bytes=…` on downloads (RFC 9110 §14). One range is served as 206 with
//! `Content-Range`; several ranges, or a header that does not parse, get the whole part
//! (200), as the RFC allows; a range that starts past the end gets 416.

use std::ops::Range;

/// What a request asked for, against a part of `size` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requested {
    Whole,
    Part(Range<u64>),
    Unsatisfiable,
}

/// Reads a `Range` header value for a part of `size` bytes.
pub fn requested(header: Option<&str>, size: u64) -> Requested {
    let Some(spec) = header.and_then(|value| value.trim().strip_prefix("bytes=")) else {
        return Requested::Whole;
    };
    if spec.contains(',') {
        return Requested::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Requested::Whole;
    };
    let number = |text: &str| text.trim().parse::<u64>().ok();
    let range = match (first.trim(), last.trim()) {
        // `-N`: the last N bytes.
        ("", suffix) => match number(suffix) {
            Some(0) => return Requested::Unsatisfiable,
            Some(n) => size.saturating_sub(n)..size,
            None => return Requested::Whole,
        },
        (start, "") => match number(start) {
            Some(start) => start..size,
            None => return Requested::Whole,
        },
        (start, end) => match (number(start), number(end)) {
            (Some(start), Some(end)) if start <= end => start..end.saturating_add(1).min(size),
            _ => return Requested::Whole,
        },
    };
    if range.start >= size {
        Requested::Unsatisfiable
    } else {
        Requested::Part(range)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_ranges_are_read_as_the_rfc_says() {
        let part = |header: &str| requested(Some(header), 1000);
        assert_eq!(part("bytes=0-99"), Requested::Part(0..100));
        assert_eq!(part("bytes=900-"), Requested::Part(900..1000));
        assert_eq!(part("bytes=-100"), Requested::Part(900..1000));
        assert_eq!(part("bytes=-5000"), Requested::Part(0..1000));
        assert_eq!(part("bytes=990-2000"), Requested::Part(990..1000));
        assert_eq!(part(" bytes= 5 - 9 "), Requested::Part(5..10));
    }

    #[test]
    fn ranges_past_the_end_are_unsatisfiable() {
        assert_eq!(
            requested(Some("bytes=1000-"), 1000),
            Requested::Unsatisfiable
        );
        assert_eq!(requested(Some("bytes=-0"), 1000), Requested::Unsatisfiable);
        assert_eq!(requested(Some("bytes=0-"), 0), Requested::Unsatisfiable);
    }

    #[test]
    fn anything_else_gets_the_whole_part() {
        for header in [
            "bytes=0-1,5-9",
            "items=0-1",
            "bytes=9-5",
            "bytes=x-",
            "bytes=5",
        ] {
            assert_eq!(requested(Some(header), 1000), Requested::Whole, "{header}");
        }
        assert_eq!(requested(None, 1000), Requested::Whole);
    }
}
