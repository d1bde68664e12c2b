//! CORS: `CORS_ORIGINS` (default `*`), never combined with credentials.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Which origins may read responses from a browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    Any,
    List(Vec<HeaderValue>),
}

impl CorsOrigins {
    /// `*` or a list of `scheme://host[:port]` origins.
    pub fn parse_list(items: &[String]) -> Result<Self, String> {
        if items.is_empty() || items.iter().any(|item| item == "*") {
            return Ok(CorsOrigins::Any);
        }
        items
            .iter()
            .map(|item| parse_origin(item))
            .collect::<Result<_, _>>()
            .map(CorsOrigins::List)
    }
}

fn parse_origin(item: &str) -> Result<HeaderValue, String> {
    let problem = || format!("{item:?} is not an origin such as https://app.example.org");
    let (scheme, host) = item.split_once("://").ok_or_else(problem)?;
    if !matches!(scheme, "http" | "https") || host.is_empty() || host.contains('/') {
        return Err(problem());
    }
    HeaderValue::from_str(item).map_err(|_| problem())
}

/// The layer: simple and preflight requests from the configured origins, no credentials.
pub fn layer(origins: &CorsOrigins) -> CorsLayer {
    let allow_origin = match origins {
        CorsOrigins::Any => AllowOrigin::any(),
        CorsOrigins::List(list) => AllowOrigin::list(list.iter().cloned()),
    };
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .expose_headers([
            header::RETRY_AFTER,
            header::CONTENT_DISPOSITION,
            HeaderName::from_static("ratelimit"),
            HeaderName::from_static("ratelimit-policy"),
        ])
        .max_age(Duration::from_secs(600))
        .allow_credentials(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Result<CorsOrigins, String> {
        CorsOrigins::parse_list(&items.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn origins_are_any_or_a_list_of_origins() {
        assert_eq!(list(&[]).unwrap(), CorsOrigins::Any);
        assert_eq!(list(&["*"]).unwrap(), CorsOrigins::Any);
        assert_eq!(
            list(&["https://app.example.org", "http://localhost:3000"]).unwrap(),
            CorsOrigins::List(vec![
                HeaderValue::from_static("https://app.example.org"),
                HeaderValue::from_static("http://localhost:3000"),
            ])
        );
        for bad in [
            "app.example.org",
            "ftp://x.org",
            "https://x.org/path",
            "https://",
        ] {
            assert!(list(&[bad]).is_err(), "{bad}");
        }
    }
}
