//! Inbound providers: payloads in, `NewEmail`s out. Pure functions, no I/O.

pub mod improvmx;
mod raw_parts;
