//! `FormInput`: a posted form, whose rejection (a field missing or malformed) gets the
//! friendly error page rather than a bare 422.

use axum::extract::{Form, FromRequest, Request};
use serde::de::DeserializeOwned;

use super::error::WebmailError;

pub struct FormInput<T>(pub T);

impl<S, T> FromRequest<S> for FormInput<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = WebmailError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Form(value) = Form::<T>::from_request(request, state)
            .await
            .map_err(|_| WebmailError::BadRequest("The form was incomplete.".into()))?;
        Ok(Self(value))
    }
}
