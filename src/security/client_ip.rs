//! The client's IP address as handlers see it.
//!
//! The TCP peer by default; a layer that knows the trusted proxies may put a resolved
//! `ClientIp` into the request extensions first, and then that one wins.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        if let Some(resolved) = parts.extensions.get::<ClientIp>() {
            return Ok(*resolved);
        }
        parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| ClientIp(peer.ip().to_canonical()))
            .ok_or_else(|| ApiError::Internal("the server was started without connect info".into()))
    }
}
