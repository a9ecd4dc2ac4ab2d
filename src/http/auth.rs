//! The authentication extractor: a token from the `Authorization: Bearer` header, the `parley_token`
//! cookie, the `token` query parameter, or (WebSocket) a `bearer.<token>` subprotocol — browsers cannot
//! set headers on WebSocket or EventSource requests.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::AppState;
use super::error::ApiError;
use crate::core::chat::Identity;
use crate::core::error::Error;

pub const COOKIE: &str = "parley_token";

/// The token a request carries, wherever it put it.
pub fn token_of(parts: &Parts) -> Option<String> {
    let h = &parts.headers;
    if let Some(v) = h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
        && let Some(t) = v.strip_prefix("Bearer ")
    {
        return Some(t.trim().to_owned());
    }
    if let Some(q) = parts.uri.query() {
        for pair in q.split('&') {
            if let Some(t) = pair.strip_prefix("token=") {
                return Some(t.to_owned());
            }
        }
    }
    for v in h.get_all(header::SEC_WEBSOCKET_PROTOCOL).iter().filter_map(|v| v.to_str().ok()) {
        if let Some(t) = v.split(',').map(str::trim).find_map(|p| p.strip_prefix("bearer.")) {
            return Some(t.to_owned());
        }
    }
    for v in h.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()) {
        if let Some(t) =
            v.split(';').map(str::trim).find_map(|c| c.strip_prefix(COOKIE).and_then(|r| r.strip_prefix('=')))
        {
            return Some(t.to_owned());
        }
    }
    None
}

/// An authenticated caller.
pub struct Auth(pub Identity);

impl FromRequestParts<Arc<AppState>> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let token = token_of(parts).ok_or(Error::Unauthorized)?;
        Ok(Auth(state.chat.authenticate(&token).await?))
    }
}
