//! Delivery to the relay with lettre: every resolved address raced Happy-Eyeballs style
//! (RFC 8305) up to a completed greeting, so a stalled IPv6 route cannot hold mail up;
//! STARTTLS, implicit TLS or plain; explicit timeouts on the connection and every command.

use std::future::Future;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use lettre::Address;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::extension::ClientId;

use super::outbox::AttemptOutcome;
use crate::config::{IpFamily, OutboundSettings, SmtpSecurity};

/// The relay, as configured; cheap to share.
pub struct Relay {
    server: String,
    port: u16,
    security: SmtpSecurity,
    tls: Option<TlsParameters>,
    credentials: Option<Credentials>,
    family: IpFamily,
    connect_timeout: Duration,
    command_timeout: Duration,
    fallback_delay: Duration,
    hello: ClientId,
}

impl Relay {
    pub fn new(settings: &OutboundSettings) -> anyhow::Result<Self> {
        let tls = match settings.smtp_security {
            SmtpSecurity::None => None,
            _ => Some(tls_parameters(settings)?),
        };
        Ok(Self {
            server: settings.smtp_server.clone(),
            port: settings.smtp_port,
            security: settings.smtp_security,
            tls,
            credentials: settings
                .smtp_username
                .clone()
                .zip(settings.smtp_password.as_ref())
                .map(|(user, password)| Credentials::new(user, password.expose().to_owned())),
            family: settings.smtp_ip_family,
            connect_timeout: settings.smtp_connect_timeout,
            command_timeout: settings.smtp_command_timeout,
            fallback_delay: settings.smtp_fallback_delay,
            hello: ClientId::Domain(settings.smtp_hello_name.clone()),
        })
    }

    /// One attempt: connect, secure, authenticate, send. Only a negative reply to the
    /// transaction itself (MAIL, RCPT, DATA) is permanent; everything else may heal.
    pub async fn deliver(&self, sender: &str, recipients: &[String], raw: &[u8]) -> AttemptOutcome {
        match self.resolve().await {
            Ok(addresses) => self.deliver_via(addresses, sender, recipients, raw).await,
            Err(error) => AttemptOutcome::Transient(error),
        }
    }

    /// Like `deliver`, to these addresses in this order (the resolved ones, or a test's).
    pub async fn deliver_via(
        &self,
        addresses: Vec<SocketAddr>,
        sender: &str,
        recipients: &[String],
        raw: &[u8],
    ) -> AttemptOutcome {
        let envelope = match envelope(sender, recipients) {
            Ok(envelope) => envelope,
            Err(error) => return AttemptOutcome::Permanent(error),
        };
        let mut conn = match self.session(addresses).await {
            Ok(conn) => conn,
            Err(error) => return AttemptOutcome::Transient(error),
        };
        let outcome = match self.timed(conn.send(&envelope, raw)).await {
            Ok(reply) => AttemptOutcome::Delivered(reply_text(&reply)),
            Err(SmtpFailure::Smtp(error)) if error.is_permanent() => {
                AttemptOutcome::Permanent(error.to_string())
            }
            Err(error) => AttemptOutcome::Transient(error.to_string()),
        };
        let _ = tokio::time::timeout(self.command_timeout, conn.quit()).await;
        outcome
    }

