//! Helpers for the webmail tests: users in the real store, and a small cookie-keeping
//! HTTP client that logs in through the real form.
#![allow(dead_code)]

pub mod browser;
pub mod hostile;

use std::collections::HashMap;

use chrono::Utc;
use mailroom::security::passwords::Password;
use mailroom::store::{self, NewUser, Role};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Response, redirect};

use crate::common::TestApp;

pub const PASSWORD: &str = "correct horse battery";

/// Creates a user with `PASSWORD` and these addresses.
pub async fn add_user(app: &TestApp, login: &str, role: Role, addresses: &[&str]) {
    let users = store::open_users(&app.database.url).await.unwrap();
    let user = NewUser {
        login: login.into(),
        password_hash: Password::new(PASSWORD).unwrap().hash(),
        role,
        addresses: addresses.iter().map(|a| a.to_string()).collect(),
    };
    users
        .add_user(&user, Utc::now())
        .await
        .unwrap()
        .expect("a new user");
    users.close().await;
}

/// A payload to `to`, from `from`, with an HTML body and optional attachments.
pub fn email_to(to: &str, subject: &str, html: &str, attachments: serde_json::Value) -> String {
    serde_json::json!({
        "headers": {
            "Authentication-Results": ["mx1.improvmx.com; spf=pass smtp.mailfrom=x.org; dkim=fail header.d=x.org; dmarc=pass"]
        },
        "to": [{"name": "", "email": to}],
        "from": {"name": "Sender", "email": "sender@example.org"},
        "subject": subject,
        "message-id": format!("<{}@test>", hex::encode(rand::random::<[u8; 8]>())),
        "text": format!("text of {subject}"),
        "html": html,
        "inlines": [],
        "attachments": attachments,
    })
    .to_string()
}

/// A browser stand-in: keeps cookies, never follows redirects.
pub struct Client {
    pub base: String,
    http: reqwest::Client,
    pub cookies: HashMap<String, String>,
    /// Extra headers on every request (`X-Forwarded-Proto`).
    pub headers: Vec<(&'static str, String)>,
}

impl Client {
    pub fn new(app: &TestApp) -> Self {
        Self::at(app.webmail_address.clone().expect("the webmail listens"))
    }

    /// A client of the webmail at `base` (`http://host:port`).
    pub fn at(base: String) -> Self {
        Self {
            base,
            http: reqwest::Client::builder()
                .redirect(redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: HashMap::new(),
            headers: Vec::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&mut self, response: &Response) {
        for value in response.headers().get_all(SET_COOKIE) {
            let text = value.to_str().unwrap();
            let pair = text.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || text.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    pub async fn get(&mut self, path: &str) -> Response {
        let mut request = self.http.get(format!("{}{path}", self.base));
        for (name, value) in &self.headers {
            request = request.header(*name, value);
        }
        let response = request
            .header(COOKIE, self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep_cookies(&response);
        response
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Response {
        let mut request = self.http.post(format!("{}{path}", self.base));
        for (name, value) in &self.headers {
            request = request.header(*name, value);
        }
        let body = serde_urlencoded(form);
        let response = request
            .header(COOKIE, self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        self.keep_cookies(&response);
        response
    }

    /// GETs a page and reads the CSRF token its forms carry.
    pub async fn csrf(&mut self, path: &str) -> String {
        let html = self.get(path).await.text().await.unwrap();
        csrf_in(&html)
    }

    /// Logs in through the form; answers the response to the POST.
    pub async fn login(&mut self, login: &str, password: &str) -> Response {
        let token = self.csrf("/login").await;
        self.post(
            "/login",
            &[("csrf", &token), ("email", login), ("password", password)],
        )
        .await
    }

    /// Logs in and asserts it worked.
    pub async fn logged_in(app: &TestApp, login: &str) -> Self {
        let mut client = Self::new(app);
        let response = client.login(login, PASSWORD).await;
        assert_eq!(response.status(), 303, "login of {login}");
        assert_eq!(location(&response), "/");
        client
    }
}

pub fn location(response: &Response) -> String {
    response
        .headers()
        .get(LOCATION)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// The value of the first `name="csrf"` input.
pub fn csrf_in(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").expect("a CSRF input") + 19;
    html[start..].split('"').next().unwrap().to_owned()
}

fn serde_urlencoded(form: &[(&str, &str)]) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in form {
        out.append_pair(name, value);
    }
    out.finish()
}

/// The `src` of the reading view's body frame, unescaped.
pub fn frame_src(html: &str) -> String {
    let iframe = html.split("<iframe").nth(1).expect("a body frame");
    let src = iframe
        .split("src=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    src.replace("&#38;", "&").replace("&amp;", "&")
}
