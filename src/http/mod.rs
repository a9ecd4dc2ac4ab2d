//! The HTTP transport: REST (`api`), WebSocket (`ws`) and the embedded web page (`web`), on one axum
//! router. Everything here translates between HTTP/JSON and the chat core; no chat rules live here.

pub mod api;
pub mod auth;
pub mod error;
pub mod sse;
pub mod web;
pub mod wire;
pub mod ws;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::core::chat::Chat;
use error::error_response;

/// What the HTTP transport needs besides the chat service.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Origins allowed besides the server's own (lower-case, no trailing slash).
    pub allowed_origins: Vec<String>,
    pub max_frame_bytes: usize,
    pub max_body_bytes: usize,
    pub keepalive: Duration,
    pub write_timeout: Duration,
}

pub struct AppState {
    pub chat: Arc<Chat>,
    pub config: HttpConfig,
}

/// The page may load only its own script and style: text from users can never become code.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
                   object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

pub fn router(state: Arc<AppState>) -> Router {
    let api = Router::new()
        .route("/openapi.json", get(openapi))
        .route("/register", post(api::register))
        .route("/login", post(api::login))
        .route("/logout", post(api::logout))
        .route("/me", get(api::me).patch(api::patch_me))
        .route("/me/rooms", get(api::my_rooms))
        .route("/events", get(sse::events))
        .route("/dms", get(api::my_dms).post(api::open_dm))
        .route("/rooms", get(api::public_rooms).post(api::create_room))
        .route("/rooms/{room}", get(api::get_room).patch(api::patch_room))
        .route("/rooms/{room}/members", get(api::members))
        .route("/rooms/{room}/join", post(api::join))
        .route("/rooms/{room}/leave", post(api::leave))
        .route("/rooms/{room}/invites", post(api::invite))
        .route("/rooms/{room}/kick", post(api::kick))
        .route("/rooms/{room}/ban", post(api::ban))
        .route("/rooms/{room}/unban", post(api::unban))
        .route("/rooms/{room}/roles", post(api::set_role))
        .route("/rooms/{room}/read", post(api::mark_read))
        .route("/rooms/{room}/typing", get(api::typing_now).post(api::typing))
        .route("/rooms/{room}/messages", get(api::history).post(api::send))
        .route("/rooms/{room}/messages/{seq}", axum::routing::patch(api::edit_message).delete(api::delete_message))
        .fallback(|| async { error_response(StatusCode::NOT_FOUND, "not_found", "no such endpoint") })
        .method_not_allowed_fallback(|| async {
            error_response(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed on this endpoint")
        });
    Router::new()
        .nest("/api/v1", api)
        .route("/api/docs", get(web::api_docs))
        .route("/ws", get(ws::upgrade))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .fallback(web::asset)
        .layer(axum::middleware::from_fn_with_state(state.clone(), check_origin))
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(SetResponseHeaderLayer::if_not_present(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
        .layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("x-frame-options"),
            HeaderValue::from_static("DENY"),
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// The OpenAPI description of the REST API (kept beside PROTOCOL.md; a test checks it covers every route).
pub const OPENAPI: &str = include_str!("../../docs/openapi.json");

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// Browsers send `Origin` with WebSocket handshakes and state-changing requests; another site must not
/// drive a user's session (cookies ride along). Requests without `Origin` (curl, native clients) pass:
/// they cannot carry a victim's cookies.
async fn check_origin(
    State(app): State<Arc<AppState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use axum::http::Method;
    let guarded = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) || req.uri().path() == "/ws";
    if guarded && let Some(origin) = req.headers().get(header::ORIGIN) {
        let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
        if !origin_allowed(origin.to_str().unwrap_or("null"), host, &app.config.allowed_origins) {
            return error_response(
                StatusCode::FORBIDDEN,
                "origin_not_allowed",
                "requests from this origin are not allowed",
            );
        }
    }
    next.run(req).await
}

/// Same origin (the origin's host and port are the request's `Host`) or listed.
pub fn origin_allowed(origin: &str, host: &str, allowed: &[String]) -> bool {
    let origin = origin.trim_end_matches('/').to_ascii_lowercase();
    let same = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|h| !host.is_empty() && h == host.to_ascii_lowercase());
    same || allowed.iter().any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(&origin))
}

/// Ready when the store and the broker answer.
async fn ready(State(app): State<Arc<AppState>>) -> Response {
    let store = app.chat.store().ping().await;
    let broker = app.chat.broker().ping().await;
    match (store, broker) {
        (Ok(()), Ok(())) => "ready".into_response(),
        (s, _) => {
            let what = if s.is_err() { "store" } else { "broker" };
            tracing::warn!(unreachable = what, "not ready");
            error_response(StatusCode::SERVICE_UNAVAILABLE, "not_ready", &format!("{what} unreachable"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::origin_allowed;

    #[test]
    fn origins_are_same_or_listed() {
        let none: Vec<String> = vec![];
        assert!(origin_allowed("http://127.0.0.1:8080", "127.0.0.1:8080", &none));
        assert!(origin_allowed("HTTPS://Chat.Example.com", "chat.example.com", &none));
        assert!(!origin_allowed("http://evil.example", "127.0.0.1:8080", &none));
        assert!(!origin_allowed("null", "127.0.0.1:8080", &none));
        assert!(!origin_allowed("http://127.0.0.1:8080.evil.example", "127.0.0.1:8080", &none));
        let listed = vec!["https://app.example.com".to_owned()];
        assert!(origin_allowed("https://app.example.com/", "127.0.0.1:8080", &listed));
        assert!(!origin_allowed("http://app.example.com", "127.0.0.1:8080", &listed));
    }
}
