//! The delivery worker: claims due rows, attempts them, records the transition; sleeps until
//! the next row is due, a new email is queued, or shutdown.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{Notify, watch};

use super::outbox::{AttemptOutcome, OutboxStatus, RetryPolicy, Transition, after_attempt};
use super::smtp::Relay;
use crate::email::EmailId;
use crate::store::StoreError;
use crate::store::outbox::{ClaimedEmail, OutboxStore};
use crate::telemetry::{error_chain, metrics};

pub struct Worker {
    pub outbox: Arc<dyn OutboxStore>,
    pub relay: Arc<Relay>,
    pub retry: RetryPolicy,
    pub poll_interval: Duration,
    pub sending_lease: Duration,
    /// Recover every `sending` row at startup (one instance owns the database: SQLite).
    pub sole_owner: bool,
    pub wake: Arc<Notify>,
}

impl Worker {
    /// Runs until `stop` turns true; an attempt in progress is finished first.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        self.recover(true).await;
        loop {
            if *stop.borrow() {
                break;
            }
            match deliver_one(self.outbox.as_ref(), &self.relay, &self.retry).await {
                Ok(Some(_)) => continue,
                Ok(None) => {}
                Err(error) => tracing::error!(error = %error_chain(&error), "outbox unavailable"),
            }
            self.recover(false).await;
            let pause = self.pause().await;
            tokio::select! {
                _ = stop.changed() => {},
                () = self.wake.notified() => {},
                () = tokio::time::sleep(pause) => {},
            }
        }
        tracing::info!("outbox worker stopped");
    }

    async fn recover(&self, at_startup: bool) {
        let now = Utc::now();
        let cutoff = if at_startup && self.sole_owner {
            now
        } else {
            now - self.sending_lease
        };
        match self.outbox.recover_stuck(cutoff, now).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                emails = n,
                "emails interrupted while sending were queued again"
            ),
            Err(error) => tracing::error!(error = %error_chain(&error), "outbox recovery failed"),
        }
    }

    /// Until the next due row, at most the poll interval.
    async fn pause(&self) -> Duration {
        match self.outbox.next_due().await {
            Ok(Some(due)) => (due - Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .min(self.poll_interval),
            _ => self.poll_interval,
        }
    }
}

/// Claims one due email, attempts it and records the outcome. `None` when nothing was due.
pub async fn deliver_one(
    outbox: &dyn OutboxStore,
    relay: &Relay,
    retry: &RetryPolicy,
) -> Result<Option<(EmailId, Transition)>, StoreError> {
    let Some(email) = outbox.claim_due(Utc::now()).await? else {
        return Ok(None);
    };
    let outcome = relay
        .deliver(&email.sender, &email.recipients, &email.raw)
        .await;
    metrics::smtp_attempt(outcome.label());
    let transition = after_attempt(
        outcome.clone(),
        email.attempts,
        email.accepted_at,
        Utc::now(),
        retry,
    );
    log_attempt(&email, &outcome, &transition);
    outbox.record(email.id, &transition, Utc::now()).await?;
    Ok(Some((email.id, transition)))
}

fn log_attempt(email: &ClaimedEmail, outcome: &AttemptOutcome, transition: &Transition) {
    let id = email.id.to_string();
    let ip = email.client_ip.as_str();
    let recipients = email.recipients.join(",");
    let subject = email.subject.as_str();
    let attempt = email.attempts;
    match (&transition.status, outcome) {
        (OutboxStatus::Sent, _) => {
            tracing::info!(%id, ip, %recipients, subject, attempt, reply = %transition.detail, "email sent")
        }
        (OutboxStatus::TemporaryFailure { retry_at }, _) => tracing::error!(
            %id, ip, %recipients, subject, attempt, error = %transition.detail, %retry_at,
            "delivery failed; will retry"
        ),
        _ => {
            tracing::error!(%id, ip, %recipients, subject, attempt, error = %transition.detail, "delivery failed for good")
        }
    }
}
