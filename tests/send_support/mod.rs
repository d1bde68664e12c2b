//! A real SMTP server in-process (mailin-embedded) that records what it receives, and
//! helpers for the send API tests.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mailin_embedded::response::{
    AUTH_OK, AUTHENTICATION_REQUIRED, INVALID_CREDENTIALS, NO_MAILBOX, OK,
};
use mailin_embedded::{Action, AuthMechanism, Handler, Response, Server, SslConfig};
use serde_json::{Value, json};

use base64::Engine as _;

use crate::common::{API_KEY, TestApp};

pub const DOMAIN: &str = "puntoa.ar";

/// One message as the SMTP server saw it.
#[derive(Debug, Clone, Default)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
    /// The DATA bytes exactly as they arrived, after dot-unstuffing.
    pub raw: Vec<u8>,
}

/// RFC 5321 §4.5.3.1.6: a text line is at most 1000 octets, CRLF included.
const MAX_LINE_OCTETS: usize = 1000;

#[derive(Clone, Default)]
struct Recorder {
    inbox: Arc<Mutex<Vec<Received>>>,
    current: Option<Received>,
    /// When set, AUTH PLAIN with these is required before MAIL.
    credentials: Option<(String, String)>,
    authenticated: bool,
    /// A line of the current DATA broke the line limit; the message is refused at its end.
    line_too_long: bool,
}

impl Handler for Recorder {
    fn mail(&mut self, _ip: std::net::IpAddr, _domain: &str, _from: &str) -> Response {
        if self.credentials.is_some() && !self.authenticated {
            AUTHENTICATION_REQUIRED
        } else {
            OK
        }
    }

    fn auth_plain(&mut self, _authorization: &str, user: &str, password: &str) -> Response {
        match &self.credentials {
            Some((u, p)) if u == user && p == password => {
                self.authenticated = true;
                AUTH_OK
            }
            _ => INVALID_CREDENTIALS,
        }
    }

    /// Any recipient whose local part starts with `bounce` does not exist (550).
    fn rcpt(&mut self, to: &str) -> Response {
        if to.starts_with("bounce") {
            NO_MAILBOX
        } else {
            OK
        }
    }

    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.current = Some(Received {
            from: from.to_owned(),
            to: to.to_vec(),
            data: String::new(),
            raw: Vec::new(),
        });
        self.line_too_long = false;
        OK
    }

    /// Called once per line, as the server splits them: at each LF.
    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.line_too_long |= buf.len() > MAX_LINE_OCTETS;
        if let Some(current) = &mut self.current {
            current.data.push_str(&String::from_utf8_lossy(buf));
            current.raw.extend_from_slice(buf);
        }
        Ok(())
    }

    /// Refuses for good, as real relays do, a message with a line over the limit.
    fn data_end(&mut self) -> Response {
        let done = self.current.take();
        if std::mem::take(&mut self.line_too_long) {
            // mailin would stay in DATA after an error reply; hang up instead.
            let mut refusal = Response::custom(500, "Line too long".into());
            refusal.action = Action::Close;
            return refusal;
        }
        if let Some(done) = done {
            self.inbox.lock().unwrap().push(done);
        }
        OK
    }
}

/// A running SMTP server (it lives until the test process ends).
pub struct SmtpServer {
    pub port: u16,
    inbox: Arc<Mutex<Vec<Received>>>,
}

impl SmtpServer {
    pub fn start() -> Self {
        Self::start_on(TcpListener::bind("127.0.0.1:0").expect("bind SMTP port"))
    }

