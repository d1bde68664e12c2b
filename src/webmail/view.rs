//! `GET /view/<id>`: the reading view (its buttons post to `actions`). Opening an email
//! marks it read in the reader's mailboxes.

use super::thread::{self, ThreadItem};
use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use chrono::Utc;
use serde::Deserialize;

use super::access::{self, Readable, Viewer};
use super::auth_results::{self, Badge};
use super::body::body_part;
use super::chrome::Chrome;
use super::error::{WebmailError, render};
use super::listing::{self, ListQuery, ListView};
use super::mailbox::email_query;
use super::state::WebmailState;
use crate::email::{EmailId, FlagChange, Message, PartKind, Person, StoredEmail};
use crate::inbound;

pub fn router() -> Router<WebmailState> {
    Router::new().route("/view/{id}", get(show))
}

pub enum Body {
    Html {
        src: String,
        images_shown: bool,
        show_images_href: String,
        sender: String,
    },
    Text(String),
    Empty,
}

struct Attachment {
    name: String,
    size: String,
    content_type: String,
    href: String,
    /// Passive raster images get a thumbnail (the same download, shown small).
    thumbnail: bool,
}

/// Image types a browser only ever decodes as pictures (never SVG, which is a document).
const THUMBNAIL_TYPES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

#[derive(Template)]
#[template(path = "view.html")]
struct ViewPage {
    chrome: Chrome,
    id: String,
    subject: String,
    from: String,
    to: String,
    cc: String,
    date: String,
    date_iso: String,
    badges: Vec<Badge>,
    body: Body,
    attachments: Vec<Attachment>,
    starred: bool,
    trashed: bool,
    original_href: String,
    back_href: String,
    newer_href: Option<String>,
    older_href: Option<String>,
    /// `?folder=…&mailbox=…&q=…`, kept on every link and form.
    mailbox_query: String,
    /// The conversation, oldest first, when there is more than this message.
    thread: Vec<ThreadItem>,
}

#[derive(Deserialize)]
struct ViewOptions {
    images: Option<String>,
}

pub fn parse_id(id: &str) -> Result<EmailId, WebmailError> {
    id.parse().map_err(|_| WebmailError::NotFound)
}

async fn show(
    State(state): State<WebmailState>,
    viewer: Viewer,
    Path(id): Path<String>,
    ListQuery(view): ListQuery,
    Query(options): Query<ViewOptions>,
) -> Result<Response, WebmailError> {
    let readable = access::open(&state, &viewer, parse_id(&id)?, view.mailbox.as_deref()).await?;
    if !readable.email.processed {
        let read = FlagChange {
            read: Some(true),
            ..FlagChange::default()
        };
        access::set_flags(&state, &readable, read).await?;
    }
    let message = inbound::message_of(&readable.email);
    let sender = message.sender_address().unwrap_or_default();
    let context = view.context();
    // Independent reads, asked at once: under load every query waits its turn for a
    // reader thread, and one after the other those waits added up (p99 26 ms at 4
    // clients on a busy machine).
    let (images, neighbours, thread) = tokio::try_join!(
        shows_images(&state, &viewer, &sender, &options),
        neighbours(&state, &viewer, &view, &readable),
        thread::conversation(&state, &viewer, (&readable.email, &message), &context),
    )?;
    let body = body(&state, &viewer, &readable, &message, &view, images, sender);
    render(&page(
        &viewer, readable, &message, context, body, neighbours, thread,
    ))
}

/// Remote images: asked for this once, or always shown from this sender.
async fn shows_images(
    state: &WebmailState,
    viewer: &Viewer,
    sender: &str,
    options: &ViewOptions,
) -> Result<bool, WebmailError> {
    if options.images.as_deref() == Some("1") {
        return Ok(true);
    }
    if sender.is_empty() {
        return Ok(false);
    }
    Ok(state
        .sessions
        .shows_images_from(viewer.user.id, sender)
        .await?)
}

