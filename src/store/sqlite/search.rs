//! Listing and subject search on SQLite: newest received first, a literal case-folded
//! substring of the subject, through the FTS5 trigram index.
//!
//! A subject of 3+ characters first asks the index for up to `RARE_MATCHES` matches
//! (one pass over the index). Fewer than that: only those emails (and the few not yet
//! indexed) are sorted. More: the match is common, and walking the newest emails through
//! an index that carries the subject fills the page after a few of them, so at most the
//! newest `WALK_BUDGET` are walked; if the page is still not full (the matches are old),
//! all the index's matches are sorted instead.
//!
//! Words of a `q=` search are split the same way, through the word index: a word with
//! fewer matches drives the plan (its matches are sorted); when every word is common,
//! the same bounded walk tests each email's membership in the matches.

use sqlx::{QueryBuilder, Sqlite};

use super::SqliteStore;
use crate::email::StoredEmail;
use crate::store::mail_state::MAILBOX_FLAGS;
use crate::store::search_sql::{Columns, fts_words, push_sqlite_search, wanted_phrases};
use crate::store::{EMAIL_COLUMNS, EmailQuery, StoreError, stored_email};

/// A phrase with fewer index matches than this is listed from its matches alone.
const RARE_MATCHES: usize = 500;
/// How many of the newest emails a common phrase's walk reads before giving up on it.
const WALK_BUDGET: i64 = 20_000;
/// The emails not in the trigram index yet (see `INDEX_SUBJECTS_EVERY`).
const UNINDEXED: &str =
    "SELECT rowid FROM emails WHERE rowid > (SELECT indexed_up_to FROM subject_index_progress)";

/// Where the emails of a page are looked for.
enum Candidates {
    /// Every email, newest first (no subject filter, or one too short for trigrams).
    All,
    /// The emails received since this instant, newest first.
    Since(i64),
    /// These index matches (a JSON array of rowids) and the emails past the index's mark,
    /// both read by one statement: a bulk index committing between two would move emails
    /// out of the unindexed ones that the matches, read before it, do not hold.
    Rowids { rowids: String, indexed_up_to: i64 },
    /// Every index match of the phrase, and the unindexed emails.
    Phrase(String),
}

impl SqliteStore {
    pub(super) async fn list(&self, query: &EmailQuery) -> Result<Vec<StoredEmail>, StoreError> {
        if let Some(mailbox) = &query.mailbox {
            return self.mailbox_page(query, mailbox).await;
        }
        if let Some(search) = &query.search {
            return self.search_page(query, search).await;
        }
        let subject = query.subject.as_deref().filter(|s| uses_trigram_index(s));
        let Some(subject) = subject else {
            return self.page(query, Candidates::All, true).await;
        };
        let phrase = fts_phrase(subject);
        let (indexed_up_to, rowids): (i64, String) = sqlx::query_as(
            "SELECT indexed_up_to, (SELECT json_group_array(rowid) FROM \
             (SELECT rowid FROM emails_subject_trigrams WHERE emails_subject_trigrams MATCH ? LIMIT ?)) \
             FROM subject_index_progress",
        )
        .bind(&phrase)
        .bind(RARE_MATCHES as i64)
        .fetch_one(&self.readers)
        .await?;
        let matches: Vec<i64> = serde_json::from_str(&rowids)
            .map_err(|e| StoreError::Database(sqlx::Error::Decode(Box::new(e))))?;
        if matches.len() < RARE_MATCHES {
            let candidates = Candidates::Rowids {
                rowids,
                indexed_up_to,
            };
            return self.page(query, candidates, true).await;
        }
        let Some(page) = self.walk_newest(query).await? else {
            return self.page(query, Candidates::Phrase(phrase), true).await;
        };
        Ok(page)
    }

