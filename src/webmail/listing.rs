//! Where a list is looked at (folder, mailbox, search, page), shared by the mailbox list
//! and the reading view's next/previous links, and how its rows read.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;

use super::error::WebmailError;
use super::login::encode;
use crate::email::{EmailId, Message, PartKind, StoredEmail};
use crate::store::{Cursor, EmailQuery};

/// The list's folders (DESIGN §8; sent and drafts come with compose).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Folder {
    #[default]
    Inbox,
    Unread,
    Starred,
    Trash,
    All,
}

impl Folder {
    pub const ALL: [Folder; 5] = [
        Folder::Inbox,
        Folder::Unread,
        Folder::Starred,
        Folder::Trash,
        Folder::All,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Folder::Inbox => "inbox",
            Folder::Unread => "unread",
            Folder::Starred => "starred",
            Folder::Trash => "trash",
            Folder::All => "all",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Folder::Inbox => "Inbox",
            Folder::Unread => "Unread",
            Folder::Starred => "Starred",
            Folder::Trash => "Trash",
            Folder::All => "All mail",
        }
    }

    /// The flag filters of this folder, on a query.
    pub fn apply(self, query: &mut EmailQuery) {
        let (read, starred, trashed) = match self {
            Folder::Inbox => (None, None, Some(false)),
            Folder::Unread => (Some(false), None, Some(false)),
            Folder::Starred => (None, Some(true), Some(false)),
            Folder::Trash => (None, None, Some(true)),
            Folder::All => (None, None, None),
        };
        query.read = read;
        query.starred = starred;
        query.trashed = trashed;
    }

    pub fn empty_message(self) -> &'static str {
        match self {
            Folder::Inbox => "Your inbox is empty.",
            Folder::Unread => "Nothing unread. Well done.",
            Folder::Starred => "No starred mail yet.",
            Folder::Trash => "The trash is empty.",
            Folder::All => "No mail here yet.",
        }
    }
}

/// The query string of a list view: which folder, mailbox, search and page.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListView {
    #[serde(default)]
    pub folder: Folder,
    pub mailbox: Option<String>,
    pub q: Option<String>,
    /// The keyset cursor: `<microseconds>.<id>` of the last email of the page before.
    pub after: Option<String>,
    /// Paging back: the first email of the page after (the newer page comes instead).
    pub before: Option<String>,
}

impl ListView {
    /// `?folder=…&mailbox=…&q=…` (no page), for links that keep the context.
    pub fn context(&self) -> String {
        let mut query = format!("?folder={}", self.folder.name());
        if let Some(mailbox) = &self.mailbox {
            query.push_str(&format!("&mailbox={}", encode(mailbox)));
        }
        if let Some(q) = self.q.as_deref().filter(|q| !q.trim().is_empty()) {
            query.push_str(&format!("&q={}", encode(q)));
        }
        query
    }

    pub fn with_folder(&self, folder: Folder) -> Self {
        Self {
            folder,
            after: None,
            ..self.clone()
        }
    }
}

/// A `ListView` from the query string; a malformed one (`folder=bogus`) gets the
/// friendly error page rather than a bare 400.
pub struct ListQuery(pub ListView);

impl<S: Send + Sync> FromRequestParts<S> for ListQuery {
    type Rejection = WebmailError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(view) = Query::<ListView>::from_request_parts(parts, state)
            .await
            .map_err(|_| WebmailError::BadRequest("That link is broken.".into()))?;
        Ok(Self(view))
    }
}

/// `<microseconds>.<id>`.
pub fn cursor_text(email: &StoredEmail) -> String {
    format!("{}.{}", email.received_at.timestamp_micros(), email.id)
}

pub fn parse_cursor(text: &str) -> Option<Cursor> {
    let (micros, id) = text.split_once('.')?;
    Some(Cursor {
        received_at: DateTime::from_timestamp_micros(micros.parse().ok()?)?,
        id: id.parse::<EmailId>().ok()?,
    })
}

/// The sender as people read it: the name, else the address.
pub fn sender_label(message: &Message) -> String {
    let from = message.from.as_ref();
    let field = |field: Option<&String>| {
        let text = field.map(|text| text.trim());
        text.filter(|text| !text.is_empty()).map(str::to_owned)
    };
    field(from.and_then(|f| f.name.as_ref()))
        .or_else(|| field(from.and_then(|f| f.address.as_ref())))
        .unwrap_or_else(|| "(unknown sender)".into())
}

pub fn subject(message: &Message) -> String {
    let subject = message.subject.as_deref().map(str::trim);
    let subject = subject.filter(|s| !s.is_empty());
    subject.unwrap_or("(no subject)").to_owned()
}

/// The first words of the text body, on one line.
pub fn snippet(message: &Message) -> String {
    let text = message.text.as_deref().unwrap_or("");
    let words: Vec<&str> = text.split_whitespace().take(40).collect();
    let mut line = words.join(" ");
    if let Some((cut, _)) = line.char_indices().nth(140) {
        line.truncate(cut);
        line.push('…');
    }
    line
}

pub fn attachment_count(message: &Message) -> usize {
    message.parts_of(PartKind::Attachment).count()
}

/// "just now", "5 min ago", "3 h ago", a weekday this week, else "Dec 3" or "2025-11-02".
pub fn relative_date(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let age = now - at;
    if age.num_minutes() < 1 {
        "just now".into()
    } else if age.num_hours() < 1 {
        format!("{} min ago", age.num_minutes())
    } else if age.num_hours() < 24 {
        format!("{} h ago", age.num_hours())
    } else if age.num_days() < 7 {
        at.format("%a").to_string()
    } else if at.format("%Y").to_string() == now.format("%Y").to_string() {
        at.format("%b %-d").to_string()
    } else {
        at.format("%Y-%m-%d").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    #[test]
    fn dates_read_relative_to_now() {
        let now = Utc.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap();
        let ago = |minutes: i64| relative_date(now - chrono::Duration::minutes(minutes), now);
        assert_eq!(ago(0), "just now");
        assert_eq!(ago(5), "5 min ago");
        assert_eq!(ago(180), "3 h ago");
        assert_eq!(ago(2 * 24 * 60), "Fri");
        assert_eq!(ago(30 * 24 * 60), "Nov 6");
        assert_eq!(ago(400 * 24 * 60), "2025-11-01");
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let email = StoredEmail {
            id: EmailId::generate(Utc::now()),
            provider: Default::default(),
            received_at: Utc::now(),
            processed: false,
            starred: false,
            trashed: false,
            document: Default::default(),
        };
        let cursor = parse_cursor(&cursor_text(&email)).unwrap();
        assert_eq!(cursor.id, email.id);
        assert_eq!(
            cursor.received_at.timestamp_micros(),
            email.received_at.timestamp_micros()
        );
        assert!(parse_cursor("x.y").is_none());
        assert!(parse_cursor("12").is_none());
    }
}
