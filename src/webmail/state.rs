//! `WebmailState`: what every page may reach, built once at startup by `webmail::build`.

use std::sync::Arc;

use crate::config::WebmailSettings;
use crate::security::client_ip::IpSet;
use crate::security::limiter::Lockouts;
use crate::security::streams::StreamSlots;
use crate::store::feed::ChangeFeed;
use crate::store::{SessionStore, Store, UserStore};

use super::counts::MailboxCounts;
use super::setup::SetupLink;
use super::signing::Signer;

#[derive(Clone)]
pub struct WebmailState {
    /// Where mail is kept (the same store as the API's).
    pub store: Arc<dyn Store>,
    /// Accounts, roles and readable addresses.
    pub users: Arc<dyn UserStore>,
    /// Sessions and reading preferences.
    pub sessions: Arc<dyn SessionStore>,
    /// Listener and session settings.
    pub settings: Arc<WebmailSettings>,
    /// Failed logins per client IP: the API lockout's thresholds, its own counters.
    pub lockout: Arc<Lockouts>,
    /// Whose `X-Forwarded-For` and `X-Forwarded-Proto` are believed.
    pub trusted_proxies: Arc<IpSet>,
    /// Signs the URLs a sandboxed body frame loads (it sends no cookie).
    pub signer: Arc<Signer>,
    /// The one-time link that creates the first admin, while there are no users.
    pub setup: Arc<SetupLink>,
    /// The mailbox selector's counts, recounted when stale.
    pub counts: Arc<MailboxCounts>,
    /// The change log's end, for the live stream (`/ui/events`); shared with the API.
    pub feed: Arc<ChangeFeed>,
    /// Open live streams per client IP (`EVENTS_MAX_STREAMS`).
    pub streams: StreamSlots,
}
