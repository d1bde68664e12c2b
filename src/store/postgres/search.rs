//! Listing and search on PostgreSQL: newest received first, through `emails_newest_first`
//! (or a mailbox's own index, or the unread ones' partial indexes), the planner choosing.
//!
//! One choice it gets wrong: a page of a rare word. It estimates any word outside the
//! most common at 0.5 % of emails and walks newest first, testing each email's words: a
//! full scan for a word in 5 emails. So outside a mailbox, each word of a search is first
//! looked up through the GIN index, up to `RARE_MATCHES` emails; when one has fewer, the
//! page is picked among those emails alone (`id = ANY`), else the walk stays the plan.
//! A word the statistics already count as common skips that lookup.

use sqlx::{Postgres, QueryBuilder};

use super::PostgresStore;
use super::vector::phrase_query_literal;
use crate::email::StoredEmail;
use crate::store::mail_state::MAILBOX_FLAGS;
use crate::store::search_sql::{Columns, push_postgres_search, wanted_phrases};
use crate::store::{EMAIL_COLUMNS, EmailQuery, StoreError, stored_email, to_micros};

/// A word with fewer index matches than this is listed from its matches alone.
const RARE_MATCHES: i64 = 500;

impl PostgresStore {
    pub(super) async fn list(&self, query: &EmailQuery) -> Result<Vec<StoredEmail>, StoreError> {
        let rare = match (&query.mailbox, &query.search) {
            (None, Some(search)) => self.rarest_word_matches(search).await?,
            _ => None,
        };
        if rare.as_ref().is_some_and(Vec::is_empty) {
            return Ok(Vec::new()); // a word every email must have is in none
        }
        let (mut sql, flags, [at, id]) = select(query);
        if let Some(ids) = rare {
            sql.push(" AND e.id = ANY(").push_bind(ids).push(")");
        }
        for (column, wanted) in flags
            .into_iter()
            .zip([query.read, query.starred, query.trashed])
        {
            // Literals, not bound values: the planner proves a partial index's predicate
            // (`NOT processed AND NOT trashed`) only from literals.
            if let Some(wanted) = wanted {
                let not = if wanted { "" } else { "NOT " };
                sql.push(format_args!(" AND {not}{column}"));
            }
        }
        push_filters(&mut sql, query);
        if let Some(search) = &query.search {
            let columns = Columns {
                table: "e",
                read: flags[0],
                starred: flags[1],
                trashed: flags[2],
                words_drive: true,
            };
            push_postgres_search(&mut sql, search, &columns);
        }
        for (cursor, comparison) in [(&query.after, "<"), (&query.before, ">")] {
            if let Some(cursor) = cursor {
                sql.push(format_args!(" AND ({at}, {id}) {comparison} ("))
                    .push_bind(to_micros(cursor.received_at))
                    .push(", ")
                    .push_bind(cursor.id.to_string())
                    .push(")");
            }
        }
        let direction = query.direction();
        sql.push(format_args!(
            " ORDER BY {at} {direction}, {id} {direction} LIMIT "
        ))
        .push_bind(i64::from(query.limit))
        .push(" OFFSET ")
        .push_bind(i64::try_from(query.skip).unwrap_or(i64::MAX));
        let rows = sql.build().fetch_all(&self.pool).await?;
        rows.iter().map(stored_email).collect()
    }

    /// The ids of the emails with the rarest of the search's words, when it has fewer
    /// than `RARE_MATCHES`; `None` when every word is common (or there is none).
    async fn rarest_word_matches(
        &self,
        search: &crate::search::Query,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let mut rarest: Option<Vec<String>> = None;
        for phrase in wanted_phrases(search) {
            if self.known_common(&phrase).await? {
                continue;
            }
            // Through the GIN index: for a common word the planner would rather read
            // emails until the 500th match (27 ms for a word in 6 % of 1,000,000), where
            // the index's bitmap answers in a few.
            let mut tx = self.pool.begin().await?;
            sqlx::query("SET LOCAL enable_seqscan = off")
                .execute(&mut *tx)
                .await?;
            let ids: Vec<String> =
                sqlx::query_scalar("SELECT id FROM emails WHERE words @@ $1::tsquery LIMIT $2")
                    .bind(phrase_query_literal(&phrase))
                    .bind(RARE_MATCHES)
                    .fetch_all(&mut *tx)
                    .await?;
            tx.commit().await?;
            let rarer = rarest.as_ref().is_none_or(|r| ids.len() < r.len());
            if (ids.len() as i64) < RARE_MATCHES && rarer {
                rarest = Some(ids);
            }
        }
        Ok(rarest)
    }

