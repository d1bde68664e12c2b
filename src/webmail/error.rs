//! The webmail's failures and its friendly error page: with `crate::error`, the only
//! place that knows HTTP status codes.

use std::time::Duration;

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};

use super::chrome::Chrome;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum WebmailError {
    /// No such page or email, or one the user may not read: the same answer for both.
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A POST without the right CSRF token: nothing was changed.
    #[error("missing or wrong CSRF token")]
    Csrf,
    /// A signed URL that is missing, wrong or expired.
    #[error("bad or expired signature")]
    BadSignature,
    /// A page for admins only.
    #[error("admins only")]
    AdminsOnly,
    /// The page needs a session: off to the login form, then back to `next`.
    #[error("login required")]
    LoginRequired { next: String },
    #[error("too many failed logins")]
    LockedOut(Duration),
    /// The client holds `EVENTS_MAX_STREAMS` live streams open already.
    #[error("too many open live streams")]
    TooManyStreams,
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("the database does not answer")]
    Unavailable(#[source] StoreError),
    #[error("store failure")]
    Store(#[source] StoreError),
    #[error("template failure")]
    Template(#[from] askama::Error),
    #[error("internal failure: {0}")]
    Internal(String),
}

impl From<StoreError> for WebmailError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(_) | StoreError::Closed => WebmailError::Unavailable(error),
            other => WebmailError::Store(other),
        }
    }
}

/// A failure to start the webmail.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("failed to open the webmail's stores")]
    Store(#[from] StoreError),
    #[error("the stored URL-signing key is malformed")]
    SigningKey,
    #[error("failed to write the setup link")]
    SetupLink(#[from] std::io::Error),
}

impl WebmailError {
    fn status(&self) -> StatusCode {
        match self {
            WebmailError::NotFound => StatusCode::NOT_FOUND,
            WebmailError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            WebmailError::Csrf | WebmailError::AdminsOnly => StatusCode::FORBIDDEN,
            WebmailError::BadSignature => StatusCode::FORBIDDEN,
            WebmailError::LoginRequired { .. } => StatusCode::SEE_OTHER,
            WebmailError::LockedOut(_) | WebmailError::TooManyStreams => {
                StatusCode::TOO_MANY_REQUESTS
            }
            WebmailError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebmailError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            WebmailError::Store(_) | WebmailError::Template(_) | WebmailError::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// A heading and a sentence for people; never internals.
    fn words(&self) -> (&'static str, String) {
        match self {
            WebmailError::NotFound => ("Not found", "There is nothing here, or it is not yours to read.".into()),
            WebmailError::MethodNotAllowed => ("Not allowed", "This page does not take that kind of request.".into()),
            WebmailError::Csrf => ("Form expired", "The form was too old or came from elsewhere, so nothing was changed. Go back, reload the page and try again.".into()),
            WebmailError::BadSignature => ("Link expired", "Reload the message to see it again.".into()),
            WebmailError::AdminsOnly => ("Admins only", "Only an administrator can open this page.".into()),
            WebmailError::LockedOut(left) => ("Too many attempts", format!("Too many failed logins from your address. Try again in {} minutes.", left.as_secs().div_ceil(60))),
            WebmailError::BadRequest(why) => ("That did not work", why.clone()),
            WebmailError::TooManyStreams => ("Too many windows", "Too many mailroom windows follow new mail from your address; close one and reload.".into()),
            WebmailError::Unavailable(_) => ("Try again soon", "The database does not answer right now.".into()),
            _ => ("Something went wrong", "The server could not show this page. It has been logged.".into()),
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    chrome: Chrome,
    heading: &'static str,
    message: String,
}

impl IntoResponse for WebmailError {
    fn into_response(self) -> Response {
        if let WebmailError::LoginRequired { next } = &self {
            let target = format!("/login?next={}", super::login::encode(next));
            return Redirect::to(&target).into_response();
        }
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %crate::telemetry::error_chain(&self), "webmail page failed");
        }
        let (heading, message) = self.words();
        let page = ErrorPage {
            chrome: Chrome::anonymous(),
            heading,
            message,
        };
        match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, heading).into_response(),
        }
    }
}

/// Renders a page template.
pub fn render(page: &impl Template) -> Result<Response, WebmailError> {
    Ok(Html(page.render()?).into_response())
}
