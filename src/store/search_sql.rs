//! The search language (`search::Query`) compiled to SQL conditions, one per term, on
//! both engines. Words go through each engine's full-text index (FTS5 on SQLite, with
//! the emails past the index's mark tested directly; a `tsvector` on PostgreSQL); the
//! other terms are plain column tests, the same on both but for the substring function.

use chrono::{NaiveDate, NaiveTime};
use sqlx::{Postgres, QueryBuilder, Sqlite};

use super::postgres::vector::phrase_query_literal;
use crate::email::{mailbox_address, search_key};
use crate::search::text::words;
use crate::search::{Condition, Flag, Query};

/// Where a condition finds its columns: the `emails` row's alias, and the flag columns
/// (a mailbox's, or the email's summary).
pub(super) struct Columns<'a> {
    pub table: &'a str,
    pub read: &'a str,
    pub starred: &'a str,
    pub trashed: &'a str,
    /// SQLite: whether word terms may drive the plan (`rowid IN (matches)`, which the
    /// planner answers from the matches, sorted) or are only tested on each row of a
    /// newest-first walk (`+rowid IN`). PostgreSQL's planner decides alone.
    pub words_drive: bool,
}

/// The normalised phrases of the terms that are words or phrases and not negated: an
/// email matches only if it has each, so the rarest bounds the matches.
pub(super) fn wanted_phrases(query: &Query) -> Vec<String> {
    query
        .terms
        .iter()
        .filter(|term| !term.negated)
        .filter_map(|term| phrase(&term.condition))
        .filter(|phrase| !phrase.is_empty())
        .collect()
}

/// SQLite: a phrase of normalised words as an FTS5 query.
pub(super) fn fts_words(phrase: &str) -> String {
    format!("\"{phrase}\"")
}

/// The normalised words of a word or phrase term, joined by single spaces.
fn phrase(condition: &Condition) -> Option<String> {
    let text = match condition {
        Condition::Word(word) => word.clone(),
        Condition::Phrase(words) => words.join(" "),
        _ => return None,
    };
    Some(words(&text).join(" "))
}

/// Microseconds since the epoch of a UTC day's start.
fn day_start(day: NaiveDate) -> i64 {
    day.and_time(NaiveTime::MIN).and_utc().timestamp_micros()
}

/// `push_search` for one engine: `$contains` is its substring test (`instr`, `strpos`),
/// `$words` pushes a test of a phrase of normalised words.
macro_rules! push_search {
    ($name:ident, $db:ty, $contains:literal, $words:path) => {
        /// ` AND <condition>` for every term of `query`.
        pub(super) fn $name(sql: &mut QueryBuilder<$db>, query: &Query, columns: &Columns) {
            let t = columns.table;
            for term in &query.terms {
                sql.push(if term.negated { " AND NOT (" } else { " AND (" });
                let contains = |sql: &mut QueryBuilder<$db>, column: String, value: &str| {
                    sql.push(format_args!("{}(coalesce({column}, ''), ", $contains))
                        .push_bind(search_key(value))
                        .push(") > 0");
                };
                match &term.condition {
                    condition @ (Condition::Word(_) | Condition::Phrase(_)) => {
                        match phrase(condition).filter(|p| !p.is_empty()) {
                            Some(phrase) => $words(sql, columns, term.negated, phrase),
                            // Only punctuation: no word to find.
                            None => {
                                sql.push("1 = 0");
                            }
                        }
                    }
                    Condition::From(value) => {
                        contains(sql, format!("{t}.sender_folded, {t}.from_email"), value)
                    }
                    Condition::To(value) => contains(sql, format!("{t}.recipients_folded"), value),
                    Condition::Subject(value) => {
                        contains(sql, format!("{t}.subject_folded"), value)
                    }
                    Condition::Mailbox(address) => {
                        let mailbox =
                            mailbox_address(address).unwrap_or_else(|| address.to_lowercase());
                        sql.push(format_args!(
                            "EXISTS (SELECT 1 FROM mailbox_emails mm \
                             WHERE mm.email_id = {t}.id AND mm.mailbox = "
                        ))
                        .push_bind(mailbox)
                        .push(")");
                    }
                    Condition::HasAttachment => {
                        sql.push(format_args!("{t}.attachment_count > 0"));
                    }
                    Condition::Is(flag) => {
                        sql.push(match flag {
                            Flag::Unread => format!("NOT {}", columns.read),
                            Flag::Read => columns.read.to_owned(),
                            Flag::Starred => columns.starred.to_owned(),
                            Flag::Trashed => columns.trashed.to_owned(),
                        });
                    }
                    Condition::Before(day) => {
                        sql.push(format_args!("{t}.received_at < "))
                            .push_bind(day_start(*day));
                    }
                    Condition::After(day) => {
                        sql.push(format_args!("{t}.received_at >= "))
                            .push_bind(day_start(*day));
                    }
                    Condition::Larger(bytes) => {
                        sql.push(format_args!("{t}.size_bytes > "))
                            .push_bind(i64::try_from(*bytes).unwrap_or(i64::MAX));
                    }
                    Condition::Smaller(bytes) => {
                        sql.push(format_args!("{t}.size_bytes < "))
                            .push_bind(i64::try_from(*bytes).unwrap_or(i64::MAX));
                    }
                }
                sql.push(")");
            }
        }
    };
}

/// SQLite: the phrase in the FTS5 index, or in the words of the emails past its mark.
fn sqlite_words(sql: &mut QueryBuilder<Sqlite>, columns: &Columns, _negated: bool, phrase: String) {
    let (t, test) = (columns.table, if columns.words_drive { "" } else { "+" });
    sql.push(format_args!(
        "{test}{t}.rowid IN (SELECT rowid FROM emails_words WHERE emails_words MATCH "
    ))
    .push_bind(fts_words(&phrase))
    .push(format_args!(
        ") OR {test}{t}.rowid IN (SELECT email_rowid FROM email_words \
         WHERE email_rowid > (SELECT indexed_up_to FROM subject_index_progress) \
         AND instr(words, "
    ))
    .push_bind(format!(" {phrase} "))
    .push(") > 0)");
}

/// PostgreSQL: the phrase in the word vector, which is `NULL` until an old email is
/// filed. Only a negated term needs that read as false (`NOT NULL` is not true); the
/// plain test is what the planner can answer from the GIN index.
fn postgres_words(
    sql: &mut QueryBuilder<Postgres>,
    columns: &Columns,
    negated: bool,
    phrase: String,
) {
    let t = columns.table;
    let test = format!("{t}.words @@ ");
    let query = phrase_query_literal(&phrase);
    if negated {
        sql.push(format_args!("coalesce({test}"))
            .push_bind(query)
            .push("::tsquery, false)");
    } else {
        sql.push(test).push_bind(query).push("::tsquery");
    }
}

push_search!(push_sqlite_search, Sqlite, "instr", sqlite_words);
push_search!(push_postgres_search, Postgres, "strpos", postgres_words);