    /// Starts on a port reserved earlier with `reserve_port`.
    pub fn start_on_port(port: u16) -> Self {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match TcpListener::bind(("127.0.0.1", port)) {
                Ok(listener) => return Self::start_on(listener),
                Err(e) if Instant::now() > deadline => panic!("port {port}: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    pub fn start_on(listener: TcpListener) -> Self {
        Self::start_with(listener, None)
    }

    /// STARTTLS with the certificate and key at these PEM paths, and AUTH PLAIN required
    /// with `credentials`.
    pub fn start_tls(cert_path: &str, key_path: &str, credentials: (&str, &str)) -> Self {
        let tls = (cert_path.to_owned(), key_path.to_owned(), credentials);
        Self::start_with(TcpListener::bind("127.0.0.1:0").unwrap(), Some(tls))
    }

    fn start_with(listener: TcpListener, tls: Option<(String, String, (&str, &str))>) -> Self {
        let port = listener.local_addr().unwrap().port();
        let mut recorder = Recorder::default();
        if let Some((_, _, (user, password))) = &tls {
            recorder.credentials = Some((user.to_string(), password.to_string()));
        }
        let inbox = recorder.inbox.clone();
        let mut server = Server::new(recorder);
        server.with_name("localhost").with_tcp_listener(listener);
        if let Some((cert_path, key_path, _)) = tls {
            server
                .with_ssl(SslConfig::SelfSigned {
                    cert_path,
                    key_path,
                })
                .expect("TLS setup")
                .with_auth(AuthMechanism::Plain);
        }
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        Self { port, inbox }
    }

    pub fn address(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn received(&self) -> Vec<Received> {
        self.inbox.lock().unwrap().clone()
    }

    /// Waits for `count` messages.
    pub async fn wait_for(&self, count: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "only {} of {count} messages arrived",
                received.len()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// A free port, released for someone else to bind later.
pub fn reserve_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Environment for an app that relays to `port` on 127.0.0.1 in plain SMTP, with fast retries.
pub fn relay_env(port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("DOMINIO", DOMAIN.into()),
        ("SMTP_SERVER", "127.0.0.1".into()),
        ("SMTP_PORT", port.to_string()),
        ("SMTP_SEC_TYPE", "NONE".into()),
        ("SMTP_CONNECT_TIMEOUT_SECS", "2".into()),
        ("SMTP_COMMAND_TIMEOUT_SECS", "5".into()),
        ("OUTBOX_RETRY_BASE_SECS", "0.2".into()),
        ("OUTBOX_RETRY_MAX_DELAY_SECS", "0.4".into()),
        ("OUTBOX_POLL_SECS", "0.5".into()),
        ("SEND_RATE_LIMIT", "100/minute".into()),
    ]
}

/// `relay_env` with some variables replaced or added.
pub fn env_with<'a>(
    base: &'a [(&'static str, String)],
    extra: &[(&'static str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut vars: Vec<(&str, &str)> = base
        .iter()
        .filter(|(name, _)| !extra.iter().any(|(n, _)| n == name))
        .map(|(n, v)| (*n, v.as_str()))
        .collect();
    vars.extend_from_slice(extra);
    vars
}

pub fn email(subject: &str) -> Value {
    json!({
        "from": format!("Ventas <ventas@{DOMAIN}>"),
        "to": "ana@example.org",
        "subject": subject,
        "body": "Hello Ana, your order has shipped.",
    })
}

pub async fn send(app: &TestApp, body: &Value) -> (u16, Value) {
    let response = app
        .client
        .post(app.url("/api/email/send"))
        .bearer_auth(API_KEY)
        .json(body)
        .send()
        .await
        .expect("request sent");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

/// Sends and asserts 202; returns the outbox id.
pub async fn send_ok(app: &TestApp, body: &Value) -> String {
    let (status, json) = send(app, body).await;
    assert_eq!(status, 202, "{json}");
    assert_eq!(json["status"], "queued");
    json["id"].as_str().expect("an id").to_owned()
}

/// Polls `GET /api/email/outbox/<id>` until `done` holds for its `email`.
pub async fn wait_for_status(app: &TestApp, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, json) = app.get_json(&format!("/api/email/outbox/{id}")).await;
        assert_eq!(status, 200, "{json}");
        if done(&json["email"]) {
            return json["email"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "outbox entry never reached the state: {json}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Positions of CR not followed by LF and of LF not preceded by CR.
pub fn bare_line_breaks(raw: &[u8]) -> Vec<usize> {
    (0..raw.len())
        .filter(|&i| match raw[i] {
            b'\r' => raw.get(i + 1) != Some(&b'\n'),
            b'\n' => i == 0 || raw[i - 1] != b'\r',
            _ => false,
        })
        .collect()
}

/// The header section's value of `name`, unfolded (RFC 5322 §2.2.3), as sent.
pub fn raw_header(data: &str, name: &str) -> Option<String> {
    let head = data.split("\r\n\r\n").next()?;
    let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", "\t");
    let prefix = format!("{}:", name.to_ascii_lowercase());
    unfolded.split("\r\n").find_map(|line| {
        line.to_ascii_lowercase()
            .starts_with(&prefix)
            .then(|| line[prefix.len()..].trim_start().to_owned())
    })
}

/// Decodes RFC 2047 encoded words (B and Q, UTF-8); whitespace between two adjacent
/// encoded words is dropped, as the RFC says.
pub fn decode_header(value: &str) -> String {
    let word = regex::Regex::new(r"=\?[^?]+\?([bBqQ])\?([^?]*)\?=").unwrap();
    let mut out = Vec::new();
    let mut last = 0;
    let mut after_word = false;
    for found in word.captures_iter(value) {
        let whole = found.get(0).unwrap();
        let between = &value[last..whole.start()];
        if !(after_word && between.trim().is_empty()) {
            out.extend_from_slice(between.as_bytes());
        }
        let payload = &found[2];
        if found[1].eq_ignore_ascii_case("b") {
            out.extend(
                base64::engine::general_purpose::STANDARD
                    .decode(payload)
                    .unwrap(),
            );
        } else {
            let mut bytes = payload.bytes();
            while let Some(b) = bytes.next() {
                match b {
                    b'_' => out.push(b' '),
                    b'=' => {
                        let hex: Vec<u8> = bytes.by_ref().take(2).collect();
                        out.push(
                            u8::from_str_radix(std::str::from_utf8(&hex).unwrap(), 16).unwrap(),
                        );
                    }
                    b => out.push(b),
                }
            }
        }
        last = whole.end();
        after_word = true;
    }
    out.extend_from_slice(&value.as_bytes()[last..]);
    String::from_utf8(out).expect("UTF-8 once decoded")
}