    /// A `q=` search. When each of its words has at least `RARE_MATCHES` matches in the
    /// word index, the newest emails are walked testing each one's membership in the
    /// matches (`+rowid IN`), stopping at the page's end; a rarer word drives the plan
    /// instead: its matches alone are read and sorted (a walk would be a full scan).
    async fn search_page(
        &self,
        query: &EmailQuery,
        search: &crate::search::Query,
    ) -> Result<Vec<StoredEmail>, StoreError> {
        let phrases = wanted_phrases(search);
        if phrases.is_empty() {
            // No word (flags, sender …): the newest-first walk is the plan.
            return self.page(query, Candidates::All, true).await;
        }
        let mut common = true;
        for phrase in &phrases {
            let matches: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM (SELECT 1 FROM emails_words \
                 WHERE emails_words MATCH ? LIMIT ?)",
            )
            .bind(fts_words(phrase))
            .bind(RARE_MATCHES as i64)
            .fetch_one(&self.readers)
            .await?;
            common = matches >= RARE_MATCHES as i64;
            if !common {
                break;
            }
        }
        if common && let Some(page) = self.walk_newest(query).await? {
            return Ok(page);
        }
        self.page(query, Candidates::All, true).await
    }

    /// The page found among about the newest `WALK_BUDGET` emails, with word terms only
    /// tested; `None` when they do not fill it (the matches are old, or there are no
    /// emails).
    async fn walk_newest(
        &self,
        query: &EmailQuery,
    ) -> Result<Option<Vec<StoredEmail>>, StoreError> {
        // The walk's bound: the receive time of about the `WALK_BUDGET`th newest email,
        // found by rowid (the order emails were stored in) rather than by walking.
        let since: Option<i64> = sqlx::query_scalar(
            "SELECT received_at FROM emails \
             WHERE rowid >= (SELECT max(rowid) FROM emails) - ? ORDER BY rowid LIMIT 1",
        )
        .bind(WALK_BUDGET)
        .fetch_optional(&self.readers)
        .await?;
        let Some(since) = since else {
            return Ok(None);
        };
        let page = self.page(query, Candidates::Since(since), false).await?;
        Ok((page.len() == query.limit as usize).then_some(page))
    }

    /// One page from `candidates`, filtered and sorted. The page is picked by rowid first,
    /// so only its rows are read with their documents. `words_drive`: see `Columns`.
    async fn page(
        &self,
        query: &EmailQuery,
        candidates: Candidates,
        words_drive: bool,
    ) -> Result<Vec<StoredEmail>, StoreError> {
        let mut sql = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {EMAIL_COLUMNS} FROM emails WHERE rowid IN (SELECT emails.rowid FROM "
        ));
        // CROSS JOIN keeps the candidates the outer loop: only their rows are read.
        match candidates {
            // Newest first through an index that carries the subject: a short subject is
            // tested without reading rows, and the walk stops when the page is full.
            Candidates::All => sql.push("emails WHERE 1 = 1"),
            Candidates::Since(since) => sql.push("emails WHERE received_at >= ").push_bind(since),
            Candidates::Rowids {
                rowids,
                indexed_up_to,
            } => {
                sql.push("(SELECT value AS rowid FROM json_each(")
                    .push_bind(rowids)
                    .push(") UNION ALL SELECT rowid FROM emails WHERE rowid > ")
                    .push_bind(indexed_up_to);
                and_emails(&mut sql)
            }
            Candidates::Phrase(phrase) => {
                sql.push(
                    "(SELECT rowid FROM emails_subject_trigrams \
                     WHERE emails_subject_trigrams MATCH ",
                )
                .push_bind(phrase)
                .push(" UNION ALL ")
                .push(UNINDEXED);
                and_emails(&mut sql)
            }
        };
        push_filters(&mut sql, query, "emails");
        if let Some(search) = &query.search {
            let columns = Columns {
                table: "emails",
                read: "emails.processed",
                starred: "emails.starred",
                trashed: "emails.trashed",
                words_drive,
            };
            push_sqlite_search(&mut sql, search, &columns);
        }
        push_flags(
            &mut sql,
            query,
            ["emails.processed", "emails.starred", "emails.trashed"],
        );
        push_cursors(&mut sql, query, "emails.received_at", "emails.id");
        let direction = query.direction();
        sql.push(format_args!(
            " ORDER BY emails.received_at {direction}, emails.id {direction} LIMIT "
        ))
        .push_bind(i64::from(query.limit))
        .push(" OFFSET ")
        .push_bind(i64::try_from(query.skip).unwrap_or(i64::MAX))
        .push(format_args!(
            ") ORDER BY received_at {direction}, id {direction}"
        ));
        let rows = sql.build().fetch_all(&self.readers).await?;
        rows.iter().map(stored_email).collect()
    }
}