    /// A connection ready for a transaction: greeted, secured and authenticated.
    async fn session(&self, addresses: Vec<SocketAddr>) -> Result<AsyncSmtpConnection, String> {
        let mut conn = self.connect_any(addresses).await?;
        if self.security == SmtpSecurity::StartTls {
            let tls = self.tls.clone().ok_or("TLS parameters are missing")?;
            self.timed(conn.starttls(tls, &self.hello))
                .await
                .map_err(|e| format!("STARTTLS failed: {e}"))?;
        }
        if let Some(credentials) = &self.credentials {
            self.timed(conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials))
                .await
                .map_err(|e| format!("authentication failed: {e}"))?;
        }
        Ok(conn)
    }

    /// Every address of the server in the configured family, IPv6 and IPv4 interleaved.
    async fn resolve(&self) -> Result<Vec<SocketAddr>, String> {
        let lookup = tokio::net::lookup_host((self.server.as_str(), self.port));
        let found: Vec<SocketAddr> = tokio::time::timeout(self.connect_timeout, lookup)
            .await
            .map_err(|_| format!("resolving {} timed out", self.server))?
            .map_err(|e| format!("cannot resolve {}: {e}", self.server))?
            .collect();
        let ordered = order_addresses(found, self.family);
        if ordered.is_empty() {
            return Err(format!(
                "{} has no address of the family {:?}",
                self.server, self.family
            ));
        }
        Ok(ordered)
    }

    /// Starts on the first address and adds the next one every `fallback_delay` (or at
    /// once when one fails); the first to finish its greeting wins, the rest are dropped.
    async fn connect_any(&self, addresses: Vec<SocketAddr>) -> Result<AsyncSmtpConnection, String> {
        let mut waiting = addresses.into_iter();
        let mut racing = FuturesUnordered::new();
        let mut errors = Vec::new();
        loop {
            if racing.is_empty() {
                match waiting.next() {
                    Some(address) => racing.push(self.open(address)),
                    None => return Err(errors.join("; ")),
                }
            }
            tokio::select! {
                Some(result) = racing.next() => match result {
                    Ok(conn) => return Ok(conn),
                    Err(error) => {
                        errors.push(error);
                        if let Some(address) = waiting.next() {
                            racing.push(self.open(address));
                        }
                    }
                },
                () = tokio::time::sleep(self.fallback_delay), if waiting.len() > 0 => {
                    if let Some(address) = waiting.next() {
                        tracing::debug!(%address, "no greeting yet: racing the next address");
                        racing.push(self.open(address));
                    }
                }
            }
        }
    }

    /// TCP (and implicit TLS), greeting and EHLO on one address, within the timeouts.
    async fn open(&self, address: SocketAddr) -> Result<AsyncSmtpConnection, String> {
        let tls = match self.security {
            SmtpSecurity::Tls => self.tls.clone(),
            _ => None,
        };
        let connect = AsyncSmtpConnection::connect_tokio1(
            address,
            Some(self.connect_timeout),
            &self.hello,
            tls,
            None,
        );
        match tokio::time::timeout(self.connect_timeout + self.command_timeout, connect).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(error)) => Err(format!("{address}: {error}")),
            Err(_) => Err(format!("{address}: no greeting in time")),
        }
    }

    async fn timed<T>(
        &self,
        command: impl Future<Output = Result<T, lettre::transport::smtp::Error>>,
    ) -> Result<T, SmtpFailure> {
        match tokio::time::timeout(self.command_timeout, command).await {
            Ok(result) => result.map_err(SmtpFailure::Smtp),
            Err(_) => Err(SmtpFailure::Timeout),
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum SmtpFailure {
    #[error("{0}")]
    Smtp(lettre::transport::smtp::Error),
    #[error("the server did not answer in time")]
    Timeout,
}

fn tls_parameters(settings: &OutboundSettings) -> anyhow::Result<TlsParameters> {
    let mut builder = TlsParameters::builder(settings.smtp_server.clone());
    if let Some(path) = &settings.smtp_tls_ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("cannot read SMTP_TLS_CA_FILE {path}: {e}"))?;
        builder = builder.add_root_certificate(Certificate::from_pem(&pem)?);
    }
    Ok(builder.build_rustls()?)
}

/// Keeps the family asked for; in `auto`, alternates IPv6 and IPv4, IPv6 first (RFC 8305).
pub fn order_addresses(found: Vec<SocketAddr>, family: IpFamily) -> Vec<SocketAddr> {
    let mut unique: Vec<SocketAddr> = Vec::new();
    for address in found {
        if !unique.contains(&address) {
            unique.push(address);
        }
    }
    let (v6, v4): (Vec<_>, Vec<_>) = unique.into_iter().partition(SocketAddr::is_ipv6);
    match family {
        IpFamily::V4 => v4,
        IpFamily::V6 => v6,
        IpFamily::Auto => {
            let mut ordered = Vec::with_capacity(v4.len() + v6.len());
            let (mut v6, mut v4) = (v6.into_iter(), v4.into_iter());
            loop {
                match (v6.next(), v4.next()) {
                    (None, None) => break,
                    (a, b) => ordered.extend(a.into_iter().chain(b)),
                }
            }
            ordered
        }
    }
}

fn envelope(sender: &str, recipients: &[String]) -> Result<Envelope, String> {
    let parse =
        |a: &str| Address::from_str(a).map_err(|e| format!("bad stored address {a:?}: {e}"));
    let to = recipients
        .iter()
        .map(|r| parse(r))
        .collect::<Result<Vec<_>, _>>()?;
    Envelope::new(Some(parse(sender)?), to).map_err(|e| e.to_string())
}

fn reply_text(reply: &lettre::transport::smtp::response::Response) -> String {
    let lines: Vec<&str> = reply.message().collect();
    format!("{} {}", reply.code(), lines.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_interleaves_families_ipv6_first() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        let found = vec![
            a("10.0.0.1:25"),
            a("10.0.0.2:25"),
            a("[::1]:25"),
            a("10.0.0.1:25"),
        ];
        assert_eq!(
            order_addresses(found.clone(), IpFamily::Auto),
            [a("[::1]:25"), a("10.0.0.1:25"), a("10.0.0.2:25")]
        );
        assert_eq!(
            order_addresses(found.clone(), IpFamily::V4),
            [a("10.0.0.1:25"), a("10.0.0.2:25")]
        );
        assert_eq!(order_addresses(found, IpFamily::V6), [a("[::1]:25")]);
    }
}
