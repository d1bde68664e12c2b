//! Receiving a webhook body. Its bytes are charged to the shared in-flight budget as they
//! arrive, so a sender that trickles holds only what it has sent and never makes a small
//! delivery wait; and after a grace period a body must keep up a minimum average rate,
//! or it is cut off with 408 instead of holding a connection for hours.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};
use futures::StreamExt as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::config::WebhookSettings;

/// How bodies are read, shared by every delivery.
#[derive(Clone)]
pub struct BodyReader {
    /// Body bytes held by deliveries being received, parsed or stored, in bytes.
    budget: Arc<Semaphore>,
    max_bytes: usize,
    min_bytes_per_sec: u64,
    grace: Duration,
}

/// A whole body, holding its share of the budget until it is dropped.
pub struct ReceivedBody {
    pub bytes: Bytes,
    _charge: Option<OwnedSemaphorePermit>,
}

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the body arrived slower than {0} bytes per second")]
    TooSlow(u64),
    #[error("the body could not be read: {0}")]
    Read(#[source] axum::Error),
}

impl BodyReader {
    pub fn new(settings: &WebhookSettings) -> Self {
        let budget = settings.bytes_in_flight.max(settings.max_body_bytes);
        Self {
            budget: Arc::new(Semaphore::new(budget.min(Semaphore::MAX_PERMITS))),
            max_bytes: settings.max_body_bytes,
            min_bytes_per_sec: settings.min_bytes_per_sec,
            grace: settings.body_grace,
        }
    }

    /// Reads the whole body, or says why not as soon as it can.
    pub async fn read(&self, headers: &HeaderMap, body: Body) -> Result<ReceivedBody, BodyError> {
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|length| length > self.max_bytes as u64) {
            return Err(BodyError::TooLarge(self.max_bytes));
        }
        // Memory for a declared length is only reserved, not touched, until bytes arrive.
        let mut bytes = Vec::with_capacity(declared.unwrap_or(0) as usize);
        let mut charge: Option<OwnedSemaphorePermit> = None;
        let mut stream = body.into_data_stream();
        let start = Instant::now();
        // Time spent waiting for the budget is the server's, not the sender's.
        let mut waited = Duration::ZERO;
        loop {
            let next = match self.deadline(start + waited, bytes.len()) {
                Some(deadline) => tokio::time::timeout_at(deadline, stream.next())
                    .await
                    .map_err(|_| BodyError::TooSlow(self.min_bytes_per_sec))?,
                None => stream.next().await,
            };
            let Some(chunk) = next else { break };
            let chunk = chunk.map_err(BodyError::Read)?;
            if bytes.len() + chunk.len() > self.max_bytes {
                return Err(BodyError::TooLarge(self.max_bytes));
            }
            let waiting = Instant::now();
            let permit = self.charge(chunk.len()).await;
            waited += waiting.elapsed();
            match &mut charge {
                Some(held) => held.merge(permit),
                None => charge = Some(permit),
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(ReceivedBody {
            bytes: Bytes::from(bytes),
            _charge: charge,
        })
    }

    /// When the next byte must have arrived for `received` bytes since `start` to keep
    /// up the minimum rate after the grace period.
    fn deadline(&self, start: Instant, received: usize) -> Option<Instant> {
        if self.min_bytes_per_sec == 0 {
            return None;
        }
        let allowed = Duration::from_secs_f64(received as f64 / self.min_bytes_per_sec as f64);
        Some(start + self.grace + allowed)
    }

    async fn charge(&self, bytes: usize) -> OwnedSemaphorePermit {
        // A chunk is at most the body limit, which the budget always holds.
        let permits = u32::try_from(bytes).unwrap_or(u32::MAX);
        self.budget
            .clone()
            .acquire_many_owned(permits)
            .await
            .expect("the budget semaphore is never closed")
    }
}
