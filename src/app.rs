//! The application: settings + store + router, bound to a port (0 in tests), served until shutdown.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures::FutureExt as _;
use tokio::net::TcpListener;

use crate::api::AppState;
use crate::config::{ApiKeySource, Settings, SmtpSecurity, resolve_api_keys};
use crate::outbound::SendService;
use crate::outbound::outbox::RetryPolicy;
use crate::outbound::smtp::Relay;
use crate::outbound::worker::Worker;
use crate::security::Security;
use crate::security::auth::ApiKeys;
use crate::security::shared::SharedState;
use crate::store::feed::{ChangeFeed, FeedTiming};
use crate::store::{self, Store};
use crate::telemetry;

pub struct Application {
    listener: TcpListener,
    /// `GET /metrics`, on `METRICS_PORT` when set.
    metrics: Option<TcpListener>,
    /// The webmail, on `WEBMAIL_PORT` unless `off`.
    webmail: Option<(TcpListener, crate::webmail::WebmailState)>,
    state: AppState,
    /// Delivers the outbox; started by `run_until`.
    worker: Worker,
}

impl Application {
    /// Binds the listeners, opens and migrates the store, and prepares the API key.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        // The listeners first: a start that fails on a port in use must not leave a
        // data directory, a database or a generated key behind.
        let address = SocketAddr::new(settings.host, settings.port);
        let listener = TcpListener::bind(address)
            .await
            .with_context(|| format!("failed to listen on {address} (HOST, PORT)"))?;
        let metrics = bind_metrics(&settings).await?;
        let webmail_listener = bind_webmail(&settings).await?;
        let store = open_store(&settings).await?;
        let shared = open_shared_limits(&settings).await?;
        let (outbound, worker) = open_outbound(&settings).await?;
        // Last, so a database that cannot be opened leaves no key behind either.
        let (keys, key_source) = resolve_api_keys(&settings.api_keys, &settings.data_dir)
            .with_context(|| {
                format!(
                    "failed to prepare the API key in {}",
                    settings.data_dir.display()
                )
            })?;

        log_startup(&settings, &key_source, &listener, store.engine());
        let feed = ChangeFeed::start(store.clone(), FeedTiming::default());
        let webmail = match webmail_listener {
            Some(listener) => {
                let url = local_url(listener.local_addr()?);
                let state = crate::webmail::build(
                    store.clone(),
                    feed.clone(),
                    &settings,
                    shared.as_ref(),
                    &url,
                )
                .await
                .context("failed to start the webmail")?;
                tracing::info!("webmail at {url}");
                Some((listener, state))
            }
            None => None,
        };
        let state = AppState {
            store: store.clone(),
            api_keys: Arc::new(ApiKeys::new(&keys)),
            security: Arc::new(Security::new(&settings.security, shared)),
            settings: Arc::new(settings),
            outbound,
            feed,
        };
        Ok(Self {
            listener,
            metrics,
            webmail,
            state,
            worker,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Where `GET /metrics` is served, when `METRICS_PORT` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        let listener = self.metrics.as_ref()?;
        listener.local_addr().ok()
    }

    /// Where the webmail is served, unless `WEBMAIL_PORT=off`.
    pub fn webmail_addr(&self) -> Option<SocketAddr> {
        let (listener, _) = self.webmail.as_ref()?;
        listener.local_addr().ok()
    }

    pub fn store(&self) -> Arc<dyn Store> {
        self.state.store.clone()
    }

    /// Serves until `shutdown` completes, lets in-flight requests finish, then closes the store.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let store = self.state.store.clone();
        let outbox = self.state.outbound.outbox.clone();
        let (stop_worker, stop) = tokio::sync::watch::channel(false);
        let worker = tokio::spawn(self.worker.run(stop));
        let filing = tokio::spawn(crate::inbound::filing::file_all(
            self.state.store.clone(),
            self.state.settings.outbound.sender_domains.clone(),
        ));
        let rechunk = tokio::spawn(crate::store::blobs::rechunk::rechunk_all(
            self.state.store.clone(),
        ));
        let retention = tokio::spawn(crate::store::retention::sweep_forever(
            self.state.store.clone(),
            self.state.settings.retention.clone(),
        ));
        let shared_limits = self.state.security.shared.clone();
        let max_clients = self.state.settings.security.max_clients;
        let limits_sweep = shared_limits
            .clone()
            .map(|s| tokio::spawn(s.sweep_forever(max_clients)));
        let http = self.state.settings.http.clone();
        let shutdown = shutdown.shared();
        let metrics = self.metrics.map(|listener| {
            tokio::spawn(serve_metrics(
                listener,
                self.state.clone(),
                shutdown.clone(),
            ))
        });
        // Open event streams (the API's and the webmail's) end at shutdown, so that they
        // do not hold up the listeners' graceful stop.
        let feed = self.state.feed.clone();
        let end_streams = tokio::spawn(shutdown.clone().map(move |()| feed.close()));
        let webmail = self.webmail.map(|(listener, state)| {
            let http = http.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                let (users, sessions) = (state.users.clone(), state.sessions.clone());
                crate::server::serve(listener, crate::webmail::router(state), &http, shutdown)
                    .await;
                users.close().await;
                sessions.close().await;
            })
        });
        let router = crate::api::router(self.state);
        crate::server::serve(self.listener, router, &http, shutdown).await;
        end_streams.abort();
        if let Some(metrics) = metrics {
            let _ = metrics.await;
        }
        if let Some(webmail) = webmail {
            let _ = webmail.await;
        }
        filing.abort();
        rechunk.abort();
        if let Some(sweep) = limits_sweep {
            sweep.abort();
        }
        if let Some(shared) = shared_limits {
            shared.store.close().await;
        }
        // Between batches at worst: each batch is its own transaction.
        retention.abort();
        let _ = stop_worker.send(true);
        if tokio::time::timeout(WORKER_STOP_TIMEOUT, worker)
            .await
            .is_err()
        {
            tracing::warn!(
                "the outbox worker did not stop in time; its email is queued again at the next start"
            );
        }
        outbox.close().await;
        store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// How long shutdown waits for a delivery in progress.
