//! The OpenAPI document of the REST API, generated from the handlers' `#[utoipa::path]` attributes and
//! the wire types' schemas; served at `/api/v1/openapi.json`, rendered by the bundled Swagger UI at
//! `/api/docs` (no file from another site), and checked in as `docs/openapi.json` (a test keeps the
//! two equal and makes sure every route of the router is described).
//!
//! The REST answers are `parley_proto::answers` types (re-exported here for the handlers' annotations);
//! the error body and `/readyz`'s answer are described here by doc-only types.

use serde::Serialize;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

use super::wire::{AckW, ErrorBodyW, HistoryW, MemberW, MessageW, RoomViewW, RoomW, UserW};
pub use parley_proto::answers::{
    BansW, ConversationsW, DeadDeliveriesW, DirectW, InvitesW, LoginW, MembersW, ReadW, RoomViewsW, RoomsW, TypingW,
    WebhookW, WebhooksW,
};

/// A room named in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct RoomPath {
    /// The room: its id, its name (group rooms), or `@username` of the peer (direct conversations).
    pub room: String,
}

/// An uploaded file.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct FilePath {
    /// The file's id (from the upload's answer).
    pub id: String,
}

/// A reaction on a message.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ReactionPath {
    /// The room: its id, its name (group rooms), or `@username` of the peer (direct conversations).
    pub room: String,
    /// The message's sequence number in the room.
    pub seq: i64,
    /// The emoji, percent-encoded (one grapheme cluster, at most 32 bytes).
    pub emoji: String,
}

/// A message of a room.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct MessagePath {
    /// The room: its id, its name (group rooms), or `@username` of the peer (direct conversations).
    pub room: String,
    /// The message's sequence number in the room.
    pub seq: i64,
}

/// A webhook of a room.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct WebhookPath {
    /// The room: its id or its name.
    pub room: String,
    /// The webhook's id.
    pub id: i64,
}

/// The SSE stream's resume point.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(non_snake_case)]
pub struct LastEventId {
    /// `ROOM:SEQ` pairs, comma-separated (sent by browsers on reconnect): missed messages are replayed.
    #[param(rename = "Last-Event-ID")]
    pub Last_Event_ID: Option<String>,
}

/// A refusal: `error.code` is stable (docs/PROTOCOL.md §1).
#[derive(Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorW<'a> {
    pub error: ErrorBodyW<'a>,
}

/// `/readyz`: each check is `ok` or `unreachable`; on 503 `error` says which failed.
#[derive(Serialize, ToSchema)]
pub struct ReadyW<'a> {
    /// `ready` (200) or absent (503, then `error` is set).
    pub status: Option<String>,
    pub error: Option<ErrorBodyW<'a>>,
    pub checks: ReadyChecksW,
}

#[derive(Serialize, ToSchema)]
pub struct ReadyChecksW {
    pub store: String,
    pub broker: String,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Parley REST API",
        version = "1",
        description = "REST part of Parley's protocol, version 1. The WebSocket, SSE and TCP protocols and every \
                       error code are described in docs/PROTOCOL.md. Authenticate with `Authorization: Bearer \
                       TOKEN` (from `POST /api/v1/login`) or the `parley_token` cookie the login sets."
    ),
    servers((url = "/")),
    security(("bearer" = []), ("cookie" = [])),
    paths(
        super::api::search,
        super::convo::add_reaction,
        super::convo::remove_reaction,
        super::convo::thread,
        super::convo::mark_thread_read,
        super::convo::my_threads,
        super::convo::pin,
        super::convo::unpin,
        super::convo::pins,
        super::convo::set_notify,
        super::client_config::config,
        super::api::register,
        super::api::login,
        super::api::logout,
        super::api::me,
        super::api::patch_me,
        super::api::my_rooms,
        super::api::my_invites,
        super::api::accept_invite,
        super::api::decline_invite,
        super::api::my_dms,
        super::api::open_dm,
        super::sse::events,
        super::api::public_rooms,
        super::api::create_room,
        super::api::get_room,
        super::api::patch_room,
        super::api::members,
        super::api::join,
        super::api::leave,
        super::api::invite,
        super::api::kick,
        super::api::ban,
        super::api::unban,
        super::api::set_role,
        super::api::transfer_owner,
        super::api::bans,
        super::api::mark_read,
        super::api::typing_now,
        super::api::typing,
        super::api::history,
        super::api::send,
        super::files::upload,
        super::files::meta,
        super::files::content,
        super::files::thumbnail,
        super::api::edit_message,
        super::api::delete_message,
        super::api::webhooks,
        super::api::add_webhook,
        super::api::delete_webhook,
        super::api::dead_webhook_deliveries,
        super::openapi_json,
        super::healthz,
        super::ready,
        super::ops::metrics,
    ),
    components(schemas(UserW, MemberW, RoomW, RoomViewW, MessageW, AckW, HistoryW, ErrorW)),
    modifiers(&Common),
    tags(
        (name = "files", description = "Uploads and downloads of shared files"),
        (name = "accounts", description = "Registration, login, the signed-in user"),
        (name = "rooms", description = "Rooms, membership and moderation"),
        (name = "messages", description = "History, sending, editing, read markers, typing"),
        (name = "events", description = "Live events over Server-Sent Events"),
        (name = "webhooks", description = "Outgoing webhooks of a room"),
        (name = "operations", description = "Health, readiness, metrics, this document"),
    )
)]
pub struct ApiDoc;

