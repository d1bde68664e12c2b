//! Changing stored mail (DESIGN §7): `PATCH /emails/<id>` (flags), `DELETE /emails/<id>`,
//! `POST /emails/bulk`, and `GET /mailboxes`.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::emails::{email_view, parse_id};
use super::presenter::EmailEnvelope;
use crate::api::AppState;
use crate::email::{EmailId, FlagChange, mailbox_address};
use crate::error::ApiError;
use crate::security::auth::Authenticated;

/// Ids in one `POST /emails/bulk`.
pub const MAX_BULK_IDS: usize = 1_000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/mailboxes", get(mailboxes))
        .route("/emails/bulk", post(bulk))
}

/// The flags to set; any subset, at least one. `read` is another name for `processed`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
pub struct FlagsBody {
    /// Read (the old service's name for it).
    processed: Option<bool>,
    /// Read; the same as `processed` (give one of them).
    read: Option<bool>,
    starred: Option<bool>,
    /// In the trash: hidden from lists unless `trashed=true` is asked for.
    trashed: Option<bool>,
}

impl FlagsBody {
    fn change(self) -> Result<FlagChange, ApiError> {
        if self.processed.is_some() && self.read.is_some() && self.processed != self.read {
            return Err(ApiError::bad_request(
                "Invalid flags",
                "`processed` and `read` are the same flag: give one of them",
            ));
        }
        let change = FlagChange {
            read: self.read.or(self.processed),
            starred: self.starred,
            trashed: self.trashed,
        };
        if change.is_empty() {
            return Err(ApiError::bad_request(
                "Invalid flags",
                "give at least one of processed (or read), starred, trashed",
            ));
        }
        Ok(change)
    }
}

/// `?mailbox=`: one mailbox of the email rather than all of them.
#[derive(Debug, Default, Deserialize)]
pub struct MailboxParam {
    mailbox: Option<String>,
}

impl MailboxParam {
    pub fn parse(self) -> Result<Option<String>, ApiError> {
        parse_mailbox(self.mailbox.as_deref())
    }
}

/// A mailbox named by a client: an address, normalised like the ones stored.
pub fn parse_mailbox(text: Option<&str>) -> Result<Option<String>, ApiError> {
    match text.map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => mailbox_address(text).map(Some).ok_or_else(|| {
            ApiError::bad_request("Invalid mailbox", "a mailbox is an email address")
        }),
    }
}

/// A JSON body, with a clear 400 for what does not parse.
fn json_body<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> Result<T, ApiError> {
    let body =
        body.map_err(|_| ApiError::bad_request("Invalid body", "the body did not arrive"))?;
    serde_json::from_slice(&body)
        .map_err(|error| ApiError::bad_request("Invalid JSON", error.to_string()))
}

/// Sets flags of one email, in every mailbox it is in or in `?mailbox=` alone, and
/// answers the email as `GET /emails/<id>` then shows it.
#[utoipa::path(
    patch,
    path = "/emails/{id}",
    tag = "emails",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "The email id: 24 hexadecimal characters", pattern = "^[0-9a-fA-F]{24}$"),
        ("mailbox" = Option<String>, Query, format = Email, description = "Change the flags in this mailbox only"),
    ),
    request_body = FlagsBody,
    responses(
        (status = 200, description = "The email, changed", body = EmailEnvelope),
        (status = 400, description = "Malformed id, mailbox or body", body = super::docs::ErrorBody),
        (status = 404, description = "No such email (in that mailbox)", body = super::docs::ErrorBody),
    )
)]
pub async fn patch(
    _: Authenticated,
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    params: Result<Query<MailboxParam>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<EmailEnvelope>, ApiError> {
    let id = parse_id(&id?.0)?;
    let mailbox = params?.0.parse()?;
    let change = json_body::<FlagsBody>(body)?.change()?;
    let found = state
        .store
        .mail_state()
        .set_flags(&[id], mailbox.as_deref(), change)
        .await?;
    if found == 0 {
        return Err(ApiError::NotFound("Email not found"));
    }
    email_view(&state, id, mailbox.as_deref()).await
}

/// `DELETE /emails/<id>`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Deleted {
    success: bool,
    #[schema(example = "Email deleted")]
    message: &'static str,
}

/// Deletes the email, its mailbox entries, and the attachment bytes no other email
/// shares. A later redelivery of it is stored again, as new mail.
#[utoipa::path(
    delete,
    path = "/emails/{id}",
    tag = "emails",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The email id: 24 hexadecimal characters", pattern = "^[0-9a-fA-F]{24}$")),
    responses(
        (status = 200, description = "Deleted", body = Deleted),
        (status = 400, description = "Malformed id", body = super::docs::ErrorBody),
        (status = 404, description = "No such email", body = super::docs::ErrorBody),
    )
)]
pub async fn delete(
    _: Authenticated,
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Deleted>, ApiError> {
    let id = parse_id(&id?.0)?;
    if state.store.mail_state().delete(&[id]).await? == 0 {
        return Err(ApiError::NotFound("Email not found"));
    }
    tracing::info!(email_id = %id, "email deleted");
    Ok(Json(Deleted {
        success: true,
        message: "Email deleted",
    }))
}

/// One change for many emails: `set` flags, or `delete` them.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkBody {
    /// At most 1,000 ids.
    #[schema(max_items = 1000)]
    ids: Vec<String>,
    set: Option<FlagsBody>,
    /// `true` deletes the emails (as `DELETE /emails/<id>` does each).
    delete: Option<bool>,
    /// With `set`: change the flags in this mailbox only.
    mailbox: Option<String>,
}