    /// Whether the table's statistics count `phrase`, a single word, in more emails
    /// than `RARE_MATCHES`. The walk finds a page of such a word at once, and its lookup
    /// would only read the index's bitmap of every match (89 ms for a word in 6 % of
    /// 1,000,000 emails). Without statistics, or for a phrase, the lookup decides.
    async fn known_common(&self, phrase: &str) -> Result<bool, StoreError> {
        if phrase.contains(char::is_whitespace) {
            return Ok(false);
        }
        let matches: Option<f64> = sqlx::query_scalar(
            "SELECT (f.freq * c.reltuples)::float8 FROM pg_stats s \
             CROSS JOIN LATERAL unnest(s.most_common_elems::text::text[], \
                                       s.most_common_elem_freqs) AS f(lexeme, freq) \
             JOIN pg_class c ON c.oid = 'emails'::regclass \
             WHERE s.schemaname = current_schema() AND s.tablename = 'emails' \
               AND s.attname = 'words' \
               AND f.lexeme = $1",
        )
        .bind(phrase)
        .fetch_optional(&self.pool)
        .await?
        .flatten();
        Ok(matches.is_some_and(|matches| matches >= RARE_MATCHES as f64))
    }
}

/// The page's `SELECT … WHERE TRUE`, the flag columns it filters and shows (a mailbox's,
/// or the email's summary), and the columns of its order.
fn select(query: &EmailQuery) -> (QueryBuilder<Postgres>, [&'static str; 3], [&'static str; 2]) {
    match &query.mailbox {
        // A mailbox lists through its own index, with its own flags.
        Some(mailbox) => {
            let mut sql = QueryBuilder::<Postgres>::new(format!(
                "SELECT e.id, e.received_at, {MAILBOX_FLAGS}, e.provider, e.document \
                 FROM mailbox_emails m JOIN emails e ON e.id = m.email_id WHERE m.mailbox = "
            ));
            sql.push_bind(mailbox.clone());
            let flags = ["m.is_read", "m.starred", "m.trashed"];
            (sql, flags, ["m.received_at", "m.email_id"])
        }
        None => {
            let sql = QueryBuilder::<Postgres>::new(format!(
                "SELECT {EMAIL_COLUMNS} FROM emails e WHERE TRUE"
            ));
            let flags = ["e.processed", "e.starred", "e.trashed"];
            (sql, flags, ["e.received_at", "e.id"])
        }
    }
}

/// The sender and subject filters.
fn push_filters(sql: &mut QueryBuilder<Postgres>, query: &EmailQuery) {
    if let Some(sender) = &query.from_email {
        // The index is on the digest (B-tree entries are bounded); the full value decides.
        sql.push(" AND md5(e.from_email) = md5(")
            .push_bind(sender.clone())
            .push(") AND e.from_email = ")
            .push_bind(sender.clone());
    }
    if let Some(subject) = &query.subject {
        // A literal LIKE pattern: the pg_trgm GIN index serves it for 3+ characters.
        sql.push(" AND e.subject_folded LIKE ")
            .push_bind(like_pattern(subject));
    }
}

/// `%subject%` with LIKE's wildcards and its escape character taken literally.
fn like_pattern(subject: &str) -> String {
    let mut pattern = String::with_capacity(subject.len() + 2);
    pattern.push('%');
    for c in subject.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}
