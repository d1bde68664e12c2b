//! The conversation of the message being read: the emails that share its thread key
//! (its root Message-ID, see `Message::thread_key`), oldest first, as far
//! as the reader may read them.

use chrono::Utc;

use super::access::Viewer;
use super::error::WebmailError;
use super::listing;
use super::state::WebmailState;
use crate::email::{Message, StoredEmail};
use crate::inbound;

/// Emails of one conversation shown at most.
const MAX_SHOWN: u32 = 50;

/// One email of the conversation, as the reading view lists it.
pub struct ThreadItem {
    pub href: String,
    pub from: String,
    pub subject: String,
    pub date: String,
    /// The message on screen.
    pub current: bool,
    pub unread: bool,
}

/// The conversation around `email` (whose message is `message`); empty when it is
/// alone in it (or has no key).
pub async fn conversation(
    state: &WebmailState,
    viewer: &Viewer,
    (email, message): (&StoredEmail, &Message),
    context: &str,
) -> Result<Vec<ThreadItem>, WebmailError> {
    let Some(key) = message.thread_key() else {
        return Ok(Vec::new());
    };
    let mail = state.store.mail_state();
    let mut items = Vec::new();
    for member in mail.thread(&key, MAX_SHOWN).await? {
        let current = member.id == email.id;
        // Someone else's reply in the same thread stays theirs.
        if !current && !viewer.is_admin() {
            let mailboxes = mail.mailboxes_of(member.id).await?;
            if !mailboxes.iter().any(|m| viewer.may_read(&m.address)) {
                continue;
            }
        }
        let message = inbound::message_of(&member);
        items.push(ThreadItem {
            href: format!("/view/{}{context}", member.id),
            from: listing::sender_label(&message),
            subject: listing::subject(&message),
            date: listing::relative_date(member.received_at, Utc::now()),
            current,
            unread: !member.processed,
        });
    }
    if items.len() < 2 {
        items.clear();
    }
    Ok(items)
}
