//! The HTTP transport: REST (`api`), WebSocket (`ws`) and the embedded web page (`web`), on one axum
//! router. Everything here translates between HTTP/JSON and the chat core; no chat rules live here.

pub mod api;
pub mod auth;
pub mod client_config;
pub mod convo;
pub mod deadline;
pub mod error;
pub mod files;
pub mod openapi;
pub mod ops;
pub mod proxy;
pub mod sse;
pub mod web;
pub mod wire;
pub mod ws;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::connect_info::Connected;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderName, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::IncomingStream;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::core::chat::Chat;
use crate::core::ingest::WriterHealth;
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
    /// How long a busy WebSocket gathers deliveries before writing them at once (zero: never waits).
    pub write_coalesce: Duration,
    /// `/metrics` on this router (false when `--metrics-listen` gives it its own port).
    pub metrics_on_public_port: bool,
    /// Peers whose `X-Forwarded-For` is believed (`proxy.rs`).
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

/// The client's address, as the server's connection info (plain or TLS listener alike).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

impl Connected<IncomingStream<'_, tokio::net::TcpListener>> for ClientAddr {
    fn connect_info(stream: IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        ClientAddr(*stream.remote_addr())
    }
}

impl Connected<IncomingStream<'_, NoDelayListener>> for ClientAddr {
    fn connect_info(stream: IncomingStream<'_, NoDelayListener>) -> Self {
        ClientAddr(*stream.remote_addr())
    }
}

/// The plain HTTP listener: every accepted socket is set up by [`tune_socket`], as the TLS listener's
/// are.
pub struct NoDelayListener(pub tokio::net::TcpListener);

/// Every accepted HTTP socket: `TCP_NODELAY` (without it a small write — an acknowledgement, a
/// delivery — can wait for the peer's delayed ACK, up to 40 ms). The kernel send buffer is left to
/// autotuning (up to `net.ipv4.tcp_wmem`'s maximum, 4 MiB by default): bounding it at 256 KiB left a
/// reading client too little slack behind a burst, and the room's readers were dropped as too slow
/// (`websocket::a_reader_that_stops_reading_is_dropped_and_the_room_keeps_flowing`).
pub fn tune_socket(io: &tokio::net::TcpStream) {
    if let Err(e) = io.set_nodelay(true) {
        tracing::debug!(error = %e, "setting TCP_NODELAY failed");
    }
}

impl axum::serve::Listener for NoDelayListener {
    type Io = tokio::net::TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = axum::serve::Listener::accept(&mut self.0).await;
        tune_socket(&io);
        (io, addr)
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

impl Connected<IncomingStream<'_, crate::tls::TlsListener>> for ClientAddr {
    fn connect_info(stream: IncomingStream<'_, crate::tls::TlsListener>) -> Self {
        ClientAddr(*stream.remote_addr())
    }
}

impl<L: axum::serve::Listener<Addr = SocketAddr>> Connected<IncomingStream<'_, deadline::Deadline<L>>> for ClientAddr {
    fn connect_info(stream: IncomingStream<'_, deadline::Deadline<L>>) -> Self {
        ClientAddr(*stream.remote_addr())
    }
}

/// Request ids: 16 random hex digits, unless the client (or a proxy) sent `x-request-id`.
#[derive(Clone, Copy, Default)]
struct RandomId;

impl MakeRequestId for RandomId {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        HeaderValue::from_str(&hex::encode(rand::random::<[u8; 8]>())).ok().map(RequestId::new)
    }
}

/// An `x-request-id` from outside is kept only if it is short and plain (it goes into every log line of
/// the request); otherwise it is replaced by a fresh one.
fn plain_request_id(v: &HeaderValue) -> bool {
    (1..=64).contains(&v.len()) && v.as_bytes().iter().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
}

async fn drop_odd_request_id(mut req: axum::extract::Request) -> axum::extract::Request {
    if req.headers().get("x-request-id").is_some_and(|v| !plain_request_id(v)) {
        req.headers_mut().remove("x-request-id");
    }
    req
}

/// The span every request runs in: the path only (queries may hold tokens), and the request id.
fn request_span<B>(req: &Request<B>) -> tracing::Span {
    let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
    tracing::info_span!("request", method = %req.method(), path = req.uri().path(), request_id = id)
}

pub struct AppState {
    pub chat: Arc<Chat>,
    /// The background job queue (for the dead-letter view).
    pub jobs: crate::jobs::DynQueue,
    /// Attachments (uploads, access, the bytes).
    pub files: Arc<crate::core::chat::files::Files>,
    pub config: HttpConfig,
}