/// `POST /emails/bulk`'s answer: how many of the ids were found and changed.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkDone {
    success: bool,
    /// With `set`: emails found (in the mailbox, when named).
    #[serde(skip_serializing_if = "Option::is_none")]
    updated: Option<u64>,
    /// With `delete`: emails deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    deleted: Option<u64>,
}

/// Sets flags on, or deletes, up to 1,000 emails at once; unknown ids are skipped.
#[utoipa::path(
    post,
    path = "/emails/bulk",
    tag = "emails",
    security(("bearer" = [])),
    request_body = BulkBody,
    responses(
        (status = 200, description = "Done", body = BulkDone),
        (status = 400, description = "Malformed body or id, too many ids, or neither `set` nor `delete`", body = super::docs::ErrorBody),
    )
)]
pub async fn bulk(
    _: Authenticated,
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<BulkDone>, ApiError> {
    let body: BulkBody = json_body(body)?;
    if body.ids.len() > MAX_BULK_IDS {
        return Err(ApiError::bad_request(
            "Too many ids",
            format!("at most {MAX_BULK_IDS} ids per request"),
        ));
    }
    let ids = body
        .ids
        .iter()
        .map(|id| parse_id(id))
        .collect::<Result<Vec<EmailId>, _>>()?;
    let mail = state.store.mail_state();
    let done = match (body.set, body.delete) {
        (Some(set), None | Some(false)) => {
            let mailbox = parse_mailbox(body.mailbox.as_deref())?;
            let updated = mail
                .set_flags(&ids, mailbox.as_deref(), set.change()?)
                .await?;
            BulkDone {
                success: true,
                updated: Some(updated),
                deleted: None,
            }
        }
        (None, Some(true)) if body.mailbox.is_none() => BulkDone {
            success: true,
            updated: None,
            deleted: Some(mail.delete(&ids).await?),
        },
        _ => {
            return Err(ApiError::bad_request(
                "Invalid bulk request",
                "give either `set` (flags, optionally with `mailbox`) or `\"delete\": true`",
            ));
        }
    };
    Ok(Json(done))
}

/// One mailbox of `GET /mailboxes`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MailboxItem {
    #[schema(example = "ana@example.org")]
    address: String,
    /// Emails in it, trashed ones aside.
    total: u64,
    /// Of those, the unread.
    unread: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MailboxList {
    success: bool,
    /// By address.
    mailboxes: Vec<MailboxItem>,
}

/// Every mailbox (a recipient address in the `DOMINIO` domains, or any recipient when
/// `DOMINIO` is unset), with its counts.
#[utoipa::path(
    get,
    path = "/mailboxes",
    tag = "emails",
    security(("bearer" = [])),
    responses((status = 200, description = "The mailboxes", body = MailboxList))
)]
pub async fn mailboxes(
    _: Authenticated,
    State(state): State<AppState>,
) -> Result<Json<MailboxList>, ApiError> {
    let mailboxes = state.store.mail_state().mailboxes().await?;
    Ok(Json(MailboxList {
        success: true,
        mailboxes: mailboxes
            .into_iter()
            .map(|m| MailboxItem {
                address: m.address,
                total: m.total,
                unread: m.unread,
            })
            .collect(),
    }))
}

/// The per-mailbox flags of one email, as `GET /emails/<id>` adds them.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_need_one_field_and_agree_on_read() {
        let body = |json: &str| serde_json::from_str::<FlagsBody>(json).unwrap().change();
        assert!(body("{}").is_err());
        assert!(body(r#"{"processed":true,"read":false}"#).is_err());
        let change = body(r#"{"read":true,"trashed":false}"#).unwrap();
        assert_eq!(
            change,
            FlagChange {
                read: Some(true),
                starred: None,
                trashed: Some(false)
            }
        );
        assert!(serde_json::from_str::<FlagsBody>(r#"{"flagged":true}"#).is_err());
    }

    #[test]
    fn mailboxes_are_normalised_or_refused() {
        assert_eq!(
            parse_mailbox(Some(" Ana+x@Example.ORG"))
                .unwrap()
                .as_deref(),
            Some("ana@example.org")
        );
        assert_eq!(parse_mailbox(Some("")).unwrap(), None);
        assert!(parse_mailbox(Some("nobody")).is_err());
    }
}
