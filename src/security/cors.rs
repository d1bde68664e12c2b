//! CORS: `CORS_ORIGINS` (default `*`), never combined with credentials; none at all on
//! the webhook.
//!
//! The webhook is for ImprovMX's servers, never for browsers, so it answers no preflight
//! as allowed and sends no `Access-Control-*` header: a page on another site cannot post
//! JSON to it (and the forms it could post are refused by `webhook::require_json`).

use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::response::Response;
use futures::future::Either;
use tower::{Layer, Service};
use tower_http::cors::{AllowOrigin, Cors, CorsLayer};

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

/// The layer: simple and preflight requests from the configured origins, no credentials;
/// the webhook's routes pass by it untouched.
pub fn layer(origins: &CorsOrigins) -> ExceptWebhookLayer {
    ExceptWebhookLayer(api_layer(origins))
}

fn api_layer(origins: &CorsOrigins) -> CorsLayer {
    let allow_origin = match origins {
        CorsOrigins::Any => AllowOrigin::any(),
        CorsOrigins::List(list) => AllowOrigin::list(list.iter().cloned()),
    };
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
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

/// The route templates that never answer CORS.
const WEBHOOK_ROUTES: [&str; 2] = ["/webhook", "/webhook/{secret}"];

/// CORS everywhere but on the webhook's routes (known by their route template, so
/// `OPTIONS /webhook` is the webhook's too).
#[derive(Clone)]
pub struct ExceptWebhookLayer(CorsLayer);

impl<S: Clone> Layer<S> for ExceptWebhookLayer {
    type Service = ExceptWebhook<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ExceptWebhook {
            cors: self.0.layer(inner.clone()),
            plain: inner,
        }
    }
}

#[derive(Clone)]
pub struct ExceptWebhook<S> {
    cors: Cors<S>,
    plain: S,
}

impl<S, B> Service<Request> for ExceptWebhook<S>
where
    S: Service<Request, Response = Response<B>> + Clone,
    B: Default,
{
    type Response = Response<B>;
    type Error = S::Error;
    type Future = Either<<Cors<S> as Service<Request>>::Future, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match self.cors.poll_ready(cx) {
            Poll::Ready(Ok(())) => self.plain.poll_ready(cx),
            other => other,
        }
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let webhook = request
            .extensions()
            .get::<MatchedPath>()
            .is_some_and(|route| WEBHOOK_ROUTES.contains(&route.as_str()));
        if webhook {
            Either::Right(self.plain.call(request))
        } else {
            Either::Left(self.cors.call(request))
        }
    }
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
