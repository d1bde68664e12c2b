//! Following the change log: one task per instance notices when the log grows (its own
//! writes and other instances' alike), and each follower reads the log from where it
//! stands into a bounded channel, so a stream's memory never grows with its lag.

use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::{MailEvent, Store};
use crate::telemetry::error_chain;

/// Events read from the log at once by a follower.
const PAGE: u32 = 100;
/// Events a follower holds for its client; past this it waits for the client to read.
const BUFFER: usize = 256;
/// A follower whose read failed tries again after this.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// How a follower behaves; the defaults suit production, tests shorten them.
#[derive(Debug, Clone, Copy)]
pub struct FeedTiming {
    /// How often the log's end is polled while anyone follows it.
    pub poll_every: Duration,
    /// A client whose buffer stays full this long is dropped.
    pub slow_client: Duration,
}

impl Default for FeedTiming {
    fn default() -> Self {
        Self {
            poll_every: Duration::from_millis(250),
            slow_client: Duration::from_secs(30),
        }
    }
}

/// The end of the change log, watched for followers.
pub struct ChangeFeed {
    store: Arc<dyn Store>,
    latest: watch::Sender<i64>,
    /// Set at shutdown: every follower ends, so its stream and connection close.
    stop: watch::Sender<bool>,
    timing: FeedTiming,
    poller: JoinHandle<()>,
}

impl ChangeFeed {
    /// Starts the poller of `store`'s log.
    pub fn start(store: Arc<dyn Store>, timing: FeedTiming) -> Arc<Self> {
        let (latest, _) = watch::channel(0);
        let poller = tokio::spawn(poll(store.clone(), latest.clone(), timing.poll_every));
        Arc::new(Self {
            store,
            latest,
            stop: watch::channel(false).0,
            timing,
            poller,
        })
    }

    /// The newest event's number now: where a stream without `Last-Event-ID` starts.
    pub async fn last_seq(&self) -> Result<i64, super::StoreError> {
        self.store.changes().last_seq().await
    }

    /// The events after `seq`, as they are committed. The stream ends when the client
    /// has not read for `slow_client`, or at shutdown; dropping it stops the follower.
    pub fn follow(&self, seq: i64) -> impl Stream<Item = MailEvent> + Send + use<> {
        let (sender, receiver) = mpsc::channel(BUFFER);
        let follower = Follower {
            store: self.store.clone(),
            latest: self.latest.subscribe(),
            stop: self.stop.subscribe(),
            sender,
            slow_client: self.timing.slow_client,
        };
        tokio::spawn(follower.run(seq));
        futures::stream::unfold(receiver, |mut receiver| async move {
            let event = receiver.recv().await?;
            Some((event, receiver))
        })
    }

    /// Ends every stream (at shutdown, so that open streams do not hold it up).
    pub fn close(&self) {
        self.stop.send_replace(true);
    }
}

impl Drop for ChangeFeed {
    fn drop(&mut self) {
        self.poller.abort();
    }
}

/// Publishes the log's newest number while anyone follows it.
async fn poll(store: Arc<dyn Store>, latest: watch::Sender<i64>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if latest.receiver_count() == 0 {
            continue;
        }
        match store.changes().last_seq().await {
            Ok(seq) => {
                latest.send_if_modified(|current| std::mem::replace(current, seq) != seq);
            }
            Err(error) => {
                tracing::debug!(error = %error_chain(&error), "reading the change log's end")
            }
        }
    }
}

struct Follower {
    store: Arc<dyn Store>,
    latest: watch::Receiver<i64>,
    stop: watch::Receiver<bool>,
    sender: mpsc::Sender<MailEvent>,
    slow_client: Duration,
}

impl Follower {
    async fn run(mut self, seq: i64) {
        let mut stop = self.stop.clone();
        tokio::select! {
            () = self.follow(seq) => {}
            _ = stop.wait_for(|stopped| *stopped) => {}
        }
    }

    async fn follow(&mut self, mut seq: i64) {
        loop {
            let events = match self.store.changes().events_after(seq, PAGE).await {
                Ok(events) => events,
                Err(error) => {
                    // The database is away: the stream waits for it rather than ending.
                    tracing::debug!(error = %error_chain(&error), "reading the change log");
                    tokio::select! {
                        () = tokio::time::sleep(RETRY_AFTER) => continue,
                        () = self.sender.closed() => return,
                    }
                }
            };
            if events.is_empty() && !self.wait_for_more().await {
                return;
            }
            for event in events {
                seq = event.seq;
                let sent = self.sender.send_timeout(event, self.slow_client).await;
                if sent.is_err() {
                    // Gone, or too slow to keep: its client reconnects with Last-Event-ID.
                    return;
                }
            }
        }
    }

    /// Waits until the log may have grown; `false` when the client is gone.
    async fn wait_for_more(&mut self) -> bool {
        tokio::select! {
            changed = self.latest.changed() => changed.is_ok(),
            () = self.sender.closed() => false,
        }
    }
}
