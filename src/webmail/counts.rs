//! The mailbox selector's counts, without a query on every page view.
//!
//! `MailState::mailboxes` reads the counts that the store keeps per mailbox (a few rows,
//! whatever the number of emails; before those were kept it counted every row, 1.7 s at
//! 1,000,000 emails on SQLite). The counts are still held per process and re-read when
//! stale: in line while a read is quick, in the background should one ever be slow.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::email::MailboxCount;
use crate::store::{Store, StoreError};

/// Counts older than this are recounted.
const FRESH_FOR: Duration = Duration::from_secs(2);
/// A count slower than this is redone in the background from then on.
const QUICK: Duration = Duration::from_millis(50);

#[derive(Default)]
pub struct MailboxCounts {
    latest: Mutex<Option<Counted>>,
    recounting: AtomicBool,
}

#[derive(Clone)]
struct Counted {
    at: Instant,
    took: Duration,
    /// `false` after a change made here, so the next view recounts.
    current: bool,
    counts: Arc<Vec<MailboxCount>>,
}

impl MailboxCounts {
    /// Every mailbox with its counts: fresh, or the last ones while a slow recount runs.
    pub async fn get(
        self: &Arc<Self>,
        store: &Arc<dyn Store>,
    ) -> Result<Arc<Vec<MailboxCount>>, StoreError> {
        let latest = self
            .latest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match latest {
            Some(counted) if counted.current && counted.at.elapsed() < FRESH_FOR => {
                Ok(counted.counts)
            }
            Some(counted) if counted.took >= QUICK => {
                self.recount_in_background(store.clone());
                Ok(counted.counts)
            }
            _ => self.recount(store).await,
        }
    }

    /// A reader changed flags or deleted mail here: the next view counts again.
    pub fn changed(&self) {
        if let Some(counted) = self
            .latest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            counted.current = false;
        }
    }

    async fn recount(&self, store: &Arc<dyn Store>) -> Result<Arc<Vec<MailboxCount>>, StoreError> {
        let started = Instant::now();
        let counts = Arc::new(store.mail_state().mailboxes().await?);
        *self.latest.lock().unwrap_or_else(|e| e.into_inner()) = Some(Counted {
            at: Instant::now(),
            took: started.elapsed(),
            current: true,
            counts: counts.clone(),
        });
        Ok(counts)
    }

    /// One recount at a time; a failed one leaves the last counts, to retry next view.
    fn recount_in_background(self: &Arc<Self>, store: Arc<dyn Store>) {
        if self.recounting.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(error) = this.recount(&store).await {
                tracing::warn!(error = %crate::telemetry::error_chain(&error), "mailbox recount failed");
            }
            this.recounting.store(false, Ordering::Release);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::email::FlagChange;

    async fn store_with_one_email() -> (Arc<dyn Store>, tempfile::TempDir, crate::email::EmailId) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/mailroom.db", dir.path().display());
        let store = crate::store::open(&url).await.unwrap();
        store.migrate().await.unwrap();
        let id = deliver(&store, "1").await;
        (store, dir, id)
    }

    async fn deliver(store: &Arc<dyn Store>, n: &str) -> crate::email::EmailId {
        let payload = serde_json::json!({
            "to": [{"email": "ventas@puntoa.ar"}], "from": {"email": "a@b.c"},
            "subject": n, "message-id": format!("<{n}@test>"), "text": "x",
        });
        let email =
            crate::inbound::improvmx::parse(payload.to_string().as_bytes(), chrono::Utc::now())
                .unwrap();
        store.insert_inbound(email).await.unwrap().id()
    }

    #[tokio::test]
    async fn counts_are_kept_until_stale_or_changed_here() {
        let (store, _dir, id) = store_with_one_email().await;
        let counts = Arc::new(MailboxCounts::default());
        assert_eq!(counts.get(&store).await.unwrap()[0].unread, 1);
        deliver(&store, "2").await;
        assert_eq!(
            counts.get(&store).await.unwrap()[0].unread,
            1,
            "kept while fresh"
        );
        let read = FlagChange {
            read: Some(true),
            ..FlagChange::default()
        };
        store
            .mail_state()
            .set_flags(&[id], None, read)
            .await
            .unwrap();
        counts.changed();
        assert_eq!(
            counts.get(&store).await.unwrap()[0].unread,
            1,
            "recounted: 2 new, 1 read"
        );
        store.close().await;
    }
}
