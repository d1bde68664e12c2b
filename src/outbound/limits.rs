//! Per-IP send limits and the relay's daily quota, as pure functions over what the outbox holds.
//!
//! Limits count accepted emails (rows of the outbox), so they survive restarts and hold
//! across instances sharing one database; the store evaluates them inside the transaction
//! that queues the email, so two concurrent requests cannot both take the last slot.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::RateWindow;

pub use crate::store::outbox::{DAY, Usage};

/// Why an email was refused before queueing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Rate {
        window: RateWindow,
        retry_after: u64,
    },
    Quota {
        quota: u32,
        retry_after: u64,
    },
}

impl Refusal {
    /// The limit's name in the metrics: `send` (SEND_RATE_LIMIT) or `send_quota`.
    pub fn name(&self) -> &'static str {
        match self {
            Refusal::Rate { .. } => "send",
            Refusal::Quota { .. } => "send_quota",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Refusal::Rate { window, .. } => format!(
                "Limit of {} emails per {} exceeded",
                window.limit,
                window.unit()
            ),
            Refusal::Quota { quota, .. } => {
                format!("Daily quota of {quota} recipients (SMTP_DAILY_QUOTA) reached")
            }
        }
    }

    pub fn retry_after(&self) -> u64 {
        match self {
            Refusal::Rate { retry_after, .. } | Refusal::Quota { retry_after, .. } => *retry_after,
        }
    }
}

/// The send policy: per-IP windows and the optional quota.
#[derive(Debug, Clone)]
pub struct SendPolicy {
    pub windows: Vec<RateWindow>,
    pub daily_quota: Option<u32>,
}

impl SendPolicy {
    /// How far back the store must look: the longest window, and a day for the stats.
    pub fn lookback(&self) -> Duration {
        self.windows
            .iter()
            .map(|w| w.window)
            .fold(DAY, Duration::max)
    }

    /// Admits one more email with `recipients` recipients, or names the limit it breaks.
    pub fn admit(
        &self,
        usage: &Usage,
        recipients: usize,
        now: DateTime<Utc>,
    ) -> Result<(), Refusal> {
        for window in &self.windows {
            let inside = in_window(&usage.accepted, window.window, now);
            if inside.len() >= window.limit as usize {
                let oldest = inside.iter().min().copied().unwrap_or(now);
                let frees_at = oldest + window.window;
                let wait = (frees_at - now).num_milliseconds().max(0) as u64;
                return Err(Refusal::Rate {
                    window: *window,
                    retry_after: wait.div_ceil(1000).max(1),
                });
            }
        }
        if let Some(quota) = self.daily_quota
            && usage.recipients_last_day + recipients as u64 > u64::from(quota)
        {
            return Err(Refusal::Quota {
                quota,
                retry_after: 3600,
            });
        }
        Ok(())
    }

    /// Sent in the last minute/hour/day and what remains of each configured window.
    pub fn stats(&self, usage: &Usage, now: DateTime<Utc>) -> [(u64, Option<u64>); 3] {
        [60, 3600, 86_400].map(|secs| {
            let span = Duration::from_secs(secs);
            let sent = in_window(&usage.accepted, span, now).len() as u64;
            let remaining = self
                .windows
                .iter()
                .filter(|w| w.window == span)
                .map(|w| u64::from(w.limit).saturating_sub(sent))
                .min();
            (sent, remaining)
        })
    }
}

fn in_window(
    accepted: &[DateTime<Utc>],
    window: Duration,
    now: DateTime<Utc>,
) -> Vec<DateTime<Utc>> {
    let since = now - window;
    accepted.iter().copied().filter(|at| *at > since).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(windows: &str, quota: Option<u32>) -> SendPolicy {
        SendPolicy {
            windows: crate::config::parse_rate_windows(windows).unwrap(),
            daily_quota: quota,
        }
    }

    fn ago(now: DateTime<Utc>, secs: i64) -> DateTime<Utc> {
        now - chrono::Duration::seconds(secs)
    }

    #[test]
    fn the_third_email_in_a_minute_is_refused_until_the_first_ages_out() {
        let now = Utc::now();
        let p = policy("2/minute,10/hour,50/day", None);
        let usage = Usage {
            accepted: vec![ago(now, 50), ago(now, 10)],
            recipients_last_day: 2,
        };
        let refusal = p.admit(&usage, 1, now).unwrap_err();
        assert_eq!(refusal.message(), "Limit of 2 emails per minute exceeded");
        assert_eq!(refusal.retry_after(), 10);
        let later = Usage {
            accepted: vec![ago(now, 61), ago(now, 10)],
            recipients_last_day: 2,
        };
        assert_eq!(p.admit(&later, 1, now), Ok(()));
    }

    #[test]
    fn hourly_and_daily_windows_count_too() {
        let now = Utc::now();
        let p = policy("2/minute,3/hour", None);
        let usage = Usage {
            accepted: vec![ago(now, 3000), ago(now, 2000), ago(now, 1000)],
            recipients_last_day: 0,
        };
        let refusal = p.admit(&usage, 1, now).unwrap_err();
        assert_eq!(refusal.message(), "Limit of 3 emails per hour exceeded");
        assert_eq!(refusal.retry_after(), 600);
    }

    #[test]
    fn the_quota_counts_recipients() {
        let now = Utc::now();
        let p = policy("off", Some(10));
        let usage = Usage {
            accepted: vec![],
            recipients_last_day: 8,
        };
        assert_eq!(p.admit(&usage, 2, now), Ok(()));
        assert!(matches!(
            p.admit(&usage, 3, now),
            Err(Refusal::Quota { quota: 10, .. })
        ));
    }

    #[test]
    fn stats_report_sent_and_remaining_per_window() {
        let now = Utc::now();
        let p = policy("2/minute,10/hour,50/day", None);
        let usage = Usage {
            accepted: vec![ago(now, 30), ago(now, 600), ago(now, 7200)],
            recipients_last_day: 0,
        };
        assert_eq!(
            p.stats(&usage, now),
            [(1, Some(1)), (2, Some(8)), (3, Some(47))]
        );
        assert_eq!(policy("off", None).stats(&usage, now)[0], (1, None));
    }
}
