//! What `Application::build` opens, and what it logs about it: the store, the outbox
//! and its relay, the shared rate limits.

use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;

use super::listeners::local_url;
use crate::config::{ApiKeySource, Settings, SmtpSecurity};
use crate::outbound::SendService;
use crate::outbound::outbox::RetryPolicy;
use crate::outbound::smtp::Relay;
use crate::outbound::worker::Worker;
use crate::security::shared::SharedState;
use crate::store::{self, Store};

/// The send service and its delivery worker, on the outbox in `DATABASE_URL`.
pub(super) async fn open_outbound(
    settings: &Settings,
) -> anyhow::Result<(Arc<SendService>, Worker)> {
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
pub(super) async fn open_shared_limits(settings: &Settings) -> anyhow::Result<Option<SharedState>> {
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

pub(super) fn log_startup(
    settings: &Settings,
    keys: &ApiKeySource,
    listener: &TcpListener,
    engine: &str,
) {
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
