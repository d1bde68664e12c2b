//! `ApiError` → JSON response, in one place. Only this module knows status codes.
//!
//! Every error body is `{"success":false,"error":"<short>","message":"<detail>"}`;
//! 5xx bodies never carry internals, whose cause chain is logged once, here.

use axum::Json;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::store::StoreError;
use crate::telemetry::error_chain;

/// Every error: `success` is false, `error` is short, `message` (optional) is the detail.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"success": false, "error": "Email not found"}))]
pub struct ErrorBody {
    /// Always `false`.
    pub success: bool,
    #[schema(example = "Invalid API key")]
    pub error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The send API's 429 only (see its own schema).
    #[serde(rename = "retryAfter", skip_serializing_if = "Option::is_none")]
    #[schema(ignore)]
    pub retry_after: Option<u64>,
}

/// When a client refused a stream may try again: about when a dropped one is noticed.
const STREAM_RETRY_AFTER_SECS: u64 = 15;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{error}")]
    BadRequest {
        error: &'static str,
        message: String,
    },
    #[error("missing credentials")]
    MissingCredentials,
    #[error("invalid API key")]
    InvalidApiKey,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    NotFound(&'static str),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("payload too large")]
    PayloadTooLarge,
    /// Over a named resource cap (parts, JSON keys); the message names it.
    #[error("too large: {0}")]
    TooLarge(String),
    /// The request (or its body) took longer than allowed.
    #[error("request timeout: {0}")]
    RequestTimeout(String),
    /// A body in a type the route does not take (`expected` names the one it does).
    #[error("unsupported media type")]
    UnsupportedMediaType { expected: &'static str },
    /// A per-IP rate limit; `message` names it (`Rate limit exceeded: 30 per 1 minute`).
    #[error("{message}")]
    RateLimited { message: String, retry_after: u64 },
    /// The client holds `EVENTS_MAX_STREAMS` event streams open already.
    #[error("too many open event streams")]
    TooManyStreams { max: usize },
    /// Too many failed authentications from this client IP.
    #[error("locked out")]
    LockedOut { retry_after: u64 },
    /// A send-API limit: 429 with `retryAfter` in the body and `Retry-After`.
    #[error("send limit: {message}")]
    SendLimited { message: String, retry_after: u64 },
    #[error("storage failure")]
    Store(#[from] StoreError),
    /// A readiness probe found the database unreachable.
    #[error("not ready")]
    NotReady,
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn bad_request(error: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            error,
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::MissingCredentials => StatusCode::UNAUTHORIZED,
            ApiError::InvalidApiKey => StatusCode::FORBIDDEN,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge | ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RateLimited { .. }
            | ApiError::LockedOut { .. }
            | ApiError::TooManyStreams { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::SendLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Store(StoreError::DiskFull) => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::Store(StoreError::Closed | StoreError::Unavailable(_))
            | ApiError::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Store(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The short `error` text and the optional human `message`.
    fn body(&self) -> (&str, Option<String>) {
        match self {
            ApiError::BadRequest { error, message } => (error, Some(message.clone())),
            ApiError::MissingCredentials => (
                "Missing API key",
                Some("Send `Authorization: Bearer <API key>`".into()),
            ),
            ApiError::InvalidApiKey => ("Invalid API key", None),
            ApiError::Forbidden(what) | ApiError::NotFound(what) => (what, None),
            ApiError::MethodNotAllowed => ("Method not allowed", None),
            ApiError::PayloadTooLarge => ("Payload too large", None),
            ApiError::TooLarge(message) => ("Payload too large", Some(message.clone())),
            ApiError::RequestTimeout(message) => ("Request timeout", Some(message.clone())),
            ApiError::UnsupportedMediaType { expected } => (
                "Unsupported media type",
                Some(format!("send the body as Content-Type: {expected}")),
            ),
            ApiError::RateLimited { message, .. } => (message, None),
            ApiError::TooManyStreams { max } => (
                "Too many open event streams",
                Some(format!(
                    "at most {max} per client IP (EVENTS_MAX_STREAMS); close one first"
                )),
            ),
            ApiError::LockedOut { .. } => {
                ("Too many failed attempts. Please try again later.", None)
            }
            ApiError::SendLimited { message, .. } => ("Rate limit exceeded", Some(message.clone())),
            ApiError::Store(StoreError::DiskFull) => (
                "Insufficient storage",
                Some("The email was not stored; retry later".into()),
            ),
            ApiError::Store(StoreError::Closed) => (
                "Service unavailable",
                Some("The server is shutting down; retry later".into()),
            ),
            ApiError::Store(StoreError::Unavailable(_)) => (
                "Service unavailable",
                Some("The database does not answer; nothing was stored, retry later".into()),
            ),
            ApiError::NotReady => (
                "Service unavailable",
                Some("The database does not answer".into()),
            ),
            ApiError::Store(_) | ApiError::Internal(_) => ("Internal server error", None),
        }
    }

    /// Seconds to wait before trying again, for the `Retry-After` header.
    fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::RateLimited { retry_after, .. }
            | ApiError::LockedOut { retry_after }
            | ApiError::SendLimited { retry_after, .. } => Some((*retry_after).max(1)),
            ApiError::TooManyStreams { .. } => Some(STREAM_RETRY_AFTER_SECS),
            ApiError::Store(StoreError::DiskFull | StoreError::Closed) | ApiError::NotReady => {
                Some(60)
            }
            ApiError::Store(StoreError::Unavailable(_)) => Some(5),
            _ => None,
        }
    }

    /// Maps a body-buffering failure: too large → 413, anything else → 400.
    pub fn from_body(rejection: BytesRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::bad_request("Invalid request body", rejection.body_text())
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::bad_request("Invalid query string", rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::bad_request("Invalid path", rejection.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %error_chain(&self), "request failed");
        }
        let (error, message) = self.body();
        let body = ErrorBody {
            success: false,
            error: error.to_owned(),
            message,
            retry_after: match &self {
                ApiError::SendLimited { retry_after, .. } => Some(*retry_after),
                _ => None,
            },
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if matches!(self, ApiError::MissingCredentials) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
