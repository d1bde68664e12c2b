//! Group commit, shared by both engines: deliveries queue for a writer, which takes
//! whatever has queued up (bounded in emails and part bytes) into one durable
//! transaction; each request is answered only after the commit that holds it.

use std::sync::RwLock;

use tokio::sync::{mpsc, oneshot};

use super::{Inserted, StoreError};
use crate::email::NewEmail;

/// At most this many emails share one commit.
pub(super) const MAX_BATCH_EMAILS: usize = 256;
/// A batch stops growing once it holds this many part bytes.
const MAX_BATCH_BYTES: usize = 64 * 1024 * 1024;

pub(super) type Reply = oneshot::Sender<Result<Inserted, StoreError>>;

/// A document in the form its engine stores, made from its JSON by the request's own
/// task so that the writer's serial path does only database work.
pub(super) trait StoredDocument: Send + 'static {
    fn from_json(json: String) -> Self;
    /// The JSON's length in bytes, which an email's stored size counts.
    fn json_len(&self) -> usize;
}

/// PostgreSQL stores the JSON text (and compresses it itself, with LZ4).
impl StoredDocument for String {
    fn from_json(json: String) -> Self {
        json
    }

    fn json_len(&self) -> usize {
        self.len()
    }
}

/// An email queued for a writer, with its document as the engine stores it.
pub(super) struct Job<D> {
    pub email: NewEmail,
    pub document: D,
    pub reply: Reply,
}

pub(super) fn part_bytes(email: &NewEmail) -> usize {
    email.blobs.iter().map(|(_, bytes)| bytes.len()).sum()
}

/// Waits for one job, then takes every job already queued, within the batch bounds;
/// `None` once the queue is closed and drained.
pub(super) async fn next_batch<D>(jobs: &mut mpsc::Receiver<Job<D>>) -> Option<Vec<Job<D>>> {
    let first = jobs.recv().await?;
    let mut batch_bytes = part_bytes(&first.email);
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH_EMAILS && batch_bytes < MAX_BATCH_BYTES {
        match jobs.try_recv() {
            Ok(job) => {
                batch_bytes += part_bytes(&job.email);
                batch.push(job);
            }
            Err(_) => break,
        }
    }
    Some(batch)
}

/// The store's end of the queue: `None` once closed.
pub(super) struct Queue<D>(RwLock<Option<mpsc::Sender<Job<D>>>>);

impl<D: StoredDocument> Queue<D> {
    pub fn new() -> (Self, mpsc::Receiver<Job<D>>) {
        let (sender, jobs) = mpsc::channel(MAX_BATCH_EMAILS * 4);
        (Self(RwLock::new(Some(sender))), jobs)
    }

    /// Queues `email` and waits for the commit that holds it.
    pub async fn submit(&self, email: NewEmail) -> Result<Inserted, StoreError> {
        let sender = self.0.read().expect("queue lock").clone();
        let sender = sender.ok_or(StoreError::Closed)?;
        let json = serde_json::to_string(&email.document)
            .map_err(|e| StoreError::Database(sqlx::Error::Encode(e.into())))?;
        let document = D::from_json(json);
        let (reply, answer) = oneshot::channel();
        sender
            .send(Job {
                email,
                document,
                reply,
            })
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Refuses new jobs; the writers drain what is queued, then stop.
    pub fn close(&self) {
        self.0.write().expect("queue lock").take();
    }
}
