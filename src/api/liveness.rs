//! `GET /healthz` and `GET /readyz`: probes for systemd, proxies and monitors.
//!
//! Neither needs a key, and neither says more than "up" or "ready": no version,
//! no engine, no error detail (that goes to the log).

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::api::AppState;
use crate::error::ApiError;
use crate::store::Store;
use crate::telemetry::error_chain;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(live))
        .route("/readyz", get(ready))
}

/// The body of both probes.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Probe {
    /// `ok` (live) or `ready`.
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Answers while the process serves requests.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "liveness",
    responses((status = 200, description = "The process is up", body = Probe, example = json!({"status": "ok"})))
)]
pub async fn live() -> Json<Probe> {
    Json(Probe { status: "ok" })
}

/// Answers 200 once the database answers a query, 503 otherwise.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "liveness",
    responses(
        (status = 200, description = "The database answers", body = Probe, example = json!({"status": "ready"})),
        (status = 503, description = "The database does not answer", body = super::docs::ErrorBody,
         headers(("Retry-After" = u32, description = "Seconds to wait before asking again"))),
    )
)]
pub async fn ready(State(store): State<Arc<dyn Store>>) -> Result<Json<Probe>, ApiError> {
    // A probe must answer promptly even while the database hangs.
    match tokio::time::timeout(READY_TIMEOUT, store.ping()).await {
        Ok(Ok(())) => Ok(Json(Probe { status: "ready" })),
        Ok(Err(error)) => {
            tracing::warn!(error = %error_chain(&error), "readiness check failed");
            Err(ApiError::NotReady)
        }
        Err(_) => {
            tracing::warn!("readiness check failed: the database did not answer within 1 s");
            Err(ApiError::NotReady)
        }
    }
}

/// How long `/readyz` waits for the database.
const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::http::StatusCode;
    use axum::response::IntoResponse;

    use super::*;
    use crate::email::{EmailId, NewEmail, StoredEmail};
    use crate::store::{ChangeLog, EmailQuery, Inserted, MailState, Store, StoreError};

    /// A store whose database never answers.
    struct Unreachable;

    #[async_trait::async_trait]
    impl Store for Unreachable {
        fn engine(&self) -> &'static str {
            "unreachable"
        }
        async fn insert_inbound(&self, _: NewEmail) -> Result<Inserted, StoreError> {
            Err(StoreError::Closed)
        }
        async fn list_emails(&self, _: &EmailQuery) -> Result<Vec<StoredEmail>, StoreError> {
            Err(StoreError::Closed)
        }
        async fn email(&self, _: EmailId) -> Result<Option<StoredEmail>, StoreError> {
            Err(StoreError::Closed)
        }
        fn mail_state(&self) -> &dyn MailState {
            unreachable!("the probes never change mail")
        }
        fn changes(&self) -> &dyn ChangeLog {
            unreachable!("the probes never read the change log")
        }
        fn expiring(&self) -> &dyn crate::store::retention::Expiring {
            unreachable!("the probes never delete mail")
        }
        fn blobs(&self) -> &dyn crate::store::blobs::BlobStore {
            unreachable!("the probes never read parts")
        }
        async fn migrate(&self) -> Result<(), StoreError> {
            Ok(())
        }
        async fn ping(&self) -> Result<(), StoreError> {
            Err(StoreError::Database(sqlx::Error::PoolTimedOut))
        }
        async fn close(&self) {}
    }

    #[tokio::test]
    async fn readyz_is_503_without_detail_when_the_database_is_down() {
        let response = ready(State(Arc::new(Unreachable)))
            .await
            .unwrap_err()
            .into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(response.headers().contains_key("retry-after"));
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(
            !text.contains("pool") && !text.contains("unreachable"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn healthz_needs_nothing() {
        assert_eq!(live().await.0.status, "ok");
    }
}
