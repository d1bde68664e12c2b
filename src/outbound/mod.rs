//! Outbound mail: the send API's checks, per-IP limits, the outbox state machine, and the
//! worker that delivers through the SMTP relay.

pub mod address;
pub mod content;
pub mod limits;
pub mod message;
pub mod outbox;
pub mod sanitize;
pub mod smtp;
pub mod validate;
pub mod worker;

use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use serde_json::json;
use tokio::sync::Notify;

use self::limits::{Refusal, SendPolicy, Usage};
use self::validate::{OutgoingEmail, Rejection, SendRequest, Validator};
use crate::config::OutboundSettings;
use crate::email::EmailId;
use crate::security::rate_limit::bucket;
use crate::store::StoreError;
use crate::store::outbox::{NewOutboxEmail, OutboxStore};

/// Why a send request was not queued.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("{}: {}", .0.error, .0.message)]
    Rejected(Rejection),
    #[error("{}", .0.message())]
    Limited(Refusal),
    #[error("storage failure")]
    Store(#[from] StoreError),
}

/// The send API's use cases: accept (check, limit, queue) and report.
pub struct SendService {
    validator: Validator,
    pub policy: SendPolicy,
    pub outbox: Arc<dyn OutboxStore>,
    /// Wakes the worker when mail is queued.
    pub wake: Arc<Notify>,
}

impl SendService {
    pub fn new(settings: &OutboundSettings, outbox: Arc<dyn OutboxStore>) -> Self {
        Self {
            validator: Validator::new(settings),
            policy: SendPolicy {
                windows: settings.rate_limit.clone(),
                daily_quota: settings.smtp_daily_quota,
            },
            outbox,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Validates, then queues within the limits; returns the outbox id.
    pub async fn submit(
        &self,
        request: &SendRequest,
        client: IpAddr,
    ) -> Result<EmailId, SendError> {
        let email = self.validator.validate(request).map_err(|rejection| {
            tracing::warn!(
                ip = %client, error = rejection.error, reason = %rejection.message,
                recipients = %raw_recipients(request),
                subject = %request.subject.as_deref().unwrap_or_default().escape_debug(),
                "send refused: validation failed"
            );
            SendError::Rejected(rejection)
        })?;
        let now = Utc::now();
        let id = EmailId::generate(now);
        let new = new_outbox_email(&email, id, client, now).map_err(SendError::Rejected)?;
        let recipients = new.recipients.len();
        // The store judges inside its transaction; the closure keeps the reason.
        let refused = Mutex::new(None);
        let admit = |usage: &Usage| match self.policy.admit(usage, recipients, now) {
            Ok(()) => true,
            Err(refusal) => {
                *refused.lock().unwrap_or_else(PoisonError::into_inner) = Some(refusal);
                false
            }
        };
        let queued = self
            .outbox
            .enqueue(&new, self.policy.lookback(), &admit)
            .await?;
        if !queued {
            let refusal = refused
                .into_inner()
                .unwrap_or_else(PoisonError::into_inner)
                .ok_or_else(|| {
                    StoreError::Database(sqlx::Error::Protocol("refused without a reason".into()))
                })?;
            tracing::warn!(ip = %client, reason = %refusal.message(), recipients = %new.recipients.join(","), subject = %new.subject, "send refused: limit reached");
            return Err(SendError::Limited(refusal));
        }
        tracing::info!(%id, ip = %client, recipients = %new.recipients.join(","), subject = %new.subject, "email queued");
        self.wake.notify_one();
        Ok(id)
    }

    pub async fn usage(&self, client: IpAddr, now: DateTime<Utc>) -> Result<Usage, StoreError> {
        self.outbox
            .usage(&limit_key(client), now, self.policy.lookback())
            .await
    }
}

/// Who the send limits count an email against, as stored in the outbox: the IPv4
/// address, or the /64 of an IPv6 one (`2001:db8:0:1::/64`), the block one subscriber
/// usually holds; the HTTP limits key clients the same way.
pub fn limit_key(client: IpAddr) -> String {
    match bucket(client) {
        IpAddr::V6(network) => format!("{network}/64"),
        v4 => v4.to_string(),
    }
}

fn raw_recipients(request: &SendRequest) -> String {
    [&request.to, &request.cc, &request.bcc]
        .into_iter()
        .flatten()
        .map(|r| match r {
            validate::Recipients::One(one) => one.escape_debug().to_string(),
            validate::Recipients::Many(many) => many
                .iter()
                .map(|m| m.escape_debug().to_string())
                .collect::<Vec<_>>()
                .join(","),
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn new_outbox_email(
    email: &OutgoingEmail,
    id: EmailId,
    client: IpAddr,
    now: DateTime<Utc>,
) -> Result<NewOutboxEmail, Rejection> {
    let raw = message::build_message(email, id, now).map_err(|why| Rejection {
        error: "Invalid message",
        message: why,
    })?;
    let list = |addresses: &[address::ParsedAddress]| -> Vec<String> {
        addresses
            .iter()
            .map(address::ParsedAddress::address)
            .collect()
    };
    Ok(NewOutboxEmail {
        id,
        client_ip: limit_key(client),
        accepted_at: now,
        sender: email.from.address(),
        recipients: email
            .recipients()
            .map(address::ParsedAddress::address)
            .collect(),
        subject: email.subject.clone(),
        summary: json!({
            "from": email.from.address(),
            "to": list(&email.to),
            "cc": list(&email.cc),
            "bcc": list(&email.bcc),
            "subject": email.subject,
            "isHtml": email.is_html,
            "body": email.body,
        }),
        raw,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_limited_per_64_and_mapped_ipv4_as_ipv4() {
        let key = |ip: &str| limit_key(ip.parse().unwrap());
        assert_eq!(key("2001:db8:0:1::2"), "2001:db8:0:1::/64");
        assert_eq!(key("2001:db8:0:1::3"), key("2001:db8:0:1:ffff:ffff:ffff:4"));
        assert_ne!(key("2001:db8:0:1::2"), key("2001:db8:0:2::2"));
        assert_eq!(key("192.0.2.7"), "192.0.2.7");
        assert_eq!(key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(key("::1"), "::/64");
    }
}
