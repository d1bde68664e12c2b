//! `GET /ui/events`: new mail and changes, live, for the logged-in reader (DESIGN §7, §8).
//!
//! The same change log as the API's `GET /events`, filtered to the mailboxes the reader
//! may read (someone else's mail never shows, not even its subject), followed by the
//! reader's unread counts after each change, so the page updates without a reload.

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use futures::stream::{self, Stream, StreamExt as _};
use serde_json::{Map, Value, json};

use super::access::{Viewer, addresses_cover};
use super::error::WebmailError;
use super::state::WebmailState;
use crate::security::client_ip::ClientIp;
use crate::store::{MailEvent, Role};

/// A comment line this often keeps proxies from taking the stream for dead.
const HEARTBEAT: Duration = Duration::from_secs(15);

pub fn router() -> Router<WebmailState> {
    Router::new().route("/ui/events", get(follow))
}

/// Who the stream is for: the mailboxes a reader may read, decided once per stream.
#[derive(Clone)]
struct Reader {
    admin: bool,
    addresses: Vec<String>,
}

impl Reader {
    fn may_read(&self, mailbox: &str) -> bool {
        self.admin || addresses_cover(&self.addresses, mailbox)
    }

    /// The event as this reader may see it, or `None` when it concerns none of their
    /// mailboxes.
    fn sees(&self, event: &MailEvent) -> Option<Value> {
        let mailboxes: Vec<&String> = event
            .mailboxes
            .iter()
            .filter(|mailbox| self.may_read(mailbox))
            .collect();
        if mailboxes.is_empty() && !(self.admin && event.mailboxes.is_empty()) {
            return None;
        }
        let mut data = Map::new();
        data.insert("id".into(), event.email_id.to_string().into());
        data.insert("mailboxes".into(), json!(mailboxes));
        data.extend(event.data.clone());
        Some(Value::Object(data))
    }
}

async fn follow(
    State(state): State<WebmailState>,
    viewer: Viewer,
    ClientIp(client): ClientIp,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, WebmailError> {
    let slot = state
        .streams
        .take(client)
        .ok_or(WebmailError::TooManyStreams)?;
    let reader = Reader {
        admin: viewer.user.role == Role::Admin,
        addresses: viewer.user.addresses.clone(),
    };
    let start = state.feed.last_seq().await?;
    let events = state
        .feed
        .follow(start)
        .filter_map(move |event| {
            let seen = reader.sees(&event).map(|data| (event.kind, data));
            let reader = reader.clone();
            async move { seen.map(|seen| (seen, reader)) }
        })
        .then(move |((kind, data), reader)| {
            let state = state.clone();
            async move {
                let counts = unread_counts(&state, &reader).await;
                let change = Event::default().event(kind.name()).data(data.to_string());
                stream::iter([Ok(change)].into_iter().chain(counts.map(Ok)))
            }
        })
        .flatten();
    let opened = stream::once(async { Ok(Event::default().comment("live")) });
    // The slot goes back when the reader leaves and the stream is dropped.
    let stream = opened.chain(events).map(move |event| {
        let _open = &slot;
        event
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(HEARTBEAT)))
}

/// `{"mailbox": unread, …}` for the reader's mailboxes, after a change; `None` when the
/// counts cannot be read (the page keeps its numbers).
async fn unread_counts(state: &WebmailState, reader: &Reader) -> Option<Event> {
    // Any change may move a count, made here or by another instance.
    state.counts.changed();
    let counts = state.counts.get(&state.store).await.ok()?;
    let unread: Map<String, Value> = counts
        .iter()
        .filter(|mailbox| reader.may_read(&mailbox.address))
        .map(|mailbox| (mailbox.address.clone(), mailbox.unread.into()))
        .collect();
    Some(
        Event::default()
            .event("counts")
            .data(Value::Object(unread).to_string()),
    )
}
