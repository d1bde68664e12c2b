//! `GET /`: the mailbox list: folders, the user's mailboxes with unread counts, search
//! in the query language, keyset pages (page 1,000 costs what page 1 does).

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use chrono::Utc;

use super::access::Viewer;
use super::chrome::Chrome;
use super::error::{WebmailError, render};
use super::listing::{self, Folder, ListQuery, ListView};
use super::login::encode;
use super::state::WebmailState;
use crate::email::{MailboxCount, StoredEmail};
use crate::inbound;
use crate::store::EmailQuery;

/// Rows per page.
pub const PAGE_SIZE: u32 = 50;

pub fn router() -> Router<WebmailState> {
    Router::new().route("/", get(list))
}

struct FolderLink {
    label: &'static str,
    href: String,
    active: bool,
}

struct MailboxLink {
    label: String,
    /// The mailbox whose count the live stream updates; `*` for "All mail" (the sum).
    key: String,
    href: String,
    unread: u64,
    active: bool,
}

struct Row {
    id: String,
    href: String,
    from: String,
    subject: String,
    snippet: String,
    date_iso: String,
    date_title: String,
    date_label: String,
    unread: bool,
    starred: bool,
    attachments: usize,
}

#[derive(Template)]
#[template(path = "mailbox.html")]
struct MailboxPage {
    chrome: Chrome,
    heading: String,
    folders: Vec<FolderLink>,
    mailboxes: Vec<MailboxLink>,
    rows: Vec<Row>,
    problem: Option<String>,
    empty_message: &'static str,
    newer_page: Option<String>,
    older_page: Option<String>,
}

async fn list(
    State(state): State<WebmailState>,
    viewer: Viewer,
    ListQuery(mut view): ListQuery,
) -> Result<Response, WebmailError> {
    let all = state.counts.get(&state.store).await?;
    let readable = viewer.readable(all.as_ref().clone());
    view.mailbox = selected_mailbox(&viewer, &readable, view.mailbox.take())?;
    let mut page = MailboxPage {
        chrome: Chrome {
            query: view.q.clone().unwrap_or_default(),
            mailbox: view.mailbox.clone(),
            ..Chrome::of(&viewer)
        },
        heading: heading(&view),
        folders: folder_links(&view),
        mailboxes: mailbox_links(&viewer, &readable, &view),
        rows: Vec::new(),
        problem: None,
        empty_message: view.folder.empty_message(),
        newer_page: None,
        older_page: None,
    };
    if view.mailbox.is_none() && !viewer.is_admin() {
        page.empty_message = "No mailbox is yours yet: ask an admin to assign you an address.";
        return render(&page);
    }
    let query = match email_query(&view) {
        Ok(query) => query,
        Err(problem) => {
            page.problem = Some(problem);
            return render(&page);
        }
    };
    let mut emails = state.store.list_emails(&query).await?;
    let more = emails.len() > PAGE_SIZE as usize;
    emails.truncate(PAGE_SIZE as usize);
    let backwards = view.before.is_some();
    if backwards {
        emails.reverse(); // a backward page comes oldest first
    }
    let link = |key: &str, email: &StoredEmail| {
        format!("/{}&{key}={}", view.context(), listing::cursor_text(email))
    };
    if view.after.is_some() || (backwards && more) {
        page.newer_page = emails.first().map(|first| link("before", first));
    }
    if backwards || more {
        page.older_page = emails.last().map(|last| link("after", last));
    }
    page.rows = emails.iter().map(|email| row(email, &view)).collect();
    render(&page)
}

/// The mailbox to list: the one asked for if the viewer's (else 404); by default the
/// first of a user's, or "All mail" (`None`) for an admin.
fn selected_mailbox(
    viewer: &Viewer,
    readable: &[MailboxCount],
    asked: Option<String>,
) -> Result<Option<String>, WebmailError> {
    match asked.filter(|m| !m.is_empty()) {
        Some(mailbox) if viewer.may_read(&mailbox) => Ok(Some(mailbox)),
        Some(_) => Err(WebmailError::NotFound),
        None if viewer.is_admin() => Ok(None),
        None => Ok(readable.first().map(|m| m.address.clone())),
    }
}

/// The store query of a list view; a search the language cannot parse is a message.
pub fn email_query(view: &ListView) -> Result<EmailQuery, String> {
    let search = match view.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        Some(q) => Some(
            crate::search::parse(q)
                .map_err(|e| format!("That search could not be understood: {e}."))?,
        ),
        None => None,
    };
    let cursor = |text: Option<&str>| match text {
        Some(text) => listing::parse_cursor(text)
            .map(Some)
            .ok_or("That page link is broken."),
        None => Ok(None),
    };
    let (after, before) = (
        cursor(view.after.as_deref())?,
        cursor(view.before.as_deref())?,
    );
    let mut query = EmailQuery {
        limit: PAGE_SIZE + 1,
        mailbox: view.mailbox.clone(),
        search,
        after,
        before,
        ..EmailQuery::default()
    };
    view.folder.apply(&mut query);
    Ok(query)
}

fn heading(view: &ListView) -> String {
    match view.q.as_deref().filter(|q| !q.trim().is_empty()) {
        Some(q) => format!("Search: {q}"),
        None => view.folder.label().to_owned(),
    }
}

fn folder_links(view: &ListView) -> Vec<FolderLink> {
    Folder::ALL
        .into_iter()
        .map(|folder| FolderLink {
            label: folder.label(),
            href: format!("/{}", view.with_folder(folder).context()),
            active: folder == view.folder,
        })
        .collect()
}

fn mailbox_links(viewer: &Viewer, readable: &[MailboxCount], view: &ListView) -> Vec<MailboxLink> {
    let mut links = Vec::new();
    if viewer.is_admin() {
        links.push(MailboxLink {
            label: "All mail".into(),
            key: "*".into(),
            href: format!("/?folder={}", view.folder.name()),
            unread: readable.iter().map(|m| m.unread).sum(),
            active: view.mailbox.is_none(),
        });
    }
    links.extend(readable.iter().map(|mailbox| MailboxLink {
        label: mailbox.address.clone(),
        key: mailbox.address.clone(),
        href: format!(
            "/?folder={}&mailbox={}",
            view.folder.name(),
            encode(&mailbox.address)
        ),
        unread: mailbox.unread,
        active: view.mailbox.as_deref() == Some(mailbox.address.as_str()),
    }));
    links
}

fn row(email: &StoredEmail, view: &ListView) -> Row {
    let message = inbound::message_of(email);
    Row {
        id: email.id.to_string(),
        href: format!("/view/{}{}", email.id, view.context()),
        from: listing::sender_label(&message),
        subject: listing::subject(&message),
        snippet: listing::snippet(&message),
        date_iso: email.received_at.to_rfc3339(),
        date_title: email.received_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        date_label: listing::relative_date(email.received_at, Utc::now()),
        unread: !email.processed,
        starred: email.starred,
        attachments: listing::attachment_count(&message),
    }
}