/// The page may load only its own script and style: text from users can never become code.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
                   object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

pub fn router(state: Arc<AppState>) -> Router {
    let api = Router::new()
        .route("/openapi.json", get(openapi_json))
        .route("/config", get(client_config::config))
        .route("/register", post(api::register))
        .route("/login", post(api::login))
        .route("/logout", post(api::logout))
        .route("/me", get(api::me).patch(api::patch_me))
        .route("/me/rooms", get(api::my_rooms))
        .route("/me/invites", get(api::my_invites))
        .route("/me/invites/{room}/accept", post(api::accept_invite))
        .route("/me/invites/{room}/decline", post(api::decline_invite))
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
        .route("/rooms/{room}/owner", post(api::transfer_owner))
        .route("/rooms/{room}/bans", get(api::bans))
        .route("/rooms/{room}/read", post(api::mark_read))
        .route("/rooms/{room}/typing", get(api::typing_now).post(api::typing))
        .route("/rooms/{room}/messages", get(api::history).post(api::send))
        .route("/rooms/{room}/files", post(files::upload))
        .route("/files/{id}", get(files::meta))
        .route("/files/{id}/content", get(files::content))
        .route("/files/{id}/thumbnail", get(files::thumbnail))
        .route("/search", get(api::search))
        .route("/rooms/{room}/webhooks", get(api::webhooks).post(api::add_webhook))
        .route("/rooms/{room}/webhooks/dead", get(api::dead_webhook_deliveries))
        .route("/rooms/{room}/webhooks/{id}", axum::routing::delete(api::delete_webhook))
        .route("/rooms/{room}/messages/{seq}", axum::routing::patch(api::edit_message).delete(api::delete_message))
        .route(
            "/rooms/{room}/messages/{seq}/reactions/{emoji}",
            axum::routing::put(convo::add_reaction).delete(convo::remove_reaction),
        )
        .route("/rooms/{room}/threads/{seq}", get(convo::thread))
        .route("/rooms/{room}/threads/{seq}/read", post(convo::mark_thread_read))
        .route("/rooms/{room}/pins", get(convo::pins).post(convo::pin))
        .route("/rooms/{room}/pins/{seq}", axum::routing::delete(convo::unpin))
        .route("/rooms/{room}/notify", axum::routing::put(convo::set_notify))
        .route("/me/threads", get(convo::my_threads))
        .fallback(|| async { error_response(StatusCode::NOT_FOUND, "not_found", "no such endpoint") })
        .method_not_allowed_fallback(|| async {
            error_response(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed on this endpoint")
        })
        .route_layer(axum::middleware::from_fn(ops::tag_route));
    let mut app = Router::new()
        .nest("/api/v1", api)
        .merge(
            // The interactive reference, bundled into the binary (it loads nothing from other sites).
            utoipa_swagger_ui::SwaggerUi::new("/api/docs").config(
                utoipa_swagger_ui::Config::from("/api/v1/openapi.json")
                    .try_it_out_enabled(true)
                    .persist_authorization(true)
                    // No badge from the public validator: nothing leaves this server.
                    .validator_url("none"),
            ),
        )
        .route("/ws", get(ws::upgrade).fallback(ws::method_not_allowed))
        .route("/healthz", get(healthz))
        .route("/readyz", get(ready));
    if state.config.metrics_on_public_port {
        app = app.route("/metrics", get(ops::metrics));
    }
    app.route_layer(axum::middleware::from_fn(ops::tag_route))
        .fallback(web::asset)
        .layer(axum::middleware::from_fn_with_state(state.clone(), proxy::forwarded_client))
        .layer(axum::middleware::from_fn_with_state(state.clone(), check_origin))
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(state.clone(), json_refusals))
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
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(SetRequestIdLayer::x_request_id(RandomId))
        .layer(axum::middleware::map_request(drop_odd_request_id))
        .layer(axum::middleware::from_fn(ops::record))
        .with_state(state)
}

/// The OpenAPI document, generated from the handlers (`openapi.rs`); `docs/openapi.json` is the same.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "operations", summary = "This document (OpenAPI 3.1)",
    responses((status = 200, description = "the OpenAPI document", content_type = "application/json", body = Object)),
    security(()))]
pub async fn openapi_json() -> Response {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ([(header::CONTENT_TYPE, "application/json")], DOC.get_or_init(openapi::document).as_str()).into_response()
}

