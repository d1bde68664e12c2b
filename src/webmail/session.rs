//! Sessions in the database, named by a random 256-bit id in a cookie (DESIGN §8).
//!
//! The `load` middleware runs before every page: it finds the session (dropping an
//! expired one), gives anonymous visitors a pre-session CSRF token, and refuses any POST
//! whose token is missing or wrong before a handler can change anything.

use std::net::SocketAddr;

use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::csrf;
use super::error::WebmailError;
use super::state::WebmailState;
use crate::store::Session;

/// The cookie over plain HTTP.
const PLAIN_COOKIE: &str = "mailroom_session";
/// Over HTTPS: `__Host-` binds it to this host, path `/`, `Secure`.
const SECURE_COOKIE: &str = "__Host-mailroom";
/// The anonymous visitor's CSRF token (login and setup forms).
const PLAIN_CSRF_COOKIE: &str = "mailroom_csrf";
const SECURE_CSRF_COOKIE: &str = "__Host-mailroom-csrf";

/// Activity is recorded at most this often, so reading pages rarely writes.
const TOUCH_EVERY_SECS: i64 = 60;

/// Whether this request reached us over HTTPS: only a trusted proxy's
/// `X-Forwarded-Proto` says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transport {
    pub secure: bool,
}

/// The request's valid session, when it has one.
#[derive(Debug, Clone)]
pub struct ActiveSession(pub Session);

/// The token an anonymous form carries: from the visitor's pre-session cookie.
#[derive(Debug, Clone)]
pub struct PreSessionToken(pub String);

pub async fn load(State(state): State<WebmailState>, mut request: Request, next: Next) -> Response {
    let transport = transport(&state, &request);
    let jar = CookieJar::from_headers(request.headers());
    let session = match current_session(&state, &jar, transport).await {
        Ok(session) => session,
        Err(error) => return error.into_response(),
    };
    let pre_session = jar
        .get(csrf_cookie_name(transport))
        .map(|c| c.value().to_owned())
        .filter(|token| token.len() == 64);
    let expected = match (&session, &pre_session) {
        (Some(session), _) => session.csrf_token.clone(),
        (None, Some(token)) => token.clone(),
        (None, None) => String::new(),
    };
    if request.method() == Method::POST {
        request = match check_csrf(request, &expected).await {
            Ok(request) => request,
            Err(error) => return error.into_response(),
        };
    }
    let new_token = (session.is_none() && pre_session.is_none()).then(csrf::new_token);
    let token = new_token.clone().or(pre_session).unwrap_or_default();
    request.extensions_mut().insert(transport);
    request.extensions_mut().insert(PreSessionToken(token));
    if let Some(session) = session {
        request.extensions_mut().insert(ActiveSession(session));
    }
    let mut response = next.run(request).await;
    if let Some(token) = new_token {
        append_cookie(&mut response, csrf_cookie(transport, token));
    }
    response
}

/// The cookie's session if it exists and has not expired (an expired one is dropped).
async fn current_session(
    state: &WebmailState,
    jar: &CookieJar,
    transport: Transport,
) -> Result<Option<Session>, WebmailError> {
    let Some(id) = jar
        .get(cookie_name(transport))
        .map(|c| c.value().to_owned())
    else {
        return Ok(None);
    };
    let digest = digest(&id);
    let Some(session) = state.sessions.session(&digest).await? else {
        return Ok(None);
    };
    let now = Utc::now();
    if expired(state, &session, now) {
        state.sessions.drop_session(&digest).await?;
        return Ok(None);
    }
    if (now - session.last_seen_at).num_seconds() >= TOUCH_EVERY_SECS {
        state.sessions.touch_session(&digest, now).await?;
    }
    Ok(Some(session))
}

fn expired(state: &WebmailState, session: &Session, now: DateTime<Utc>) -> bool {
    let idle = chrono::Duration::from_std(state.settings.session_idle).unwrap_or_default();
    let absolute = chrono::Duration::from_std(state.settings.session_absolute).unwrap_or_default();
    now - session.last_seen_at > idle || now - session.created_at > absolute
}