fn page(
    viewer: &Viewer,
    readable: Readable,
    message: &Message,
    context: String,
    body: Body,
    (newer_href, older_href): (Option<String>, Option<String>),
    thread: Vec<ThreadItem>,
) -> ViewPage {
    let email = readable.email;
    ViewPage {
        chrome: Chrome::of(viewer),
        id: email.id.to_string(),
        subject: listing::subject(message),
        from: people(message.from.iter()),
        to: people(message.to.iter()),
        cc: people(message.cc.iter()),
        date: email
            .received_at
            .format("%a, %-d %b %Y %H:%M UTC")
            .to_string(),
        date_iso: email.received_at.to_rfc3339(),
        badges: auth_results::badges(message),
        attachments: attachments(&email, message),
        starred: email.starred,
        trashed: email.trashed,
        original_href: format!("/ui/original/{}", email.id),
        back_href: format!("/{context}"),
        newer_href,
        older_href,
        mailbox_query: context,
        body,
        thread,
    }
}

/// The emails next to this one in the same list, `(newer, older)`, through the keyset
/// cursors. A user's list is always one of their mailboxes (the one read through,
/// unless another of theirs was asked for), so a link never names someone else's email.
async fn neighbours(
    state: &WebmailState,
    viewer: &Viewer,
    view: &ListView,
    readable: &Readable,
) -> Result<(Option<String>, Option<String>), WebmailError> {
    let mut view = view.clone();
    if !viewer.is_admin() {
        let asked = view
            .mailbox
            .take()
            .filter(|m| readable.mailboxes.contains(m));
        view.mailbox = asked.or_else(|| readable.mailboxes.first().cloned());
        if view.mailbox.is_none() {
            return Ok((None, None));
        }
    }
    let here = listing::cursor_text(&readable.email);
    let newer = ListView {
        before: Some(here.clone()),
        after: None,
        ..view.clone()
    };
    let older = ListView {
        after: Some(here),
        before: None,
        ..view.clone()
    };
    let context = view.context();
    tokio::try_join!(
        neighbour(state, &newer, &context),
        neighbour(state, &older, &context)
    )
}

/// The link to the first email of `side` (a one-email page), if there is one.
async fn neighbour(
    state: &WebmailState,
    side: &ListView,
    context: &str,
) -> Result<Option<String>, WebmailError> {
    let Ok(mut query) = email_query(side) else {
        return Ok(None);
    };
    query.limit = 1;
    let next = state.store.list_emails(&query).await?;
    Ok(next.first().map(|e| format!("/view/{}{context}", e.id)))
}

fn body(
    state: &WebmailState,
    viewer: &Viewer,
    readable: &Readable,
    message: &Message,
    view: &ListView,
    images: bool,
    sender: String,
) -> Body {
    let email = &readable.email;
    let text = |field: &Option<String>| {
        let text = field.as_deref();
        text.filter(|s| !s.trim().is_empty()).map(str::to_owned)
    };
    if text(&message.html).is_some() {
        let now = Utc::now();
        let signed = state
            .signer
            .query(viewer.user.id, email.id, body_part(images), now);
        let images_param = if images { "&images=1" } else { "" };
        return Body::Html {
            src: format!("/ui/body/{}?{signed}{images_param}", email.id),
            images_shown: images,
            show_images_href: format!("/view/{}{}&images=1", email.id, view.context()),
            sender,
        };
    }
    match text(&message.text) {
        Some(text) => Body::Text(text),
        None => Body::Empty,
    }
}

fn attachments(email: &StoredEmail, message: &Message) -> Vec<Attachment> {
    message
        .parts_of(PartKind::Attachment)
        .map(|part| Attachment {
            name: part
                .meta
                .name
                .clone()
                .unwrap_or_else(|| format!("attachment-{}", part.position + 1)),
            size: human_size(part.meta.size),
            thumbnail: THUMBNAIL_TYPES.contains(
                &crate::download::served_type(part.meta.content_type.as_deref()).essence_str(),
            ),
            content_type: part.meta.content_type.clone().unwrap_or_default(),
            href: format!("/ui/download/{}/attachments/{}", email.id, part.position),
        })
        .collect()
}

/// `Ana <ana@x.org>, luis@y.org`.
fn people<'a>(people: impl Iterator<Item = &'a Person>) -> String {
    let labels: Vec<String> = people
        .map(Person::label)
        .filter(|l| !l.is_empty())
        .collect();
    labels.join(", ")
}

fn human_size(bytes: u64) -> String {
    match bytes {
        0..1024 => format!("{bytes} B"),
        1024..1_048_576 => format!("{:.0} KB", bytes as f64 / 1024.0),
        _ => format!("{:.1} MB", bytes as f64 / 1_048_576.0),
    }
}
