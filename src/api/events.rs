//! `GET /events`: the change log as Server-Sent Events (DESIGN §7).

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use futures::stream::{self, Stream, StreamExt as _};
use serde::Deserialize;

use crate::api::AppState;
use crate::error::ApiError;
use crate::security::auth::Authenticated;
use crate::security::client_ip::ClientIp;
use crate::store::MailEvent;

/// A comment line this often keeps proxies and clients from taking the stream for dead.
const HEARTBEAT: Duration = Duration::from_secs(15);

pub fn router() -> Router<AppState> {
    Router::new().route("/events", get(follow))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsParams {
    /// Start after this event number, like `Last-Event-ID` (which wins when both are
    /// given). Without either, the stream starts with the next change.
    #[param(minimum = 0)]
    since: Option<String>,
}

/// Follow new emails, flag changes and deletes as Server-Sent Events.
///
/// Each event has an `id` (its number in the change log), an `event` type (`email`,
/// `flags` or `deleted`) and JSON `data`: `{"id","mailboxes",…}`, plus `from`, `subject`
/// and `received_at` for `email`, and the flags set (`read`, `starred`, `trashed`) for
/// `flags`. A client that reconnects with `Last-Event-ID` misses nothing the log still
/// holds. A comment line every 15 s is the heartbeat. A client that stops reading for
/// 30 s is dropped. Each client IP may hold `EVENTS_MAX_STREAMS` (default 4) open.
#[utoipa::path(
    get,
    path = "/events",
    tag = "emails",
    security(("bearer" = [])),
    params(
        EventsParams,
        ("Last-Event-ID" = Option<i64>, Header, description = "Resume after this event number"),
    ),
    responses(
        (status = 200, description = "The event stream", content_type = "text/event-stream", body = String),
        (status = 400, description = "`since` or `Last-Event-ID` is not a number", body = super::docs::ErrorBody),
        (status = 429, description = "Too many open streams from this client IP (EVENTS_MAX_STREAMS)", body = super::docs::ErrorBody),
    )
)]
pub(super) async fn follow(
    _: Authenticated,
    ClientIp(client): ClientIp,
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<EventsParams>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let Query(params) = query?;
    let start = match resume_point(&headers, params.since.as_deref())? {
        Some(seq) => seq,
        None => state.feed.last_seq().await?,
    };
    let slot = state
        .security
        .streams
        .take(client)
        .ok_or(ApiError::TooManyStreams {
            max: state.settings.security.events_max_streams,
        })?;
    let events = state.feed.follow(start).map(|event| sse_event(&event));
    // The slot goes back when the client disconnects and the stream is dropped.
    let opened =
        stream::once(async move { Ok(Event::default().comment("following the change log")) });
    let stream = opened.chain(events.map(move |event| {
        let _open = &slot;
        Ok(event)
    }));
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(HEARTBEAT)))
}

/// Where a stream resumes: `Last-Event-ID`, else `since`; `None` for "from now".
fn resume_point(headers: &HeaderMap, since: Option<&str>) -> Result<Option<i64>, ApiError> {
    let given = headers
        .get("last-event-id")
        .map(|value| value.to_str().unwrap_or("?"))
        .or(since)
        .map(str::trim);
    given
        .map(|text| {
            text.parse::<i64>()
                .ok()
                .filter(|seq| *seq >= 0)
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "Invalid event id",
                        format!("{text:?} is not an event number (an integer ≥ 0)"),
                    )
                })
        })
        .transpose()
}

fn sse_event(event: &MailEvent) -> Event {
    Event::default()
        .id(event.seq.to_string())
        .event(event.kind.name())
        .data(event.to_json().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_event_id_wins_over_since_and_bad_numbers_are_refused() {
        let mut headers = HeaderMap::new();
        assert_eq!(resume_point(&headers, None).unwrap(), None);
        assert_eq!(resume_point(&headers, Some("7")).unwrap(), Some(7));
        headers.insert("last-event-id", "12".parse().unwrap());
        assert_eq!(resume_point(&headers, Some("7")).unwrap(), Some(12));
        headers.insert("last-event-id", "-1".parse().unwrap());
        assert!(resume_point(&headers, None).is_err());
        assert!(resume_point(&HeaderMap::new(), Some("x")).is_err());
    }
}
