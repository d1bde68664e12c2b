//! Several `mailroom` processes on one PostgreSQL database, behind a real Caddy that
//! sends each request to the next instance in turn (`lb_policy round_robin`).
#![allow(dead_code)]

pub mod sink;

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::common::caddy::{self, free_port};
use crate::common::process::mailroom;
use crate::common::{API_KEY, Engine, TestDatabase};
use crate::send_support::relay_env;
use sink::Sink;

/// The limits every instance runs with: a small per-IP limit on `GET /`, a short lockout,
/// and nothing else limited, so that the other checks count nothing.
pub const HEALTH_LIMIT: u32 = 6;
pub const LOCKOUT_FAILURES: u32 = 3;

/// One `mailroom` process, with its log in its data directory.
pub struct Instance {
    child: Option<Child>,
    /// `http://127.0.0.1:port` of the API, the webmail and `/metrics`.
    pub api: String,
    pub webmail: String,
    pub metrics: String,
    pub dir: tempfile::TempDir,
}

impl Instance {
    /// Starts the binary on `url`, relaying to `smtp_port`; returns without waiting.
    pub fn start(url: &str, smtp_port: u16) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (api, webmail, metrics) = (free_port(), free_port(), free_port());
        let mut command = mailroom(dir.path());
        for (name, value) in relay_env(smtp_port) {
            command.env(name, value);
        }
        let health = format!("{HEALTH_LIMIT}/minute");
        let failures = LOCKOUT_FAILURES.to_string();
        let data_dir = dir.path().display().to_string();
        let ports = [api, webmail, metrics].map(|port| port.to_string());
        command.envs([
            ("DATABASE_URL", url),
            ("API_KEY", API_KEY),
            ("DATA_DIR", &data_dir),
            ("PORT", &ports[0]),
            ("WEBMAIL_PORT", &ports[1]),
            ("METRICS_PORT", &ports[2]),
            ("RATE_LIMIT_HEALTH", &health),
            ("RATE_LIMIT_WEBHOOK", "off"),
            ("RATE_LIMIT_LIST", "off"),
            ("RATE_LIMIT_GLOBAL", "off"),
            ("LOCKOUT_MAX_FAILURES", &failures),
            ("LOCKOUT_SECS", "60"),
            // A row left in `sending` by a killed instance is taken over 3 s later; a
            // live send (the sink holds each for 0.3 s) must never last that long, or a
            // second instance would take it over and send it again.
            ("OUTBOX_SENDING_LEASE_SECS", "3"),
            ("OUTBOX_POLL_SECS", "0.2"),
        ]);
        let log = File::create(dir.path().join("mailroom.log")).unwrap();
        let child = command
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("the mailroom binary runs");
        Self {
            child: Some(child),
            api: format!("http://127.0.0.1:{api}"),
            webmail: format!("http://127.0.0.1:{webmail}"),
            metrics: format!("http://127.0.0.1:{metrics}"),
            dir,
        }
    }

    /// Waits until `/healthz` answers 200; panics with the log if the process exits.
    pub async fn wait_until_up(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = format!("{}/healthz", self.api);
        loop {
            if let Ok(response) = reqwest::get(&url).await
                && response.status() == 200
            {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("an instance exited at startup ({status}):\n{}", self.log());
            }
            assert!(Instant::now() < deadline, "no answer:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("mailroom.log")
    }

    /// `kill -9`: no shutdown, no finished attempt, nothing recorded.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// The sum of the instance's `/metrics` samples of `name` whose labels include all
    /// of `labels` (`route="/"`).
    pub async fn metric(&self, name: &str, labels: &[&str]) -> f64 {
        let text = reqwest::get(format!("{}/metrics", self.metrics))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .filter(|line| line.starts_with(&format!("{name}{{")))
            .filter(|line| labels.iter().all(|label| line.contains(label)))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The instances, their Caddy and their database.
pub struct Cluster {
    pub instances: Vec<Instance>,
    pub sink: Sink,
    /// `http://127.0.0.1:port` of Caddy in front of the API and of the webmail.
    pub api: String,
    pub webmail: String,
    pub database: TestDatabase,
    caddy: Child,
    _caddy_home: tempfile::TempDir,
}

impl Cluster {
    /// `count` instances started together on an empty database, then Caddy.
    pub async fn start(count: usize) -> Self {
        let database = TestDatabase::new(Engine::Postgres).await;
        let sink = Sink::start(count);
        let mut instances: Vec<Instance> = sink
            .ports
            .iter()
            .map(|port| Instance::start(&database.url, *port))
            .collect();
        for instance in &mut instances {
            instance.wait_until_up().await;
        }
        let upstreams = |pick: fn(&Instance) -> &str| {
            let hosts = instances
                .iter()
                .map(|i| pick(i).trim_start_matches("http://"));
            hosts.collect::<Vec<_>>().join(" ")
        };
        let (api_port, webmail_port) = (free_port(), free_port());
        let (caddy, home) = caddy::spawn(
            "Caddyfile-instances",
            &[
                ("CADDY_PORT", api_port.to_string()),
                ("CADDY_WEBMAIL_PORT", webmail_port.to_string()),
                ("MAILROOM_UPSTREAMS", upstreams(|i| &i.api)),
                ("WEBMAIL_UPSTREAMS", upstreams(|i| &i.webmail)),
            ],
        );
        let cluster = Self {
            instances,
            sink,
            api: format!("http://127.0.0.1:{api_port}"),
            webmail: format!("http://127.0.0.1:{webmail_port}"),
            database,
            caddy,
            _caddy_home: home,
        };
        cluster.wait_for_caddy().await;
        cluster
    }

    /// Replaces instance `index` (killed) by a new process on the same SMTP listener.
    pub async fn restart(&mut self, index: usize) {
        let mut instance = Instance::start(&self.database.url, self.sink.ports[index]);
        instance.wait_until_up().await;
        self.instances[index] = instance;
    }

    async fn wait_for_caddy(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let url = format!("{}/healthz", self.api);
        while !reqwest::get(&url).await.is_ok_and(|r| r.status() == 200) {
            assert!(Instant::now() < deadline, "caddy did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.caddy.kill();
        let _ = self.caddy.wait();
    }
}
