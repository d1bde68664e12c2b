//! The middleware in front of every route: webhook authenticity, then the per-IP limits.
//!
//! It runs after routing, so it knows the route template (never the raw path, which may
//! carry the webhook secret), and after client-IP resolution.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Security;
use super::client_ip::client_ip;
use super::rate_limit::{Policy, Quota};
use super::refusals::Refusal;
use super::webhook::{WebhookAccess, WebhookRefusal};
use crate::error::ApiError;
use crate::telemetry::metrics;

const SECRET_ROUTE: &str = "/webhook/{secret}";

pub async fn guard(
    State(security): State<Arc<Security>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let (Some(policy), Some(ip)) = (
        Policy::for_request(route.as_deref(), request.method()),
        client_ip(request.extensions()),
    ) else {
        return next.run(request).await;
    };
    let ip = ip.0;
    let route = route.as_deref().unwrap_or("unmatched");
    let mut refusal = None;
    if policy == Policy::Webhook {
        let given = (route == SECRET_ROUTE)
            .then(|| request.uri().path().strip_prefix("/webhook/"))
            .flatten();
        match security.webhook.check(ip, given) {
            Ok(WebhookAccess::Authenticated) => return next.run(request).await,
            Ok(WebhookAccess::Anonymous) => {}
            Err(why) => refusal = Some(why),
        }
    }
    let quota = security.limiter.check(policy, ip).await;
    let mut response = match (&quota, refusal) {
        (Some(quota), _) if quota.exceeded.is_some() => limited(&security, quota, ip, route),
        (_, Some(why)) => refused(&security, why, ip, route),
        _ => next.run(request).await,
    };
    if let Some(quota) = &quota {
        add_headers(&mut response, quota);
    }
    response
}

fn limited(security: &Security, quota: &Quota, ip: IpAddr, route: &str) -> Response {
    rate_limited(security, quota, ip, route)
        .expect("a refused quota names its window")
        .into_response()
}

/// The 429 for a quota over its limit (logged), or `None` when it is within it.
pub(super) fn rate_limited(
    security: &Security,
    quota: &Quota,
    ip: IpAddr,
    route: &str,
) -> Option<ApiError> {
    let exceeded = quota.exceeded?;
    metrics::rate_limit_hit(route, quota.policy.name());
    let limit = exceeded.limit.to_string();
    security
        .refusals
        .warn(Some(ip), route, Refusal::RateLimited, Some(&limit));
    Some(ApiError::RateLimited {
        message: format!("Rate limit exceeded: {limit}"),
        retry_after: quota.retry_after(),
    })
}

fn refused(security: &Security, why: WebhookRefusal, ip: IpAddr, route: &str) -> Response {
    let warn = |kind| security.refusals.warn(Some(ip), route, kind, None);
    let error = match why {
        WebhookRefusal::AddressNotAllowed => {
            warn(Refusal::WebhookAddressNotAllowed);
            ApiError::Forbidden("Forbidden")
        }
        WebhookRefusal::WrongSecret => {
            warn(Refusal::WebhookWrongSecret);
            ApiError::Forbidden("Invalid webhook secret")
        }
        WebhookRefusal::NoSecretConfigured => ApiError::NotFound("Endpoint not found"),
    };
    error.into_response()
}

fn add_headers(response: &mut Response, quota: &Quota) {
    let (policy, state) = quota.header_values();
    let headers = response.headers_mut();
    for (name, value) in [("ratelimit-policy", policy), ("ratelimit", state)] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
}