/// Refuses the POST unless it carries `expected` in the header or the form body; the
/// body is read (within the page's limit) and handed on unchanged.
async fn check_csrf(request: Request, expected: &str) -> Result<Request, WebmailError> {
    let header_token = request
        .headers()
        .get(csrf::HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if csrf::matches(expected, header_token.as_deref()) {
        return Ok(request);
    }
    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, super::BODY_LIMIT)
        .await
        .map_err(|_| WebmailError::BadRequest("The form is too large.".into()))?;
    if !csrf::matches(expected, csrf::form_token(&bytes).as_deref()) {
        return Err(WebmailError::Csrf);
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// HTTPS when a trusted proxy says so (Caddy, nginx with `X-Forwarded-Proto`).
fn transport(state: &WebmailState, request: &Request) -> Transport {
    let from_trusted = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .is_some_and(|ConnectInfo(peer)| state.trusted_proxies.contains(peer.ip().to_canonical()));
    let says_https = request
        .headers()
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"));
    Transport {
        secure: from_trusted && says_https,
    }
}

fn cookie_name(transport: Transport) -> &'static str {
    if transport.secure {
        SECURE_COOKIE
    } else {
        PLAIN_COOKIE
    }
}

fn csrf_cookie_name(transport: Transport) -> &'static str {
    if transport.secure {
        SECURE_CSRF_COOKIE
    } else {
        PLAIN_CSRF_COOKIE
    }
}

/// SHA-256 of a session id, hex: what the database keeps.
fn digest(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

fn base_cookie(name: &'static str, value: String, transport: Transport) -> Cookie<'static> {
    let mut cookie = Cookie::new(name, value);
    cookie.set_http_only(true);
    cookie.set_same_site(SameSite::Lax);
    cookie.set_path("/");
    cookie.set_secure(transport.secure);
    cookie
}

fn csrf_cookie(transport: Transport, token: String) -> Cookie<'static> {
    base_cookie(csrf_cookie_name(transport), token, transport)
}

fn append_cookie(response: &mut Response, cookie: Cookie<'static>) {
    if let Ok(value) = HeaderValue::from_str(&cookie.encoded().to_string()) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// A session just started: the `Set-Cookie` header that carries it, and its CSRF token.
pub struct Started {
    pub cookies: HeaderMap,
    pub csrf_token: String,
}

/// Starts a new session for the user: a fresh id, whatever cookie came in (no fixation).
pub async fn start(
    state: &WebmailState,
    user_id: i64,
    transport: Transport,
) -> Result<Started, WebmailError> {
    let id = hex::encode(rand::random::<[u8; 32]>());
    let now = Utc::now();
    let csrf_token = csrf::new_token();
    state
        .sessions
        .create_session(&Session {
            id_digest: digest(&id),
            user_id,
            login: String::new(),
            csrf_token: csrf_token.clone(),
            created_at: now,
            last_seen_at: now,
        })
        .await?;
    let mut cookies = HeaderMap::new();
    let cookie = base_cookie(cookie_name(transport), id, transport);
    if let Ok(value) = HeaderValue::from_str(&cookie.encoded().to_string()) {
        cookies.append(header::SET_COOKIE, value);
    }
    Ok(Started {
        cookies,
        csrf_token,
    })
}

/// Drops the session and answers the `Set-Cookie` header that clears its cookie.
pub async fn end(
    state: &WebmailState,
    session: &Session,
    transport: Transport,
) -> Result<HeaderMap, WebmailError> {
    state.sessions.drop_session(&session.id_digest).await?;
    let mut cookie = base_cookie(cookie_name(transport), String::new(), transport);
    cookie.make_removal();
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&cookie.encoded().to_string()) {
        headers.append(header::SET_COOKIE, value);
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_keeps_a_digest_not_the_id() {
        let id = "a".repeat(64);
        let stored = digest(&id);
        assert_eq!(stored.len(), 64);
        assert_ne!(stored, id);
    }

    #[test]
    fn cookies_are_http_only_lax_and_secure_only_over_https() {
        let plain = base_cookie(PLAIN_COOKIE, "x".into(), Transport { secure: false });
        let text = plain.encoded().to_string();
        assert!(
            text.contains("HttpOnly") && text.contains("SameSite=Lax") && text.contains("Path=/")
        );
        assert!(!text.contains("Secure"));
        let secure = base_cookie(SECURE_COOKIE, "x".into(), Transport { secure: true });
        let text = secure.encoded().to_string();
        assert!(
            text.starts_with("__Host-mailroom=") && text.contains("Secure"),
            "{text}"
        );
    }
}
