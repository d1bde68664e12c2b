//! `GET/POST /admin/users`, for admins: create and remove users, reset passwords,
//! change roles (never one's own) and assign addresses, aliases and catch-alls.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use chrono::Utc;
use serde::Deserialize;

use super::access::Viewer;
use super::chrome::Chrome;
use super::error::{WebmailError, render};
use super::form::FormInput;
use super::state::WebmailState;
use crate::security::accounts::{generate_password, normalize_address, normalize_login};
use crate::security::passwords::Password;
use crate::store::{NewUser, Role};

pub fn router() -> Router<WebmailState> {
    Router::new().route("/admin/users", get(list).post(change))
}

struct UserRow {
    login: String,
    role: &'static str,
    addresses: String,
    is_self: bool,
}

#[derive(Template)]
#[template(path = "admin_users.html")]
struct UsersPage {
    chrome: Chrome,
    users: Vec<UserRow>,
    problem: Option<String>,
    notice: Option<String>,
}

#[derive(Deserialize)]
struct UserChange {
    action: String,
    login: String,
    #[serde(default)]
    addresses: String,
    #[serde(default)]
    admin: Option<String>,
}

fn admin_only(viewer: &Viewer) -> Result<(), WebmailError> {
    if viewer.is_admin() {
        Ok(())
    } else {
        Err(WebmailError::AdminsOnly)
    }
}

async fn list(State(state): State<WebmailState>, viewer: Viewer) -> Result<Response, WebmailError> {
    admin_only(&viewer)?;
    page(&state, &viewer, Ok(None)).await
}

async fn page(
    state: &WebmailState,
    viewer: &Viewer,
    outcome: Result<Option<String>, String>,
) -> Result<Response, WebmailError> {
    let users = state
        .users
        .users()
        .await?
        .into_iter()
        .map(|user| UserRow {
            is_self: user.id == viewer.user.id,
            role: user.role.name(),
            addresses: user.addresses.join(", "),
            login: user.login,
        })
        .collect();
    let (notice, problem) = match outcome {
        Ok(notice) => (notice, None),
        Err(problem) => (None, Some(problem)),
    };
    render(&UsersPage {
        chrome: Chrome::of(viewer),
        users,
        problem,
        notice,
    })
}

async fn change(
    State(state): State<WebmailState>,
    viewer: Viewer,
    FormInput(form): FormInput<UserChange>,
) -> Result<Response, WebmailError> {
    admin_only(&viewer)?;
    let outcome = apply(&state, &viewer, form).await?;
    page(&state, &viewer, outcome).await
}

/// Applies one change: `Ok(notice)` or `Err(problem)` for the page, or a store failure.
async fn apply(
    state: &WebmailState,
    viewer: &Viewer,
    form: UserChange,
) -> Result<Result<Option<String>, String>, WebmailError> {
    let login = match normalize_login(&form.login) {
        Ok(login) => login,
        Err(problem) => return Ok(Err(problem)),
    };
    let own = login == viewer.user.login;
    let users = &state.users;
    let found = match form.action.as_str() {
        "add" => return add(state, &login, &form).await,
        "addresses" => match parse_addresses(&form.addresses) {
            Ok(addresses) => users.set_addresses(&login, &addresses).await?,
            Err(problem) => return Ok(Err(problem)),
        },
        _ if own => {
            return Ok(Err(
                "You cannot change your own role, password or account here.".into(),
            ));
        }
        "make-admin" => users.set_role(&login, Role::Admin).await?,
        "make-user" => users.set_role(&login, Role::User).await?,
        "reset" => return reset(state, &login).await,
        "remove" => users.remove_user(&login).await?,
        _ => return Ok(Err("Unknown action.".into())),
    };
    Ok(if found {
        Ok(Some(format!("Saved {login}.")))
    } else {
        Err(format!("No user {login}."))
    })
}

async fn add(
    state: &WebmailState,
    login: &str,
    form: &UserChange,
) -> Result<Result<Option<String>, String>, WebmailError> {
    let mut addresses = match parse_addresses(&form.addresses) {
        Ok(addresses) => addresses,
        Err(problem) => return Ok(Err(problem)),
    };
    if addresses.is_empty() && login.contains('@') {
        addresses.push(login.to_owned());
    }
    let password = generate_password();
    let user = NewUser {
        login: login.to_owned(),
        password_hash: hash(&password).await?,
        role: if form.admin.is_some() {
            Role::Admin
        } else {
            Role::User
        },
        addresses,
    };
    Ok(match state.users.add_user(&user, Utc::now()).await? {
        Some(_) => Ok(Some(format!(
            "Created {login} with the password {password} (shown once)."
        ))),
        None => Err(format!("{login} exists already.")),
    })
}

async fn reset(
    state: &WebmailState,
    login: &str,
) -> Result<Result<Option<String>, String>, WebmailError> {
    let Some(user) = state.users.user(login).await? else {
        return Ok(Err(format!("No user {login}.")));
    };
    let password = generate_password();
    state
        .users
        .set_password(login, &hash(&password).await?, Utc::now())
        .await?;
    state.sessions.drop_user_sessions(user.id).await?;
    Ok(Ok(Some(format!(
        "New password for {login}: {password} (shown once)."
    ))))
}

async fn hash(password: &str) -> Result<String, WebmailError> {
    let password = Password::new(password).map_err(|e| WebmailError::Internal(e.to_string()))?;
    tokio::task::spawn_blocking(move || password.hash())
        .await
        .map_err(|e| WebmailError::Internal(e.to_string()))
}

/// `ana@x.org, *@y.org` → normalised addresses, or the first problem.
fn parse_addresses(text: &str) -> Result<Vec<String>, String> {
    text.split([',', ' ', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(normalize_address)
        .collect()
}
