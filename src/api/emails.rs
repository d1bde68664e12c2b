//! `GET /emails` and `GET /emails/<id>`.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use super::mail_state::{self, MailboxParam, parse_mailbox};
use super::presenter::{EmailEnvelope, EmailList, MailboxState, email_body, list_item};
use crate::api::AppState;
use crate::email::{EmailId, search_key};
use crate::error::ApiError;
use crate::search::{Condition, Flag};
use crate::security::auth::Authenticated;
use crate::store::EmailQuery;

const DEFAULT_LIMIT: i64 = 10;
const MAX_LIMIT: i64 = 100;

pub fn router() -> Router<AppState> {
    Router::new().route("/emails", get(list)).route(
        "/emails/{id}",
        get(show)
            .patch(mail_state::patch)
            .delete(mail_state::delete),
    )
}

/// The query string as sent; validated into an `EmailQuery` by `parse`.
#[derive(Debug, Default, Deserialize)]
pub struct ListParams {
    limit: Option<String>,
    skip: Option<String>,
    from_email: Option<String>,
    subject: Option<String>,
    mailbox: Option<String>,
    processed: Option<String>,
    starred: Option<String>,
    trashed: Option<String>,
    q: Option<String>,
}

/// A flag filter: `true` or `false` (`1`/`0` too); empty or absent is no filter.
fn flag_filter(name: &'static str, text: Option<&str>) -> Result<Option<bool>, ApiError> {
    match text.map(str::trim) {
        None | Some("") => Ok(None),
        Some("true" | "1") => Ok(Some(true)),
        Some("false" | "0") => Ok(Some(false)),
        Some(_) => Err(ApiError::bad_request(
            "Invalid filter",
            format!("{name} must be true or false"),
        )),
    }
}

impl ListParams {
    /// `limit` is clamped to 1..=100; `skip` must be a whole number from 0 to 2^63 − 1
    /// (the most either engine can skip).
    pub fn parse(self) -> Result<EmailQuery, ApiError> {
        let limit = match self.limit.as_deref().map(str::trim) {
            None | Some("") => DEFAULT_LIMIT,
            Some(text) => text.parse::<i64>().map_err(|_| {
                ApiError::bad_request("Invalid limit", "limit must be a whole number (1 to 100)")
            })?,
        };
        let skip = match self.skip.as_deref().map(str::trim) {
            None | Some("") => 0,
            Some(text) => text
                .parse::<i64>()
                .ok()
                .and_then(|skip| u64::try_from(skip).ok())
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "Invalid skip",
                        "skip must be a whole number from 0 to 9223372036854775807",
                    )
                })?,
        };
        // No stored text holds U+0000 (PostgreSQL cannot), so a filter with one would be
        // dropped to nothing and match everything: refuse it instead.
        if [&self.subject, &self.from_email, &self.q]
            .iter()
            .any(|text| text.as_deref().is_some_and(|t| t.contains('\0')))
        {
            return Err(ApiError::bad_request(
                "Invalid filter",
                "subject, from_email and q cannot contain U+0000",
            ));
        }
        let search = match self.q.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(
                crate::search::parse(text)
                    .map_err(|error| ApiError::bad_request("Invalid query", error.to_string()))?,
            ),
        };
        let asks_for_trash = search.as_ref().is_some_and(|query| {
            query
                .terms
                .iter()
                .any(|term| term.condition == Condition::Is(Flag::Trashed))
        });
        let trashed = flag_filter("trashed", self.trashed.as_deref())?;
        // The subject is a literal substring, spaces included; the address is trimmed.
        let filter = |value: Option<&str>| value.map(search_key).filter(|v| !v.is_empty());
        Ok(EmailQuery {
            limit: limit.clamp(1, MAX_LIMIT) as u32,
            skip,
            from_email: filter(self.from_email.as_deref().map(str::trim)),
            subject: filter(self.subject.as_deref()),
            mailbox: parse_mailbox(self.mailbox.as_deref())?,
            read: flag_filter("processed", self.processed.as_deref())?,
            starred: flag_filter("starred", self.starred.as_deref())?,
            // Trashed mail is hidden unless asked for, here or in `q`.
            trashed: trashed.or((!asks_for_trash).then_some(false)),
            search,
            after: None,
            before: None,
        })
    }
}