const WORKER_STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// How often recorded histogram samples are folded into buckets (bounded memory).
const METRICS_UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The listener of `GET /metrics` on `HOST:METRICS_PORT`, when set; installs the recorder.
async fn bind_metrics(settings: &Settings) -> anyhow::Result<Option<TcpListener>> {
    let Some(port) = settings.metrics_port else {
        return Ok(None);
    };
    let address = SocketAddr::new(settings.host, port);
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("failed to listen on {address} (HOST, METRICS_PORT)"))?;
    telemetry::metrics::install();
    let url = local_url(listener.local_addr()?);
    tracing::info!("metrics at {url}metrics");
    Ok(Some(listener))
}

/// The webmail's listener on `HOST:WEBMAIL_PORT`, unless `off`.
async fn bind_webmail(settings: &Settings) -> anyhow::Result<Option<TcpListener>> {
    let Some(port) = settings.webmail.port else {
        return Ok(None);
    };
    let address = SocketAddr::new(settings.host, port);
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("failed to listen on {address} (HOST, WEBMAIL_PORT)"))?;
    Ok(Some(listener))
}

/// Serves `GET /metrics` until `shutdown`, with the API listener's connection limits.
async fn serve_metrics(listener: TcpListener, state: AppState, shutdown: impl Future<Output = ()>) {
    let upkeep = tokio::spawn(async {
        let mut every = tokio::time::interval(METRICS_UPKEEP_EVERY);
        loop {
            every.tick().await;
            telemetry::metrics::upkeep();
        }
    });
    let http = state.settings.http.clone();
    crate::server::serve(
        listener,
        crate::api::metrics::router(state),
        &http,
        shutdown,
    )
    .await;
    upkeep.abort();
}

/// The send service and its delivery worker, on the outbox in `DATABASE_URL`.
async fn open_outbound(settings: &Settings) -> anyhow::Result<(Arc<SendService>, Worker)> {
    let url = settings.database_url.expose();
    let outbox = store::open_outbox(url)
        .await
        .with_context(|| format!("failed to open the outbox in {}", store::redact_url(url)))?;
    let config = &settings.outbound;
    let relay = Relay::new(config).context("invalid SMTP settings")?;
    log_outbound(config);
    let service = Arc::new(SendService::new(config, outbox.clone()));
    let worker = Worker {
        outbox,
        relay: Arc::new(relay),
        retry: RetryPolicy {
            base: config.retry_base,
            max_delay: config.retry_max_delay,
            horizon: config.retry_horizon,
        },
        poll_interval: config.poll_interval,
        sending_lease: config.sending_lease,
        sole_owner: store::Engine::of(url)? == store::Engine::Sqlite,
        wake: service.wake.clone(),
    };
    Ok((service, worker))
}