impl SqliteStore {
    /// One page of a mailbox, newest first, through its own index; the flags shown and
    /// filtered are that mailbox's.
    async fn mailbox_page(
        &self,
        query: &EmailQuery,
        mailbox: &str,
    ) -> Result<Vec<StoredEmail>, StoreError> {
        let mut sql = QueryBuilder::<Sqlite>::new(format!(
            "SELECT e.id, e.received_at, {MAILBOX_FLAGS}, e.provider, e.document \
             FROM mailbox_emails m CROSS JOIN emails e ON e.id = m.email_id WHERE m.mailbox = "
        ));
        sql.push_bind(mailbox.to_owned());
        push_flags(&mut sql, query, ["m.is_read", "m.starred", "m.trashed"]);
        push_filters(&mut sql, query, "e");
        if let Some(search) = &query.search {
            let columns = Columns {
                table: "e",
                read: "m.is_read",
                starred: "m.starred",
                trashed: "m.trashed",
                // The mailbox's index drives: each email is looked up by id.
                words_drive: false,
            };
            push_sqlite_search(&mut sql, search, &columns);
        }
        push_cursors(&mut sql, query, "m.received_at", "m.email_id");
        let direction = query.direction();
        sql.push(format_args!(
            " ORDER BY m.received_at {direction}, m.email_id {direction} LIMIT "
        ))
        .push_bind(i64::from(query.limit))
        .push(" OFFSET ")
        .push_bind(i64::try_from(query.skip).unwrap_or(i64::MAX));
        let rows = sql.build().fetch_all(&self.readers).await?;
        rows.iter().map(stored_email).collect()
    }
}

/// The sender and subject filters, on the `emails` row named `table`.
fn push_filters(sql: &mut QueryBuilder<Sqlite>, query: &EmailQuery, table: &str) {
    if let Some(sender) = &query.from_email {
        sql.push(format_args!(" AND {table}.from_email = "))
            .push_bind(sender.clone());
    }
    if let Some(subject) = &query.subject {
        // The literal check itself; behind the index it only rechecks the candidates.
        sql.push(format_args!(" AND instr({table}.subject_folded, "))
            .push_bind(subject.clone())
            .push(") > 0");
    }
}

/// The flag filters (read, starred, trashed) on these columns, as literals: a partial
/// index (`emails_unread_newest_first`) serves a query only if its own `WHERE` is
/// written in the query, which a bound value is not.
fn push_flags(sql: &mut QueryBuilder<Sqlite>, query: &EmailQuery, columns: [&str; 3]) {
    for (column, wanted) in columns
        .into_iter()
        .zip([query.read, query.starred, query.trashed])
    {
        if let Some(wanted) = wanted {
            let not = if wanted { "" } else { "NOT " };
            sql.push(format_args!(" AND {not}{column}"));
        }
    }
}

/// Keyset pagination: rows past (`after`) or before (`before`) the cursors in the
/// newest-first order (row value comparisons, which the indexes answer as ranges).
fn push_cursors(sql: &mut QueryBuilder<Sqlite>, query: &EmailQuery, at: &str, id: &str) {
    for (cursor, comparison) in [(&query.after, "<"), (&query.before, ">")] {
        if let Some(cursor) = cursor {
            sql.push(format_args!(" AND ({at}, {id}) {comparison} ("))
                .push_bind(cursor.received_at.timestamp_micros())
                .push(", ")
                .push_bind(cursor.id.to_string())
                .push(")");
        }
    }
}

/// Closes a subquery of candidate rowids and joins them to their rows.
fn and_emails(sql: &mut QueryBuilder<Sqlite>) -> &mut QueryBuilder<Sqlite> {
    sql.push(
        ") AS candidates CROSS JOIN emails ON emails.rowid = candidates.rowid \
             WHERE 1 = 1",
    )
}

/// Trigrams need 3 characters: shorter queries walk the newest-first index (which carries
/// the subject), testing every email until the page is full: a scan when nothing matches.
fn uses_trigram_index(subject: &str) -> bool {
    subject.chars().count() >= 3
}

/// The subject as one FTS5 phrase: a quoted string, so no character is query syntax.
fn fts_phrase(subject: &str) -> String {
    format!("\"{}\"", subject.replace('"', "\"\""))
}
