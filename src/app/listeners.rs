//! The listeners besides the API's: `GET /metrics` and the webmail, and the URLs the
//! startup log shows.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;

use crate::api::AppState;
use crate::config::{HttpSettings, Settings};
use crate::telemetry;

/// How often recorded histogram samples are folded into buckets (bounded memory).
const METRICS_UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The listener of `GET /metrics` on `HOST:METRICS_PORT`, when set; installs the recorder.
pub(super) async fn bind_metrics(settings: &Settings) -> anyhow::Result<Option<TcpListener>> {
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
pub(super) async fn bind_webmail(settings: &Settings) -> anyhow::Result<Option<TcpListener>> {
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
pub(super) async fn serve_metrics(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()>,
) {
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

/// Serves the webmail until `shutdown`, then closes its users' and sessions' pools.
pub(super) async fn serve_webmail(
    listener: TcpListener,
    state: crate::webmail::WebmailState,
    http: HttpSettings,
    shutdown: impl Future<Output = ()>,
) {
    let (users, sessions) = (state.users.clone(), state.sessions.clone());
    crate::server::serve(listener, crate::webmail::router(state), &http, shutdown).await;
    users.close().await;
    sessions.close().await;
}

/// `http://<address>/`, for the startup log. An unspecified host (`0.0.0.0`, `::`) is
/// not a destination (browsers refuse `0.0.0.0`), so the loopback of its family stands in:
/// it reaches the server from the machine whose log this is.
pub(super) fn local_url(address: SocketAddr) -> String {
    let ip = match address.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}/", SocketAddr::new(ip, address.port()))
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
