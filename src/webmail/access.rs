//! Who is reading, and what they may read: a user reads the mailboxes of its addresses
//! (exact, or a catch-all `*@domain`); an admin reads every mailbox. Someone else's
//! email answers exactly like an unknown id.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::error::WebmailError;
use super::session::ActiveSession;
use super::state::WebmailState;
use crate::email::{EmailId, FlagChange, MailboxCount, StoredEmail};
use crate::store::{Role, Session, User};

/// The logged-in user of a request; pages that take it require a session.
pub struct Viewer {
    pub user: User,
    pub session: Session,
}

impl FromRequestParts<WebmailState> for Viewer {
    type Rejection = WebmailError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &WebmailState,
    ) -> Result<Self, Self::Rejection> {
        let login_required = || WebmailError::LoginRequired {
            next: parts
                .uri
                .path_and_query()
                .map_or("/".into(), |p| p.as_str().to_owned()),
        };
        let Some(ActiveSession(session)) = parts.extensions.get::<ActiveSession>().cloned() else {
            return Err(login_required());
        };
        match state.users.user(&session.login).await? {
            // A session older than the password is void (set elsewhere, by the CLI).
            Some(user) if user.password_changed_at <= session.created_at => {
                Ok(Viewer { user, session })
            }
            _ => Err(login_required()),
        }
    }
}

impl Viewer {
    pub fn is_admin(&self) -> bool {
        self.user.role == Role::Admin
    }

    /// Whether the mailbox (a normalised address) is one of the user's.
    pub fn may_read(&self, mailbox: &str) -> bool {
        self.is_admin() || addresses_cover(&self.user.addresses, mailbox)
    }

    /// The mailboxes this viewer may read, from every mailbox with its counts.
    pub fn readable(&self, mailboxes: Vec<MailboxCount>) -> Vec<MailboxCount> {
        mailboxes
            .into_iter()
            .filter(|mailbox| self.may_read(&mailbox.address))
            .collect()
    }
}

/// Whether one of `addresses` names `mailbox`: the address itself, or `*@` its domain.
pub fn addresses_cover(addresses: &[String], mailbox: &str) -> bool {
    let domain = mailbox.rsplit_once('@').map(|(_, domain)| domain);
    addresses.iter().any(|address| {
        address == mailbox
            || address
                .strip_prefix("*@")
                .is_some_and(|catch_all| Some(catch_all) == domain)
    })
}

/// An email the viewer may read, with the flags of the mailbox it is read through.
pub struct Readable {
    pub email: StoredEmail,
    /// The viewer's mailboxes that hold it (empty: an admin reading unfiled mail).
    pub mailboxes: Vec<String>,
    /// Whether every mailbox holding it is the viewer's (so deleting hurts no one else).
    pub wholly_owned: bool,
}

/// The email, if the viewer may read it; `preferred` picks the mailbox whose flags show.
pub async fn open(
    state: &WebmailState,
    viewer: &Viewer,
    id: EmailId,
    preferred: Option<&str>,
) -> Result<Readable, WebmailError> {
    let all = state.store.mail_state().mailboxes_of(id).await?;
    let mailboxes: Vec<String> = all
        .iter()
        .map(|m| m.address.clone())
        .filter(|address| viewer.may_read(address))
        .collect();
    let wholly_owned = mailboxes.len() == all.len();
    let shown = preferred
        .filter(|wanted| mailboxes.iter().any(|m| m == wanted))
        .or(mailboxes.first().map(String::as_str));
    let email = match shown {
        Some(mailbox) => state.store.mail_state().email_in(id, mailbox).await?,
        None if viewer.is_admin() => state.store.email(id).await?,
        None => None,
    };
    let email = email.ok_or(WebmailError::NotFound)?;
    Ok(Readable {
        email,
        mailboxes,
        wholly_owned,
    })
}

/// Applies `change` in the viewer's mailboxes of the email (all of it, for an admin's
/// unfiled mail): flags are per mailbox, so another reader's stay as they are.
pub async fn set_flags(
    state: &WebmailState,
    readable: &Readable,
    change: FlagChange,
) -> Result<(), WebmailError> {
    let ids = [readable.email.id];
    let mail = state.store.mail_state();
    state.counts.changed();
    if readable.mailboxes.is_empty() {
        mail.set_flags(&ids, None, change).await?;
    }
    for mailbox in &readable.mailboxes {
        mail.set_flags(&ids, Some(mailbox), change).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_cover_their_own_mailbox_and_catch_alls_their_domain() {
        let addresses = vec!["ana@x.org".to_owned(), "*@y.org".to_owned()];
        assert!(addresses_cover(&addresses, "ana@x.org"));
        assert!(addresses_cover(&addresses, "anyone@y.org"));
        assert!(!addresses_cover(&addresses, "luis@x.org"));
        assert!(!addresses_cover(&addresses, "a@sub.y.org"));
        assert!(!addresses_cover(&addresses, "a@evily.org"));
    }
}
