//! Who may call what: API keys.

pub mod auth;
