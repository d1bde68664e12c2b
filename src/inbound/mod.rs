//! Inbound providers: payloads in, `NewEmail`s out. Pure functions, no I/O, except
//! `filing`, which files emails stored before mailboxes existed.

pub mod filing;
pub mod improvmx;
pub mod original;
mod raw_parts;
pub mod search_fields;
