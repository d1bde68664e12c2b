//! What every page's frame shows: who is logged in, the CSRF token, the search box.

use super::access::Viewer;

pub struct Chrome {
    /// The logged-in user's login; `None` on anonymous pages.
    pub login: Option<String>,
    pub is_admin: bool,
    /// The token forms send back (hidden `csrf` input, `<meta name="csrf-token">`).
    pub csrf: String,
    /// The search box's text.
    pub query: String,
    /// The mailbox the search box searches in.
    pub mailbox: Option<String>,
}

impl Chrome {
    /// For error pages, which may be shown to anyone.
    pub fn anonymous() -> Self {
        Self::with_csrf(String::new())
    }

    /// For the anonymous forms (login, setup), with the pre-session token.
    pub fn with_csrf(csrf: String) -> Self {
        Self {
            login: None,
            is_admin: false,
            csrf,
            query: String::new(),
            mailbox: None,
        }
    }

    pub fn of(viewer: &Viewer) -> Self {
        Self {
            login: Some(viewer.user.login.clone()),
            is_admin: viewer.is_admin(),
            csrf: viewer.session.csrf_token.clone(),
            query: String::new(),
            mailbox: None,
        }
    }
}
