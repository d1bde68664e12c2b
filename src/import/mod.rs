//! Bringing mail over from the systems mailroom replaces.

pub mod extended_json;
pub mod mongo;
