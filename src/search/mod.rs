//! The search language of `GET /emails?q=` and the webmail's search box (DESIGN §7),
//! modelled on Mailpit's and Gmail's. This module only parses: a query becomes a
//! `Query` (every term must match), and each store engine compiles that into its own
//! SQL. It imports nothing above it.

mod html;
mod parser;
pub mod text;
mod words;

use chrono::NaiveDate;

pub use parser::{ParseError, parse};

/// A parsed query: an email matches when every term does.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Query {
    pub terms: Vec<Term>,
}

/// One term, possibly negated (`-term`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub negated: bool,
    pub condition: Condition,
}

/// What a term asks of an email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// A whole word of the subject, sender, recipients, body text or part names;
    /// case- and accent-insensitive.
    Word(String),
    /// Words in this order (`"a phrase"`).
    Phrase(Vec<String>),
    /// A literal, case-insensitive substring of the sender (`from:`).
    From(String),
    /// … of any recipient (`to:`).
    To(String),
    /// … of the subject (`subject:`).
    Subject(String),
    /// In this mailbox (`mailbox:a@x.org`).
    Mailbox(String),
    /// At least one attachment; inline images do not count (`has:attachment`).
    HasAttachment,
    /// By flag (`is:unread` …).
    Is(Flag),
    /// Received before this UTC day (`before:2026-12-01`).
    Before(NaiveDate),
    /// Received on or after this UTC day (`after:…`).
    After(NaiveDate),
    /// Stored size above this many bytes (`larger:10MB`, units of 1,024).
    Larger(u64),
    /// Stored size below this many bytes (`smaller:500KB`).
    Smaller(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    Unread,
    Read,
    Starred,
    Trashed,
}
