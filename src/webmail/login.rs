//! `GET/POST /login` and `POST /logout`. Failed logins lock a client IP out with the
//! API's thresholds but counters of their own; the target after login is a local path.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

use super::access::Viewer;
use super::chrome::Chrome;
use super::error::{WebmailError, render};
use super::form::FormInput;
use super::session::{self, ActiveSession, PreSessionToken, Transport};
use super::state::WebmailState;
use crate::security::client_ip::ClientIp;
use crate::security::passwords;

pub fn router() -> Router<WebmailState> {
    Router::new()
        .route("/login", get(form).post(submit))
        .route("/logout", post(logout))
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    chrome: Chrome,
    problem: Option<String>,
    email: String,
    next: String,
}

#[derive(Deserialize)]
struct Next {
    next: Option<String>,
}

#[derive(Deserialize)]
struct Credentials {
    email: String,
    password: String,
}

/// The login form; someone already logged in goes straight on.
async fn form(
    session: Option<Extension<ActiveSession>>,
    Extension(PreSessionToken(token)): Extension<PreSessionToken>,
    Query(next): Query<Next>,
) -> Result<Response, WebmailError> {
    let next = local_target(next.next.as_deref()).to_owned();
    if session.is_some() {
        return Ok(Redirect::to(&next).into_response());
    }
    render(&LoginPage {
        chrome: Chrome::with_csrf(token),
        problem: None,
        email: String::new(),
        next,
    })
}

async fn submit(
    State(state): State<WebmailState>,
    ClientIp(ip): ClientIp,
    Extension(transport): Extension<Transport>,
    Extension(PreSessionToken(token)): Extension<PreSessionToken>,
    old: Option<Extension<ActiveSession>>,
    Query(next): Query<Next>,
    FormInput(credentials): FormInput<Credentials>,
) -> Result<Response, WebmailError> {
    let admitted = state
        .lockout
        .check(ip)
        .await
        .map_err(WebmailError::LockedOut)?;
    let login = credentials.email.trim().to_lowercase();
    let user = state.users.user(&login).await?;
    let attempt = credentials.password;
    // An unknown login is checked against a stand-in hash, so it takes as long as a
    // wrong password: the answer's timing does not tell which logins exist.
    let hash = user
        .as_ref()
        .map_or_else(|| stand_in_hash().to_owned(), |u| u.password_hash.clone());
    // Verify off the async workers: argon2id takes tens of milliseconds on purpose.
    let verified = tokio::task::spawn_blocking(move || passwords::verify(&attempt, &hash))
        .await
        .unwrap_or(false)
        && user.is_some();
    let next = local_target(next.next.as_deref()).to_owned();
    let Some(user) = user.filter(|_| verified) else {
        if state.lockout.fail(ip).await {
            tracing::warn!(client_ip = %ip, "webmail login locked out after repeated failures");
        }
        let page = LoginPage {
            chrome: Chrome::with_csrf(token),
            problem: Some("Wrong email or password.".into()),
            email: login,
            next,
        };
        return render(&page);
    };
    state.lockout.succeed(ip, admitted).await;
    drop_expired_sessions(&state).await?;
    // A session the browser brought (someone else's, or planted) never survives a login.
    if let Some(Extension(ActiveSession(old))) = old {
        state.sessions.drop_session(&old.id_digest).await?;
    }
    let started = session::start(&state, user.id, transport).await?;
    tracing::info!(user = %user.login, "webmail login");
    Ok((started.cookies, Redirect::to(&next)).into_response())
}

/// Expired sessions are refused as they come; a login also clears them out of the table.
async fn drop_expired_sessions(state: &WebmailState) -> Result<(), WebmailError> {
    let now = chrono::Utc::now();
    let idle = chrono::Duration::from_std(state.settings.session_idle).unwrap_or_default();
    let absolute = chrono::Duration::from_std(state.settings.session_absolute).unwrap_or_default();
    state
        .sessions
        .drop_expired_sessions(now - idle, now - absolute)
        .await?;
    Ok(())
}

async fn logout(
    State(state): State<WebmailState>,
    viewer: Viewer,
    Extension(transport): Extension<Transport>,
) -> Result<Response, WebmailError> {
    let cookies = session::end(&state, &viewer.session, transport).await?;
    Ok((cookies, Redirect::to("/login")).into_response())
}

/// A hash of a random password, made once, for logins that match no user.
fn stand_in_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        let random = crate::security::accounts::generate_password();
        passwords::Password::new(&random)
            .expect("a generated password is long enough")
            .hash()
    })
}

/// `next` when it is a path on this site, else `/`: never `//host`, `/\host` or a URL.
pub fn local_target(next: Option<&str>) -> &str {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/\\")
                && !path.chars().any(|c| c.is_control() || c == '\\') =>
        {
            path
        }
        _ => "/",
    }
}

/// Percent-encodes a query value (RFC 3986 unreserved characters stay as they are).
pub fn encode(value: &str) -> String {
    const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    utf8_percent_encode(value, QUERY_VALUE).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_login_targets() {
        assert_eq!(
            local_target(Some("/view/abc?mailbox=a%40x.org")),
            "/view/abc?mailbox=a%40x.org"
        );
        assert_eq!(local_target(Some("/")), "/");
        for outside in [
            "//evil.example/",
            "/\\evil.example",
            "https://evil.example/",
            "evil.example",
            "/\t/evil.example",
            "/a\\b",
            "",
        ] {
            assert_eq!(local_target(Some(outside)), "/", "{outside:?}");
        }
        assert_eq!(local_target(None), "/");
    }
}