/// The process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", summary = "Alive",
    responses((status = 200, description = "`ok`", content_type = "text/plain", body = String)), security(()))]
pub async fn healthz() -> &'static str {
    "ok"
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

/// Every refusal is JSON: a non-JSON error answer from anywhere below (an extractor's rejection — a path
/// segment that is not UTF-8 once decoded, a bad query string, a refused WebSocket upgrade — or a 413
/// for a body over `--max-body-bytes`, however it was found out) becomes the documented JSON error with a
/// code chosen by its status, keeping the library's text as the message.
async fn json_refusals(
    State(app): State<Arc<AppState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    let is_json =
        resp.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        let max = app.config.max_body_bytes;
        return error_response(status, "payload_too_large", &format!("request body is larger than {max} bytes"));
    }
    let code = refusal_code(status);
    // The library's own explanation, when short and textual; otherwise the status's reason.
    let text = axum::body::to_bytes(resp.into_body(), 1024).await.ok().and_then(|b| String::from_utf8(b.to_vec()).ok());
    let message = match text.as_deref().map(str::trim) {
        Some(t) if !t.is_empty() => t.to_owned(),
        _ => status.canonical_reason().unwrap_or("request refused").to_ascii_lowercase(),
    };
    error_response(status, code, &message)
}

/// The stable code for a refusal that did not come from the chat core (documented in PROTOCOL.md §1).
fn refusal_code(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    }
}

/// How long a readiness check waits for the store or the broker.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Ready when the store and the broker answer, each within [`READY_TIMEOUT`]; the body names each check.
#[utoipa::path(get, path = "/readyz", tag = "operations", summary = "Store and broker reachable (each within 2 s)",
    responses(
        (status = 200, description = "ready: `{\"status\":\"ready\",\"checks\":{\"store\":\"ok\",\"broker\":\"ok\"}}`", body = openapi::ReadyW),
        (status = 503, description = "not ready: `error.code` is `not_ready`, `checks` names what failed", body = openapi::ReadyW),
    ),
    security(()))]
pub async fn ready(State(app): State<Arc<AppState>>) -> Response {
    async fn check<F: Future<Output = crate::core::error::Result<()>>>(f: F) -> &'static str {
        match tokio::time::timeout(READY_TIMEOUT, f).await {
            Ok(Ok(())) => "ok",
            Ok(Err(_)) | Err(_) => "unreachable",
        }
    }
    let (store, broker) = tokio::join!(check(app.chat.store().ping()), check(app.chat.broker().ping()));
    // Reachable is not enough: a store that answers reads but fails or stalls writes cannot take messages.
    let writer = app.chat.writer_health();
    let checks = serde_json::json!({ "store": store, "broker": broker, "writer": writer.as_str() });
    if store == "ok" && broker == "ok" && writer == WriterHealth::Ok {
        return axum::Json(serde_json::json!({ "status": "ready", "checks": checks })).into_response();
    }
    let mut problems: Vec<String> = [("store", store), ("broker", broker)]
        .iter()
        .filter(|(_, s)| *s != "ok")
        .map(|(n, _)| format!("{n} unreachable"))
        .collect();
    match writer {
        WriterHealth::Ok => {}
        WriterHealth::Failing => problems.push("writes failing".to_owned()),
        WriterHealth::Stalled => problems.push("writes stalled".to_owned()),
    }
    let message = problems.join(", ");
    tracing::warn!(problems = %message, "not ready");
    let body = serde_json::json!({
        "error": wire::ErrorBodyW { code: "not_ready", message: &message, retry_after_ms: None },
        "checks": checks,
    });
    (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn the_plain_listener_sets_nodelay() {
        use axum::serve::Listener as _;
        let mut listener = super::NoDelayListener(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap());
        let addr = listener.local_addr().unwrap();
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (io, _) = listener.accept().await;
        assert!(io.nodelay().unwrap());
    }

    use super::{HeaderValue, origin_allowed, plain_request_id};

    #[test]
    fn only_plain_request_ids_are_kept() {
        assert!(plain_request_id(&HeaderValue::from_static("from-proxy-42")));
        assert!(plain_request_id(&HeaderValue::from_static("0b5c1f2e:trace_1.2")));
        assert!(!plain_request_id(&HeaderValue::from_static("")));
        assert!(!plain_request_id(&HeaderValue::from_static("has space")));
        assert!(!plain_request_id(&HeaderValue::from_str(&"x".repeat(65)).unwrap()));
    }

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
