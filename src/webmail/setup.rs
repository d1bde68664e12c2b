//! The first start: with no users, a one-time link valid for an hour is written to
//! `DATA_DIR/setup-link` (mode 0600; the log names the file, never the token), and
//! `GET/POST /setup?token=…` creates the first admin with it.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use askama::Template;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Extension, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

use super::chrome::Chrome;
use super::error::{WebmailError, render};
use super::form::FormInput;
use super::session::PreSessionToken;
use super::state::WebmailState;
use crate::security::accounts::normalize_login;
use crate::security::passwords::Password;
use crate::store::{NewUser, Role, StoreError, UserStore};

/// The file name under `DATA_DIR`.
const FILE_NAME: &str = "setup-link";
const LIFETIME: chrono::Duration = chrono::Duration::hours(1);

/// The pending setup token (its digest) until it is used or expires.
pub struct SetupLink {
    pending: Mutex<Option<Pending>>,
    file: PathBuf,
}

struct Pending {
    digest: [u8; 32],
    expires: DateTime<Utc>,
}

impl SetupLink {
    /// Writes a fresh link when there are no users yet; otherwise none is pending.
    pub async fn prepare(
        users: &dyn UserStore,
        data_dir: &Path,
        base_url: &str,
    ) -> Result<Self, super::error::StartError> {
        let file = data_dir.join(FILE_NAME);
        if users.count_users().await? > 0 {
            let _ = std::fs::remove_file(&file);
            return Ok(Self {
                pending: Mutex::new(None),
                file,
            });
        }
        let token = hex::encode(rand::random::<[u8; 32]>());
        write_private(&file, &format!("{base_url}setup?token={token}\n"))?;
        tracing::warn!(
            path = %file.display(),
            "no webmail users yet: open the one-time setup link in this file within an hour to create the first admin"
        );
        Ok(Self {
            pending: Mutex::new(Some(Pending {
                digest: Sha256::digest(token.as_bytes()).into(),
                expires: Utc::now() + LIFETIME,
            })),
            file,
        })
    }

    /// Whether `token` is the pending, unexpired one.
    fn accepts(&self, token: &str, now: DateTime<Utc>) -> bool {
        let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.as_ref().is_some_and(|p| {
            let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
            p.expires > now && bool::from(p.digest.ct_eq(&digest))
        })
    }

    /// Kills the token and its file.
    fn consume(&self) {
        *self.pending.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let _ = std::fs::remove_file(&self.file);
    }
}

/// Creates (or replaces) `path` with mode 0600 from the start.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // Removed first: an existing file would keep its old mode.
    let _ = std::fs::remove_file(path);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

pub fn router() -> Router<WebmailState> {
    Router::new().route("/setup", get(form).post(submit))
}

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage {
    chrome: Chrome,
    token: String,
    email: String,
    problem: Option<String>,
}

#[derive(Deserialize)]
struct Token {
    token: Option<String>,
}

#[derive(Deserialize)]
struct FirstAdmin {
    email: String,
    password: String,
}

fn valid_token(state: &WebmailState, token: Option<String>) -> Result<String, WebmailError> {
    token
        .filter(|token| state.setup.accepts(token, Utc::now()))
        .ok_or(WebmailError::NotFound)
}

async fn form(
    State(state): State<WebmailState>,
    Extension(PreSessionToken(csrf)): Extension<PreSessionToken>,
    Query(query): Query<Token>,
) -> Result<Response, WebmailError> {
    let token = valid_token(&state, query.token)?;
    render(&SetupPage {
        chrome: Chrome::with_csrf(csrf),
        token,
        email: String::new(),
        problem: None,
    })
}

async fn submit(
    State(state): State<WebmailState>,
    Extension(PreSessionToken(csrf)): Extension<PreSessionToken>,
    Query(query): Query<Token>,
    FormInput(admin): FormInput<FirstAdmin>,
) -> Result<Response, WebmailError> {
    let token = valid_token(&state, query.token)?;
    let problem = match create_admin(state.users.as_ref(), &admin).await {
        Ok(()) => {
            state.setup.consume();
            return Ok(Redirect::to("/login").into_response());
        }
        Err(SetupProblem::Store(error)) => return Err(error.into()),
        Err(SetupProblem::Invalid(problem)) => problem,
    };
    render(&SetupPage {
        chrome: Chrome::with_csrf(csrf),
        token,
        email: admin.email,
        problem: Some(problem),
    })
}

enum SetupProblem {
    Invalid(String),
    Store(StoreError),
}

async fn create_admin(users: &dyn UserStore, admin: &FirstAdmin) -> Result<(), SetupProblem> {
    let login = normalize_login(&admin.email).map_err(SetupProblem::Invalid)?;
    let password =
        Password::new(&admin.password).map_err(|e| SetupProblem::Invalid(e.to_string()))?;
    if users.count_users().await.map_err(SetupProblem::Store)? > 0 {
        return Err(SetupProblem::Invalid(
            "An admin exists already: log in instead.".into(),
        ));
    }
    let hash = tokio::task::spawn_blocking(move || password.hash())
        .await
        .map_err(|e| SetupProblem::Invalid(e.to_string()))?;
    let addresses = login
        .contains('@')
        .then(|| login.clone())
        .into_iter()
        .collect();
    let user = NewUser {
        login,
        password_hash: hash,
        role: Role::Admin,
        addresses,
    };
    users
        .add_user(&user, Utc::now())
        .await
        .map_err(SetupProblem::Store)?;
    tracing::info!(user = %user.login, "first webmail admin created with the setup link");
    Ok(())
}
