//! The benchmark's parse-only ceiling: an axum server that parses each webhook body into a
//! `serde_json::Value` and stores nothing. `bench/run.sh` measures mailroom against it.
//!
//! Usage: `ceiling [PORT]` (default 8099).

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::{Value, json};

async fn receive(body: Bytes) -> Result<Json<Value>, StatusCode> {
    let value: Value = serde_json::from_slice(&body).map_err(|_| StatusCode::BAD_REQUEST)?;
    if !value.is_object() {
        return Err(StatusCode::BAD_REQUEST);
    }
    Ok(Json(
        json!({ "success": true, "message": "Email received and stored" }),
    ))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .map(|p| p.parse())
        .transpose()?
        .unwrap_or(8099);
    let app = Router::new()
        .route("/webhook", post(receive))
        .layer(DefaultBodyLimit::max(70 * 1024 * 1024));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