/// A page of stored emails, newest received first. `text` and `html` longer than
/// `LIST_BODY_MAX_BYTES` are cut, and the item says `"truncated": true`; the whole email
/// comes from `GET /emails/<id>`.
#[utoipa::path(
    get,
    path = "/emails",
    tag = "emails",
    security(("bearer" = [])),
    params(
        ("limit" = Option<i64>, Query, description = "Page size: any whole number, clamped to 1..100 (default 10; empty is the default)"),
        ("skip" = Option<i64>, Query, minimum = 0, description = "Emails to skip (default 0; empty is the default)"),
        ("from_email" = Option<String>, Query, description = "Sender address, case-insensitive"),
        ("subject" = Option<String>, Query, description = "Case-insensitive substring of the subject, taken literally"),
        ("mailbox" = Option<String>, Query, format = Email, description = "Only this mailbox (an address; `+tag` and case are ignored); the flags shown are this mailbox's"),
        ("processed" = Option<bool>, Query, description = "Only read (`true`) or unread (`false`) emails"),
        ("starred" = Option<bool>, Query, description = "Only starred or unstarred emails"),
        ("trashed" = Option<bool>, Query, description = "`true`: only the trash; default `false`: trashed emails are hidden (unless `q` has `is:trashed`)"),
        ("q" = Option<String>, Query, description = "A search: words and `\"phrases\"` of subject, sender, recipients, body and part names (case and accents ignored), `from:` `to:` `subject:` (substrings), `mailbox:`, `has:attachment`, `is:unread|read|starred|trashed`, `before:`/`after:` (YYYY-MM-DD, UTC), `larger:`/`smaller:` (10MB, 500KB); `-` negates a term; all terms must match"),
    ),
    responses(
        (status = 200, description = "One page", body = EmailList),
        (status = 400, description = "`limit` or `skip` is not a whole number, a flag filter is not true/false, the mailbox is not an address, or `q` does not parse (`\"error\":\"Invalid query\"`, the message says where and why)", body = super::docs::ErrorBody),
    )
)]
async fn list(
    _: Authenticated,
    State(state): State<AppState>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<EmailList>, ApiError> {
    let query = params?.0.parse()?;
    let emails = state.store.list_emails(&query).await?;
    let cut_above = state.settings.list_body_max_bytes;
    let emails: Vec<_> = emails
        .into_iter()
        .map(|email| list_item(email, cut_above))
        .collect();
    Ok(Json(EmailList {
        success: true,
        count: emails.len(),
        emails,
    }))
}

/// One stored email.
#[utoipa::path(
    get,
    path = "/emails/{id}",
    tag = "emails",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "The email id: 24 hexadecimal characters", pattern = "^[0-9a-fA-F]{24}$"),
        ("mailbox" = Option<String>, Query, format = Email, description = "Show the flags of this mailbox; 404 when the email is not in it"),
    ),
    responses(
        (status = 200, description = "The email", body = EmailEnvelope),
        (status = 400, description = "Malformed id", body = super::docs::ErrorBody),
        (status = 404, description = "No such email", body = super::docs::ErrorBody),
    )
)]
async fn show(
    _: Authenticated,
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    params: Result<Query<MailboxParam>, QueryRejection>,
) -> Result<Json<EmailEnvelope>, ApiError> {
    let id = parse_id(&id?.0)?;
    let mailbox = params?.0.parse()?;
    email_view(&state, id, mailbox.as_deref()).await
}

/// `{"success":true,"email":{…}}`: the email with its flags (those of `mailbox`, when
/// named) and, in `mailboxes`, the flags of each mailbox it is in.
pub async fn email_view(
    state: &AppState,
    id: EmailId,
    mailbox: Option<&str>,
) -> Result<Json<EmailEnvelope>, ApiError> {
    let mail = state.store.mail_state();
    let email = match mailbox {
        Some(mailbox) => mail.email_in(id, mailbox).await?,
        None => state.store.email(id).await?,
    }
    .ok_or(ApiError::NotFound("Email not found"))?;
    let mut email = email_body(email);
    let mailboxes = mail.mailboxes_of(id).await?;
    email.mailboxes = Some(mailboxes.iter().map(MailboxState::from).collect());
    Ok(Json(EmailEnvelope {
        success: true,
        email,
    }))
}

pub fn parse_id(text: &str) -> Result<EmailId, ApiError> {
    text.parse().map_err(|_| {
        ApiError::bad_request(
            "Invalid email id",
            "an email id is 24 hexadecimal characters",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(limit: Option<&str>, skip: Option<&str>) -> ListParams {
        ListParams {
            limit: limit.map(str::to_owned),
            skip: skip.map(str::to_owned),
            ..ListParams::default()
        }
    }

    #[test]
    fn limit_defaults_to_ten_and_is_clamped() {
        assert_eq!(params(None, None).parse().unwrap().limit, 10);
        assert_eq!(params(Some("0"), None).parse().unwrap().limit, 1);
        assert_eq!(params(Some("-5"), None).parse().unwrap().limit, 1);
        assert_eq!(params(Some("1000000"), None).parse().unwrap().limit, 100);
    }

    #[test]
    fn bad_numbers_are_clean_errors() {
        for (limit, skip) in [
            (Some("ten"), None),
            (None, Some("-1")),
            (None, Some("1e3")),
            (Some("99999999999999999999"), None),
        ] {
            let error = params(limit, skip).parse().unwrap_err();
            assert_eq!(error.status(), axum::http::StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn skips_up_to_what_a_database_can_skip_are_accepted() {
        let largest = params(None, Some("9223372036854775807")).parse().unwrap();
        assert_eq!(largest.skip, i64::MAX as u64);
        assert!(params(None, Some("9223372036854775808")).parse().is_err());
    }

    #[test]
    fn filters_are_folded() {
        let query = ListParams {
            from_email: Some(" Ana@Example.ORG ".into()),
            subject: Some("FACTURA".into()),
            ..ListParams::default()
        }
        .parse()
        .unwrap();
        assert_eq!(query.from_email.as_deref(), Some("ana@example.org"));
        assert_eq!(query.subject.as_deref(), Some("factura"));
    }
}
