//! The application: settings + store + router, bound to a port (0 in tests), served until shutdown.

mod background;
mod listeners;
mod startup;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use futures::FutureExt as _;
use tokio::net::TcpListener;

use self::background::Background;
use self::listeners::{bind_metrics, bind_webmail, local_url, serve_metrics, serve_webmail};
pub use self::startup::open_store;
use self::startup::{log_startup, open_outbound, open_shared_limits};
use crate::api::AppState;
use crate::config::{Settings, resolve_api_keys};
use crate::outbound::worker::Worker;
use crate::security::Security;
use crate::security::auth::ApiKeys;
use crate::store::Store;
use crate::store::feed::{ChangeFeed, FeedTiming};

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
        let background = Background::start(&self.state, self.worker);
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
            tokio::spawn(serve_webmail(
                listener,
                state,
                http.clone(),
                shutdown.clone(),
            ))
        });
        let router = crate::api::router(self.state);
        crate::server::serve(self.listener, router, &http, shutdown).await;
        end_streams.abort();
        for server in metrics.into_iter().chain(webmail) {
            let _ = server.await;
        }
        background.stop().await;
        outbox.close().await;
        store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
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
