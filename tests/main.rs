//! The integration tests, compiled as one binary.
//!
//! One binary per file meant one link of the whole server per file: 43 links of about
//! 300 MB each, which filled CI's disk and spent most of its build time linking. Each
//! file is a module here, so a single test still runs with
//! `cargo test --test integration webhook::` (or any part of a test's path). The metrics
//! tests are a binary of their own (`tests/metrics.rs`): the recorder is process-wide.

#[macro_use]
mod common;
mod multi_instance_support;
mod security_support;
mod send_support;
mod webmail_support;

mod blob_store;
mod change_log;
mod cli;
mod database_outage;
mod disk_full;
mod docs_openapi;
mod downloads;
mod events_api;
mod golden;
mod http_limits;
mod import_mongo;
mod liveness;
mod mail_state_api;
mod mail_state_store;
mod mailbox_counts;
mod multi_instance;
mod outbox_delivery;
mod outbox_store;
mod postgres_storage;
mod read_api;
mod retention;
mod search;
mod search_plans;
mod search_query;
mod security_caddy;
mod security_limits;
mod security_lockout;
mod security_log;
mod send_api;
mod send_tls;
mod sessions_store;
mod shared_limits_store;
mod startup;
mod store_suite;
mod threads;
mod users;
mod webhook;
mod webhook_abuse;
mod webmail;
mod webmail_browser;
mod webmail_browser_live;
mod webmail_caddy;
mod webmail_live;
mod webmail_original;
mod webmail_pages;
mod webmail_threads;