/// The relay in use (never its credentials) and settings that make sending fail or leak.
fn log_outbound(config: &crate::config::OutboundSettings) {
    tracing::info!(
        server = %config.smtp_server,
        port = config.smtp_port,
        security = ?config.smtp_security,
        family = ?config.smtp_ip_family,
        authenticated = config.smtp_username.is_some(),
        "outbound relay"
    );
    if config.sender_domains.is_empty() {
        tracing::warn!("DOMINIO is unset: the send API refuses every email");
    }
    if config.smtp_security == SmtpSecurity::None && config.smtp_username.is_some() {
        tracing::warn!(
            "SMTP_SEC_TYPE=NONE sends SMTP_PASSWORD in clear text: use it only with a local relay"
        );
    }
}

/// On PostgreSQL, the rate limits and lockouts every instance shares (after migrating).
async fn open_shared_limits(settings: &Settings) -> anyhow::Result<Option<SharedState>> {
    let url = settings.database_url.expose();
    let store = store::limits::open_shared_limits(url)
        .await
        .context("failed to open the shared rate limits")?;
    Ok(store.map(SharedState::new))
}

/// Opens the store named by `DATABASE_URL` and applies pending migrations.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    let url = settings.database_url.expose();
    let store = store::open_with(url, settings.database_acquire_timeout)
        .await
        .with_context(|| format!("failed to open the database {}", store::redact_url(url)))?;
    store
        .migrate()
        .await
        .context("failed to migrate the database")?;
    Ok(store)
}

fn log_startup(settings: &Settings, keys: &ApiKeySource, listener: &TcpListener, engine: &str) {
    let database = store::redact_url(settings.database_url.expose());
    match listener.local_addr() {
        Ok(address) => {
            let url = local_url(address);
            tracing::info!(
                %address,
                engine,
                %database,
                "mailroom listening on {url} with the API docs at {url}docs"
            );
        }
        Err(_) => tracing::info!(engine, %database, "mailroom listening"),
    }
    match keys {
        ApiKeySource::Environment => {
            tracing::info!(
                keys = settings.api_keys.len(),
                "API keys from API_KEY/API_KEYS"
            )
        }
        ApiKeySource::Generated(path) => tracing::warn!(
            path = %path.display(),
            "API_KEY is unset: generated a key and saved it (mode 0600); read it from that file"
        ),
        ApiKeySource::File(path) => {
            tracing::info!(path = %path.display(), "API_KEY is unset: using the key saved in the data directory")
        }
    }
    if !settings.legacy_mongo_vars.is_empty() {
        tracing::warn!(
            variables = %settings.legacy_mongo_vars.join(","),
            "MONGO_* settings are not used: mailroom stores mail in DATABASE_URL; \
             bring old mail over with `mongoexport` and `mailroom import-mongo` (see the README)"
        );
    }
}

/// `http://<address>/`, for the startup log. An unspecified host (`0.0.0.0`, `::`) is
/// not a destination (browsers refuse `0.0.0.0`), so the loopback of its family stands in:
/// it reaches the server from the machine whose log this is.
fn local_url(address: SocketAddr) -> String {
    let ip = match address.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}/", SocketAddr::new(ip, address.port()))
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM (systemd stop).
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested: finishing in-flight requests");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startup_urls_are_ones_a_browser_can_open() {
        let url = |text: &str| local_url(text.parse().unwrap());
        assert_eq!(url("127.0.0.1:42010"), "http://127.0.0.1:42010/");
        assert_eq!(url("192.0.2.7:80"), "http://192.0.2.7:80/");
        assert_eq!(url("0.0.0.0:42010"), "http://127.0.0.1:42010/");
        assert_eq!(url("[::]:42010"), "http://[::1]:42010/");
        assert_eq!(url("[2001:db8::1]:8080"), "http://[2001:db8::1]:8080/");
    }
}
