//! `GET /api/v1/config`: the limits a client needs before it sends anything (no token needed), so that
//! clients read them from the server instead of hard-coding them.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::AppState;

/// The answer of `GET /api/v1/config` (docs/PROTOCOL.md §4).
#[derive(Debug, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ClientConfigW {
    /// Largest message body, in bytes of UTF-8 (`--max-message-bytes`).
    pub max_message_bytes: usize,
    /// Largest WebSocket frame a client may send (`--max-frame-bytes`).
    pub max_frame_bytes: usize,
    /// Largest REST request body (`--max-body-bytes`).
    pub max_body_bytes: usize,
    /// Largest upload (`--max-upload-bytes`); `null` would mean the server takes no uploads.
    pub max_upload_bytes: Option<u64>,
}

#[utoipa::path(get, path = "/api/v1/config", tag = "operations", summary = "The server's limits for clients (no token needed)", responses((status = 200, description = "the limits", body = ClientConfigW)), security(()))]
pub async fn config(State(app): State<Arc<AppState>>) -> Json<ClientConfigW> {
    Json(ClientConfigW {
        max_message_bytes: app.chat.limits.max_message_bytes,
        max_frame_bytes: app.config.max_frame_bytes,
        max_body_bytes: app.config.max_body_bytes,
        max_upload_bytes: Some(app.files.limits.max_upload_bytes),
    })
}
