//! `GET/POST /change-password`, for everyone: the current password is asked again,
//! every session of the user is dropped, and this browser gets a fresh one.

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use chrono::Utc;
use serde::Deserialize;

use super::access::Viewer;
use super::chrome::Chrome;
use super::error::{WebmailError, render};
use super::form::FormInput;
use super::session::{self, Transport};
use super::state::WebmailState;
use crate::security::passwords::{self, Password};

pub fn router() -> Router<WebmailState> {
    Router::new().route("/change-password", get(form).post(submit))
}

#[derive(Template)]
#[template(path = "change_password.html")]
struct PasswordPage {
    chrome: Chrome,
    problem: Option<String>,
    done: bool,
}

#[derive(Deserialize)]
struct Change {
    current: String,
    password: String,
}

async fn form(viewer: Viewer) -> Result<Response, WebmailError> {
    render(&PasswordPage {
        chrome: Chrome::of(&viewer),
        problem: None,
        done: false,
    })
}

async fn submit(
    State(state): State<WebmailState>,
    viewer: Viewer,
    Extension(transport): Extension<Transport>,
    FormInput(change): FormInput<Change>,
) -> Result<Response, WebmailError> {
    let problem = |problem: String| {
        render(&PasswordPage {
            chrome: Chrome::of(&viewer),
            problem: Some(problem),
            done: false,
        })
    };
    let password = match Password::new(&change.password) {
        Ok(password) => password,
        Err(error) => return problem(error.to_string()),
    };
    let stored = viewer.user.password_hash.clone();
    let (current_ok, hash) = tokio::task::spawn_blocking(move || {
        (passwords::verify(&change.current, &stored), password.hash())
    })
    .await
    .map_err(|e| WebmailError::Internal(e.to_string()))?;
    if !current_ok {
        return problem("The current password is wrong.".into());
    }
    state
        .users
        .set_password(&viewer.user.login, &hash, Utc::now())
        .await?;
    state.sessions.drop_user_sessions(viewer.user.id).await?;
    let started = session::start(&state, viewer.user.id, transport).await?;
    let chrome = Chrome {
        csrf: started.csrf_token,
        ..Chrome::of(&viewer)
    };
    let page = render(&PasswordPage {
        chrome,
        problem: None,
        done: true,
    })?;
    Ok((started.cookies, page).into_response())
}
