//! The tasks that run beside the listeners: the outbox's delivery worker, the filing
//! and re-chunking passes over old mail, the retention sweep and, on PostgreSQL, the
//! sweep of the shared rate limits. Started before serving, stopped after it.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::AppState;
use crate::outbound::worker::Worker;
use crate::security::shared::SharedState;

/// How long shutdown waits for a delivery in progress.
const WORKER_STOP_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) struct Background {
    worker: JoinHandle<()>,
    stop_worker: watch::Sender<bool>,
    /// Passes that may stop at any point: each step is its own transaction.
    abortable: Vec<JoinHandle<()>>,
    shared_limits: Option<SharedState>,
}

impl Background {
    pub fn start(state: &AppState, worker: Worker) -> Self {
        let (stop_worker, stop) = watch::channel(false);
        let store = &state.store;
        let settings = &state.settings;
        let mut abortable = vec![
            tokio::spawn(crate::inbound::filing::file_all(
                store.clone(),
                settings.outbound.sender_domains.clone(),
            )),
            tokio::spawn(crate::store::blobs::rechunk::rechunk_all(store.clone())),
            tokio::spawn(crate::store::retention::sweep_forever(
                store.clone(),
                settings.retention.clone(),
            )),
        ];
        let shared_limits = state.security.shared.clone();
        if let Some(shared) = shared_limits.clone() {
            let max_clients = settings.security.max_clients;
            abortable.push(tokio::spawn(shared.sweep_forever(max_clients)));
        }
        Self {
            worker: tokio::spawn(worker.run(stop)),
            stop_worker,
            abortable,
            shared_limits,
        }
    }

    /// Stops the passes (between their steps at worst), then lets the worker finish a
    /// delivery in progress, for at most `WORKER_STOP_TIMEOUT`.
    pub async fn stop(self) {
        for task in &self.abortable {
            task.abort();
        }
        if let Some(shared) = self.shared_limits {
            shared.store.close().await;
        }
        let _ = self.stop_worker.send(true);
        if tokio::time::timeout(WORKER_STOP_TIMEOUT, self.worker)
            .await
            .is_err()
        {
            tracing::warn!(
                "the outbox worker did not stop in time; its email is queued again at the next start"
            );
        }
    }
}
