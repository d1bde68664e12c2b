//! The reading view's actions, as POST forms (with the session's CSRF token, checked
//! before any handler runs): flags, delete forever, always show images from a sender.

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use serde::Deserialize;

use super::access::{self, Viewer};
use super::error::WebmailError;
use super::form::FormInput;
use super::listing::ListQuery;
use super::state::WebmailState;
use super::view::parse_id;
use crate::email::FlagChange;
use crate::inbound;

pub fn router() -> Router<WebmailState> {
    Router::new()
        .route("/view/{id}/flags", post(flags))
        .route("/view/{id}/delete", post(delete))
        .route("/view/{id}/images", post(always_show_images))
}

#[derive(Deserialize)]
struct FlagAction {
    action: String,
}

async fn flags(
    State(state): State<WebmailState>,
    viewer: Viewer,
    Path(id): Path<String>,
    ListQuery(view): ListQuery,
    FormInput(form): FormInput<FlagAction>,
) -> Result<Response, WebmailError> {
    let set = |read, starred, trashed| FlagChange {
        read,
        starred,
        trashed,
    };
    let change = match form.action.as_str() {
        "read" => set(Some(true), None, None),
        "unread" => set(Some(false), None, None),
        "star" => set(None, Some(true), None),
        "unstar" => set(None, Some(false), None),
        "trash" => set(None, None, Some(true)),
        "restore" => set(None, None, Some(false)),
        _ => return Err(WebmailError::BadRequest("Unknown action.".into())),
    };
    let readable = access::open(&state, &viewer, parse_id(&id)?, view.mailbox.as_deref()).await?;
    access::set_flags(&state, &readable, change).await?;
    // Marking unread or trashing ends the reading: back to the list.
    let back_to_list = matches!(form.action.as_str(), "unread" | "trash");
    let target = if back_to_list {
        format!("/{}", view.context())
    } else {
        format!("/view/{id}{}", view.context())
    };
    Ok(Redirect::to(&target).into_response())
}

#[derive(Deserialize)]
struct Confirm {
    confirm: Option<String>,
}

async fn delete(
    State(state): State<WebmailState>,
    viewer: Viewer,
    Path(id): Path<String>,
    ListQuery(view): ListQuery,
    FormInput(form): FormInput<Confirm>,
) -> Result<Response, WebmailError> {
    if form.confirm.as_deref() != Some("yes") {
        return Err(WebmailError::BadRequest(
            "Deleting forever needs a confirmation.".into(),
        ));
    }
    let readable = access::open(&state, &viewer, parse_id(&id)?, view.mailbox.as_deref()).await?;
    if !readable.wholly_owned && !viewer.is_admin() {
        return Err(WebmailError::BadRequest(
            "Other mailboxes hold this message too: move it to the trash instead.".into(),
        ));
    }
    state
        .store
        .mail_state()
        .delete(&[readable.email.id])
        .await?;
    state.counts.changed();
    Ok(Redirect::to(&format!("/{}", view.context())).into_response())
}

async fn always_show_images(
    State(state): State<WebmailState>,
    viewer: Viewer,
    Path(id): Path<String>,
    ListQuery(view): ListQuery,
) -> Result<Response, WebmailError> {
    let readable = access::open(&state, &viewer, parse_id(&id)?, view.mailbox.as_deref()).await?;
    if let Some(sender) = inbound::message_of(&readable.email).sender_address() {
        state
            .sessions
            .show_images_from(viewer.user.id, &sender)
            .await?;
    }
    Ok(Redirect::to(&format!("/view/{id}{}", view.context())).into_response())
}
