//! Test harness: the real server on an ephemeral port, backed by a real SQLite file
//! or a fresh schema in the PostgreSQL named by `MAILROOM_TEST_POSTGRES_URL`.
#![allow(dead_code)]

pub mod caddy;
pub mod process;
pub mod sse;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use mailroom::app::Application;
use mailroom::config::Settings;
use mailroom::store::Store;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const API_KEY: &str = "test-api-key-0123456789abcdef";

/// Turns every per-IP rate limit off, for tests about something else.
pub const UNLIMITED: &[(&str, &str)] = &[
    ("RATE_LIMIT_WEBHOOK", "off"),
    ("RATE_LIMIT_HEALTH", "off"),
    ("RATE_LIMIT_DOCS", "off"),
    ("RATE_LIMIT_LIST", "off"),
    ("RATE_LIMIT_GET", "off"),
    ("RATE_LIMIT_ATTACHMENT", "off"),
    ("RATE_LIMIT_MODIFY", "off"),
    ("RATE_LIMIT_GLOBAL", "off"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    /// The name `Store::engine` reports.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        }
    }
}

/// Generates one test per engine from `async fn name(engine: Engine)`.
/// The PostgreSQL variants are ignored (and reported so) unless the URL is set at build time.
#[macro_export]
macro_rules! engine_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Engine::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(not(pg_tests), ignore = "set MAILROOM_TEST_POSTGRES_URL to run the PostgreSQL tests")]
                async fn $name() {
                    super::$name($crate::common::Engine::Postgres).await;
                }
            )*
        }
    };
}

/// A database for one test: a SQLite file in a temporary directory, or a new PostgreSQL schema.
pub struct TestDatabase {
    pub url: String,
    pub dir: TempDir,
}

impl TestDatabase {
    pub async fn new(engine: Engine) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = match engine {
            Engine::Sqlite => format!("sqlite://{}/mailroom.db", dir.path().display()),
            Engine::Postgres => postgres_schema_url().await,
        };
        Self { url, dir }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

/// Creates a uniquely named schema and returns a URL whose connections use it.
async fn postgres_schema_url() -> String {
    use sqlx::Connection;
    let base = std::env::var("MAILROOM_TEST_POSTGRES_URL")
        .expect("MAILROOM_TEST_POSTGRES_URL must be set for the PostgreSQL tests");
    let schema = format!("test_{}", hex::encode(rand::random::<[u8; 8]>()));
    let mut conn = sqlx::PgConnection::connect(&base)
        .await
        .expect("connect to PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut conn)
        .await
        .expect("create test schema");
    conn.close().await.ok();
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}options=-c%20search_path%3D{schema}%2Cpublic")
}

pub struct TestApp {
    pub address: String,
    /// `http://host:port` of `GET /metrics`, when `METRICS_PORT` is set.
    pub metrics_address: Option<String>,
    /// `http://host:port` of the webmail, unless `WEBMAIL_PORT=off`.
    pub webmail_address: Option<String>,
    pub client: reqwest::Client,
    pub store: Arc<dyn Store>,
    pub database: TestDatabase,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    /// A server for functional tests: per-IP rate limits off, everything else default.
    pub async fn spawn(engine: Engine) -> Self {
        Self::spawn_with(engine, UNLIMITED).await
    }

    /// Starts the server with extra environment variables on top of the test defaults.
    pub async fn spawn_with(engine: Engine, vars: &[(&str, &str)]) -> Self {
        Self::spawn_on(TestDatabase::new(engine).await, vars).await
    }

    /// Starts a server on an existing database (e.g. to test a restart).
    pub async fn spawn_on(database: TestDatabase, vars: &[(&str, &str)]) -> Self {
        let settings = settings(&database, vars);
        let app = Application::build(settings)
            .await
            .expect("the application builds");
        let address = format!("http://{}", app.local_addr());
        let metrics_address = app.metrics_addr().map(|addr| format!("http://{addr}"));
        let webmail_address = app.webmail_addr().map(|addr| format!("http://{addr}"));
        let store = app.store();
        let (shutdown, stop) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async move {
            let _ = stop.await;
        }));
        Self {
            address,
            metrics_address,
            webmail_address,
            client: reqwest::Client::new(),
            store,
            database,
            shutdown: Some(shutdown),
            server: Some(server),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// GET with the API key.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(API_KEY)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let response = self.get(path).await;
        let status = response.status().as_u16();
        (status, response.json().await.expect("a JSON body"))
    }

    pub async fn post_webhook(&self, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.client
            .post(self.url("/webhook"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request sent")
    }

    /// Delivers a payload and returns the stored email id, asserting success.
    pub async fn deliver(&self, body: impl Into<reqwest::Body>) -> String {
        let response = self.post_webhook(body).await;
        assert_eq!(response.status(), 200);
        let json: serde_json::Value = response.json().await.unwrap();
        assert_eq!(json["success"], true);
        json["email_id"].as_str().expect("an email_id").to_owned()
    }

    /// Stops gracefully and hands back the database, for restart tests.
    pub async fn stop(mut self) -> TestDatabase {
        self.shutdown_now().await;
        let TestApp { database, .. } = self;
        database
    }

    async fn shutdown_now(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("server task")
                .expect("server ran cleanly");
        }
    }
}

fn settings(database: &TestDatabase, vars: &[(&str, &str)]) -> Settings {
    let data_dir = database.data_dir().display().to_string();
    let mut map: HashMap<String, String> = [
        ("PORT", "0"),
        ("WEBMAIL_PORT", "0"),
        ("API_KEY", API_KEY),
        ("DATA_DIR", data_dir.as_str()),
        ("DATABASE_URL", database.url.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (name, value) in vars {
        map.insert((*name).to_owned(), (*value).to_owned());
    }
    let names: Vec<String> = map.keys().cloned().collect();
    Settings::from_lookup(|name| map.get(name).cloned(), &names).expect("valid test settings")
}

/// A fixture payload from `tests/fixtures/improvmx/`.
pub fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/improvmx/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A small unique payload: each call gets its own Message-ID.
pub fn small_email(subject: &str, from: &str) -> String {
    serde_json::json!({
        "headers": {"X-Forwarding-Service": "ImprovMX v3.0.0"},
        "to": [{"name": "Ventas", "email": "ventas@puntoa.ar"}],
        "from": {"name": "Sender", "email": from},
        "subject": subject,
        "message-id": format!("<{}@test>", hex::encode(rand::random::<[u8; 8]>())),
        "text": "hello",
        "html": "<p>hello</p>",
        "inlines": [],
        "attachments": [],
    })
    .to_string()
}
