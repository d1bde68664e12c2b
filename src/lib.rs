//! mailroom: a self-hosted mail hub for domains whose mail flows through ImprovMX.
//!
//! The rooms, with dependencies running one way (`api`/`cli` → `inbound`/`security` → `store`/`email`):
//! - [`app`] wires settings, store and router together, serves, and shuts down gracefully.
//! - [`cli`] runs the binary's commands beyond serving (`user …`).
//! - [`config`] reads and validates settings from the environment.
//! - [`error`] maps every API failure to a JSON response.
//! - [`download`] serves stored parts with safe types and dispositions.
//! - [`email`] is the canonical mail model: ids, stored emails, parts.
//! - [`inbound`] turns provider payloads (ImprovMX) into emails to store.
//! - [`outbound`] checks, limits, queues and delivers mail sent through the API.
//! - [`store`] keeps mail durably on SQLite or PostgreSQL.
//! - [`api`] holds one router per resource.
//! - [`search`] parses the search language into a query that each store engine compiles.
//! - [`secret`] keeps configured secrets out of logs.
//! - [`security`] authenticates callers.
//! - [`server`] runs the HTTP listener: connection cap, header and idle timeouts.
//! - [`import`] brings mail over from the old service's MongoDB export.
//! - [`webmail`] serves the browser UI on its own listener: sessions, pages, safe HTML mail.
//! - [`telemetry`] sets up logging and records Prometheus metrics.

pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod download;
pub mod email;
pub mod error;
pub mod import;
pub mod inbound;
pub mod outbound;
pub mod search;
pub mod secret;
pub mod security;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod webmail;
