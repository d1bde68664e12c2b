//! `GET /emails` and `GET /emails/<id>`.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::presenter::{email_json, list_item_json};
use crate::api::AppState;
use crate::email::{EmailId, search_key};
use crate::error::ApiError;
use crate::security::auth::Authenticated;
use crate::store::EmailQuery;

const DEFAULT_LIMIT: i64 = 10;
const MAX_LIMIT: i64 = 100;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/emails", get(list))
        .route("/emails/{id}", get(show))
}

/// The query string as sent; validated into an `EmailQuery` by `parse`.
#[derive(Debug, Default, Deserialize)]
pub struct ListParams {
    limit: Option<String>,
    skip: Option<String>,
    from_email: Option<String>,
    subject: Option<String>,
}

impl ListParams {
    /// `limit` is clamped to 1..=100; `skip` must be a whole number ≥ 0.
    pub fn parse(self) -> Result<EmailQuery, ApiError> {
        let limit = match self.limit.as_deref().map(str::trim) {
            None | Some("") => DEFAULT_LIMIT,
            Some(text) => text.parse::<i64>().map_err(|_| {
                ApiError::bad_request("Invalid limit", "limit must be a whole number (1 to 100)")
            })?,
        };
        let skip = match self.skip.as_deref().map(str::trim) {
            None | Some("") => 0,
            Some(text) => text.parse::<u64>().map_err(|_| {
                ApiError::bad_request("Invalid skip", "skip must be a whole number, 0 or more")
            })?,
        };
        // The subject is a literal substring, spaces included; the address is trimmed.
        let filter = |value: Option<&str>| value.map(search_key).filter(|v| !v.is_empty());
        Ok(EmailQuery {
            limit: limit.clamp(1, MAX_LIMIT) as u32,
            skip,
            from_email: filter(self.from_email.as_deref().map(str::trim)),
            subject: filter(self.subject.as_deref()),
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
        ("limit" = Option<u32>, Query, description = "Page size, clamped to 1..100 (default 10)"),
        ("skip" = Option<u64>, Query, description = "Emails to skip (default 0)"),
        ("from_email" = Option<String>, Query, description = "Sender address, case-insensitive"),
        ("subject" = Option<String>, Query, description = "Case-insensitive substring of the subject, taken literally"),
    ),
    responses(
        (status = 200, description = "One page", body = super::docs::schemas::EmailList),
        (status = 400, description = "`limit` or `skip` is not a whole number", body = super::docs::ErrorBody),
    )
)]
async fn list(
    _: Authenticated,
    State(state): State<AppState>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let query = params?.0.parse()?;
    let emails = state.store.list_emails(&query).await?;
    let cut_above = state.settings.list_body_max_bytes;
    let emails: Vec<Value> = emails
        .into_iter()
        .map(|email| list_item_json(email, cut_above))
        .collect();
    Ok(Json(
        json!({ "success": true, "count": emails.len(), "emails": emails }),
    ))
}

/// One stored email.
#[utoipa::path(
    get,
    path = "/emails/{id}",
    tag = "emails",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The email id: 24 hexadecimal characters")),
    responses(
        (status = 200, description = "The email", body = super::docs::schemas::EmailEnvelope),
        (status = 400, description = "Malformed id", body = super::docs::ErrorBody),
        (status = 404, description = "No such email", body = super::docs::ErrorBody),
    )
)]
async fn show(
    _: Authenticated,
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&id?.0)?;
    let email = state
        .store
        .email(id)
        .await?
        .ok_or(ApiError::NotFound("Email not found"))?;
    Ok(Json(json!({ "success": true, "email": email_json(email) })))
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
    fn huge_skips_are_accepted() {
        assert_eq!(
            params(None, Some("18446744073709551615"))
                .parse()
                .unwrap()
                .skip,
            u64::MAX
        );
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