/// What every operation shares: the security schemes, and the documented refusals — 400 for a body or
/// parameters that do not parse, 401 without a valid token (except public operations), 403/404 for a
/// room one may not act in or cannot see, 413 for an oversized body. (429 is declared by the operations
/// an abuse limit applies to.)
struct Common;

impl Modify for Common {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(super::auth::COOKIE))),
        );
        let json = || ContentBuilder::new().schema(Some(Ref::from_schema_name("Error"))).build();
        components.responses.insert(
            "Error".into(),
            RefOr::T(
                ResponseBuilder::new()
                    .description("refused; `error.code` is stable (docs/PROTOCOL.md §1)")
                    .content("application/json", json())
                    .build(),
            ),
        );
        components.responses.insert(
            "TooManyRequests".into(),
            RefOr::T(
                ResponseBuilder::new()
                    .description(
                        "refused by an abuse limit (`rate_limited`, `too_many_connections`, `too_many_attempts`); \
                         `Retry-After` says when to try again (docs/PROTOCOL.md §1 \"Abuse limits\")",
                    )
                    .header(
                        "Retry-After",
                        utoipa::openapi::HeaderBuilder::new()
                            .schema(Some(
                                utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::Type::Integer),
                            ))
                            .description(Some("seconds to wait before trying again"))
                            .build(),
                    )
                    .content("application/json", json())
                    .build(),
            ),
        );
        components.responses.insert(
            "PayloadTooLarge".into(),
            RefOr::T(
                ResponseBuilder::new()
                    .description("the request body is larger than `--max-body-bytes` (`payload_too_large`)")
                    .content("application/json", json())
                    .build(),
            ),
        );
        for (path, item) in doc.paths.paths.iter_mut() {
            let api = path.starts_with("/api/v1/") && path != "/api/v1/openapi.json";
            for op in [&mut item.get, &mut item.post, &mut item.patch, &mut item.delete, &mut item.put] {
                let Some(op) = op.as_mut() else { continue };
                if api {
                    refusals(path, op);
                }
            }
        }
    }
}

fn refusals(path: &str, op: &mut Operation) {
    let public = op.security.as_ref().is_some_and(|s| s.iter().all(|r| *r == Default::default()));
    let body = op.request_body.is_some();
    let mut add = |status: &str, name: &str| {
        op.responses.responses.entry(status.to_owned()).or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
    };
    let query = op.parameters.as_ref().is_some_and(|ps| {
        ps.iter()
            .any(|p| matches!(p, RefOr::T(p) if matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Query)))
    });
    if body || query || path.contains("{seq}") {
        add("400", "Error");
    }
    if !public {
        add("401", "Error");
    }
    if path.contains("{room}") {
        add("403", "Error");
        add("404", "Error");
    }
    if body {
        add("413", "PayloadTooLarge");
    }
}

/// The document, as served and checked in (pretty JSON, one trailing newline).
pub fn document() -> String {
    let mut s = ApiDoc::openapi().to_pretty_json().expect("the OpenAPI document serializes");
    s.push('\n');
    s
}
