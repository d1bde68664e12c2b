//! The outbox as a named state machine:
//! `Queued → Sending → Sent | TemporaryFailure { retry_at } | PermanentFailure`,
//! and `TemporaryFailure → Sending` again when `retry_at` comes.
//!
//! The transitions are pure (`after_attempt`), so tests drive them without an SMTP server
//! or a clock; the store applies them.

use std::time::Duration;

use chrono::{DateTime, Utc};

pub use crate::store::outbox::{OutboxStatus, Transition};

/// What one delivery attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The relay accepted the message; its reply.
    Delivered(String),
    /// Worth retrying: a 4xx reply, a timeout, a refused or broken connection.
    Transient(String),
    /// A 5xx reply: retrying cannot help. The server's reply.
    Permanent(String),
}

impl AttemptOutcome {
    /// The name the metrics count it under.
    pub fn label(&self) -> &'static str {
        match self {
            AttemptOutcome::Delivered(_) => "delivered",
            AttemptOutcome::Transient(_) => "temporary_failure",
            AttemptOutcome::Permanent(_) => "permanent_failure",
        }
    }
}

/// How retries back off.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub base: Duration,
    pub max_delay: Duration,
    /// After this long since acceptance, a transient failure is final.
    pub horizon: Duration,
}

impl RetryPolicy {
    /// `base · 2^(attempts−1)`, capped at `max_delay`.
    pub fn delay(&self, attempts: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(30));
        self.base.saturating_mul(factor).min(self.max_delay)
    }
}

/// The transition after attempt number `attempts` of an email accepted at `accepted_at`.
pub fn after_attempt(
    outcome: AttemptOutcome,
    attempts: u32,
    accepted_at: DateTime<Utc>,
    now: DateTime<Utc>,
    policy: &RetryPolicy,
) -> Transition {
    match outcome {
        AttemptOutcome::Delivered(reply) => Transition {
            status: OutboxStatus::Sent,
            detail: reply,
        },
        AttemptOutcome::Permanent(error) => Transition {
            status: OutboxStatus::PermanentFailure,
            detail: error,
        },
        AttemptOutcome::Transient(error) => {
            let retry_at = now + policy.delay(attempts);
            let horizon = accepted_at + policy.horizon;
            if retry_at > horizon {
                Transition {
                    status: OutboxStatus::PermanentFailure,
                    detail: format!("gave up after {attempts} attempts: {error}"),
                }
            } else {
                Transition {
                    status: OutboxStatus::TemporaryFailure { retry_at },
                    detail: error,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RetryPolicy = RetryPolicy {
        base: Duration::from_secs(30),
        max_delay: Duration::from_secs(3600),
        horizon: Duration::from_secs(2 * 86_400),
    };

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let delays: Vec<u64> = (1..=9).map(|n| POLICY.delay(n).as_secs()).collect();
        assert_eq!(delays, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(POLICY.delay(u32::MAX).as_secs(), 3600);
    }

    #[test]
    fn a_delivered_attempt_is_sent_with_the_reply() {
        let now = Utc::now();
        let t = after_attempt(
            AttemptOutcome::Delivered("250 OK".into()),
            1,
            now,
            now,
            &POLICY,
        );
        assert_eq!(t.status, OutboxStatus::Sent);
        assert_eq!(t.detail, "250 OK");
    }

    #[test]
    fn a_transient_failure_retries_later() {
        let now = Utc::now();
        let t = after_attempt(
            AttemptOutcome::Transient("421 busy".into()),
            3,
            now,
            now,
            &POLICY,
        );
        assert_eq!(
            t.status,
            OutboxStatus::TemporaryFailure {
                retry_at: now + Duration::from_secs(120)
            }
        );
    }

    #[test]
    fn a_permanent_failure_is_final_at_once() {
        let now = Utc::now();
        let t = after_attempt(
            AttemptOutcome::Permanent("550 no such user".into()),
            1,
            now,
            now,
            &POLICY,
        );
        assert_eq!(t.status, OutboxStatus::PermanentFailure);
        assert_eq!(t.detail, "550 no such user");
    }

    #[test]
    fn transient_failures_past_the_horizon_become_permanent() {
        let accepted = Utc::now();
        let now = accepted + chrono::Duration::hours(47) + chrono::Duration::minutes(30);
        let t = after_attempt(
            AttemptOutcome::Transient("timeout".into()),
            50,
            accepted,
            now,
            &POLICY,
        );
        assert_eq!(t.status, OutboxStatus::PermanentFailure);
        assert_eq!(t.detail, "gave up after 50 attempts: timeout");
    }

    #[test]
    fn stored_names_round_trip() {
        let at = Utc::now();
        for status in [
            OutboxStatus::Queued,
            OutboxStatus::Sending,
            OutboxStatus::Sent,
            OutboxStatus::TemporaryFailure { retry_at: at },
            OutboxStatus::PermanentFailure,
        ] {
            assert_eq!(OutboxStatus::from_stored(status.name(), at), Some(status));
        }
    }
}
