//! Who may call what: API keys and client addresses.

pub mod auth;
pub mod client_ip;
