//! Files emails stored before mailboxes existed: each gets the mailboxes of its
//! recipients and its `email_parts` rows, in small batches in the background, so a large
//! database serves mail at once after the upgrade (DESIGN §6). New mail is filed as it
//! is stored; this pass only catches up, and stops for good once it reaches the end.

use std::sync::Arc;
use std::time::Duration;

use super::search_fields::search_columns;
use crate::email::{mailboxes_in, stored_size};
use crate::store::{Filed, Store, StoreError};
use crate::telemetry::error_chain;

/// Emails read and filed per transaction.
const BATCH: u32 = 200;
/// A pause between batches, so the pass never holds the writer for long.
const PAUSE: Duration = Duration::from_millis(20);
/// After a failure (the database away, say), try again this much later.
const RETRY_AFTER: Duration = Duration::from_secs(30);

/// Files every email not filed yet; returns once done. `domains` is `DOMINIO`.
pub async fn file_all(store: Arc<dyn Store>, domains: Vec<String>) {
    loop {
        match file_some(store.as_ref(), &domains).await {
            Ok(true) => return,
            Ok(false) => tokio::time::sleep(PAUSE).await,
            Err(error) => {
                tracing::warn!(error = %error_chain(&error), "filing stored emails in mailboxes failed; trying again");
                tokio::time::sleep(RETRY_AFTER).await;
            }
        }
    }
}

/// Files the next batch; `true` once nothing is left.
pub async fn file_some(store: &dyn Store, domains: &[String]) -> Result<bool, StoreError> {
    let state = store.mail_state();
    let Some(after) = state.filing_mark().await? else {
        return Ok(true);
    };
    let emails = state.emails_after(&after, BATCH).await?;
    let last = emails.last().map(|email| email.id.to_string());
    let filed: Vec<Filed> = emails
        .iter()
        .map(|email| {
            let message = super::message_of(email);
            Filed {
                id: email.id,
                mailboxes: mailboxes_in(message.mailboxes(), domains),
                parts: message.part_refs(),
                search: search_columns(&message),
                size: stored_size(json_bytes(&email.document), &message),
            }
        })
        .collect();
    if after.is_empty() && last.is_some() {
        tracing::info!("filing the emails stored before mailboxes, in the background");
    }
    // Fewer than a batch: this was the end.
    let done = filed.len() < BATCH as usize;
    let mark = if done { None } else { last.as_deref() };
    state.file(&filed, mark).await?;
    if done {
        tracing::info!("every stored email is filed in its mailboxes");
    }
    Ok(done)
}

/// The length of the document as the store serializes it.
fn json_bytes(document: &serde_json::Map<String, serde_json::Value>) -> usize {
    serde_json::to_string(document).map_or(0, |json| json.len())
}
