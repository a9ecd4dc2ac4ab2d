//! REST handlers: parse at the boundary, call the chat service, encode the answer.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::AppState;
use super::ClientAddr;
use super::auth::{Auth, COOKIE};
use super::error::{ApiResult, error_response};
use super::openapi::{
    BansW, ConversationsW, DeadDeliveriesW, DirectW, ErrorW, InvitesW, LoginW, MembersW, MessagePath, ReadW, RoomPath,
    RoomViewsW, RoomsW, TypingW, WebhookPath, WebhookW, WebhooksW,
};
use super::wire::{AckW, BanW, HistoryW, InviteW, MessageW, RoomViewW, RoomW, SearchResultsW, UserW, member_w};
use crate::core::chat::SendRequest;
use crate::core::domain::*;
use axum::extract::ConnectInfo;
use parley_proto::rest::{
    CreateRoom, EditReq, InviteReq, LoginReq, NewWebhook, OpenDm, PatchMe, PatchRoom, ReadReq, RegisterReq, SendReq,
    SetRole, Target,
};

/// `Json<T>` whose refusals are JSON errors with stable codes.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body(v)),
            Err(JsonRejection::BytesRejection(r)) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(error_response(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "request body is too large"))
            }
            Err(r) => Err(error_response(StatusCode::BAD_REQUEST, "bad_request", &r.body_text())),
        }
    }
}

/// `Query<T>` whose refusals are JSON errors.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(q) => Ok(Params(q.0)),
            Err(r) => Err(error_response(StatusCode::BAD_REQUEST, "bad_request", &r.body_text())),
        }
    }
}

pub(super) fn seq_param(s: &str) -> Result<Seq, crate::core::error::Error> {
    s.parse()
        .map_err(|_| crate::core::error::Error::BadRequest("the message sequence number must be an integer".into()))
}

pub(super) fn room_ref(s: &str) -> RoomRef {
    RoomRef::parse(s)
}

#[utoipa::path(post, path = "/api/v1/register", tag = "accounts", summary = "Register", request_body = RegisterReq, responses((status = 201, description = "the new account", body = UserW), (status = 409, description = "`username_taken`", body = ErrorW), (status = 429, description = "an abuse limit (docs/PROTOCOL.md §1): `rate_limited`, or `too_many_attempts` for a paused username", body = ErrorW, headers(("Retry-After" = u64, description = "seconds to wait before trying again")))), security(()))]
pub async fn register(
    State(app): State<Arc<AppState>>,
    ConnectInfo(ClientAddr(peer)): ConnectInfo<ClientAddr>,
    Body(req): Body<RegisterReq>,
) -> ApiResult<Response> {
    app.chat.auth_attempt(peer.ip())?;
    let username = Username::parse(&req.username)?;
    let password = Password::parse(&req.password)?;
    let display = req.display_name.as_deref().map(DisplayName::parse).transpose()?;
    let user = app.chat.register(username, password, display).await?;
    Ok((StatusCode::CREATED, Json(UserW::from(&user))).into_response())
}

#[utoipa::path(post, path = "/api/v1/login", tag = "accounts", summary = "Log in", request_body = LoginReq, responses((status = 200, description = "a token bound to a new session; also set as the HttpOnly cookie `parley_token`", body = LoginW), (status = 401, description = "`bad_credentials` (unknown user or wrong password alike)", body = ErrorW), (status = 429, description = "an abuse limit (docs/PROTOCOL.md §1): `rate_limited`, or `too_many_attempts` for a paused username", body = ErrorW, headers(("Retry-After" = u64, description = "seconds to wait before trying again")))), security(()))]
pub async fn login(
    State(app): State<Arc<AppState>>,
    ConnectInfo(ClientAddr(peer)): ConnectInfo<ClientAddr>,
    Body(req): Body<LoginReq>,
) -> ApiResult<Response> {
    app.chat.auth_attempt(peer.ip())?;
    let ok = app.chat.login(&req.username, &req.password).await?;
    let body = LoginW { token: ok.token.clone(), expires_at: ok.expires_at, user: UserW::from(&ok.user) };
    let mut resp = Json(body).into_response();
    // HttpOnly + SameSite=Strict: the web page authenticates without script ever holding the token.
    let cookie =
        format!("{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}", ok.token, app.chat.token_ttl().as_secs());
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

#[utoipa::path(post, path = "/api/v1/logout", tag = "accounts", summary = "Log out: ends the session (its sockets on every node close) and clears the cookie", responses((status = 204, description = "logged out")))]
pub async fn logout(State(app): State<Arc<AppState>>, Auth(who): Auth) -> ApiResult<Response> {
    app.chat.logout(&who).await?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("parley_token=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    );
    Ok(resp)
}

#[utoipa::path(get, path = "/api/v1/me", tag = "accounts", summary = "The signed-in user", responses((status = 200, description = "the user", body = UserW)))]
pub async fn me(Auth(who): Auth) -> ApiResult<Response> {
    Ok(Json(UserW::from(&who.user)).into_response())
}

#[utoipa::path(patch, path = "/api/v1/me", tag = "accounts", summary = "Change your display name", request_body = PatchMe, responses((status = 200, description = "the updated user", body = UserW)))]
pub async fn patch_me(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Body(req): Body<PatchMe>,
) -> ApiResult<Response> {
    let user = app.chat.set_display_name(&who, DisplayName::parse(&req.display_name)?).await?;
    Ok(Json(UserW::from(&user)).into_response())
}

fn rooms_json(rooms: &[Room]) -> Response {
    Json(RoomsW { rooms: rooms.iter().map(RoomW::from).collect() }).into_response()
}

#[utoipa::path(get, path = "/api/v1/me/rooms", tag = "rooms", summary = "Your rooms and direct conversations, with unread and mention counts", responses((status = 200, description = "your rooms", body = RoomViewsW)))]
pub async fn my_rooms(State(app): State<Arc<AppState>>, Auth(who): Auth) -> ApiResult<Response> {
    let views = app.chat.my_rooms(&who).await?;
    Ok(Json(RoomViewsW { rooms: views.iter().map(RoomViewW::from).collect() }).into_response())
}

#[utoipa::path(get, path = "/api/v1/dms", tag = "rooms", summary = "Your direct conversations, newest activity first", responses((status = 200, description = "your direct conversations", body = ConversationsW)))]
/// Direct conversations only, newest activity first.
pub async fn my_dms(State(app): State<Arc<AppState>>, Auth(who): Auth) -> ApiResult<Response> {
    let mut views: Vec<RoomView> =
        app.chat.my_rooms(&who).await?.into_iter().filter(|v| v.room.kind == RoomKind::Direct).collect();
    views.sort_by_key(|v| std::cmp::Reverse(v.last_message.as_ref().map_or(0, |m| m.ts)));
    Ok(Json(ConversationsW { conversations: views.iter().map(RoomViewW::from).collect() }).into_response())
}

#[utoipa::path(post, path = "/api/v1/dms", tag = "rooms", summary = "Open (or find) the direct conversation with a user", request_body = OpenDm, responses((status = 200, description = "the conversation and its peer", body = DirectW), (status = 404, description = "`user_not_found`", body = ErrorW)))]
pub async fn open_dm(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Body(req): Body<OpenDm>,
) -> ApiResult<Response> {
    let (room, peer) = app.chat.open_direct(&who, &req.username).await?;
    Ok(Json(DirectW { room: RoomW::from(&room), peer: UserW::from(&peer) }).into_response())
}

#[utoipa::path(get, path = "/api/v1/rooms", tag = "rooms", summary = "Public rooms", responses((status = 200, description = "public rooms", body = RoomsW)))]
pub async fn public_rooms(State(app): State<Arc<AppState>>, Auth(_who): Auth) -> ApiResult<Response> {
    Ok(rooms_json(&app.chat.public_rooms().await?))
}

#[utoipa::path(post, path = "/api/v1/rooms", tag = "rooms", summary = "Create a group room (you become its owner)", request_body = CreateRoom, responses((status = 201, description = "the room", body = RoomW), (status = 409, description = "`room_exists`", body = ErrorW)))]
pub async fn create_room(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Body(req): Body<CreateRoom>,
) -> ApiResult<Response> {
    let name = RoomName::parse(&req.name)?;
    let vis = Visibility::parse(req.visibility.as_deref().unwrap_or("public"))?;
    let room = app.chat.create_room(&who, name, vis).await?;
    Ok((StatusCode::CREATED, Json(RoomW::from(&room))).into_response())
}

#[utoipa::path(get, path = "/api/v1/rooms/{room}", tag = "rooms", summary = "A room", params(RoomPath), responses((status = 200, description = "the room", body = RoomW)))]
pub async fn get_room(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Path(room): Path<String>,
) -> ApiResult<Response> {
    let room = app.chat.room(&who, &room_ref(&room)).await?;
    Ok(Json(RoomW::from(&room)).into_response())
}

#[utoipa::path(get, path = "/api/v1/rooms/{room}/members", tag = "rooms", summary = "Members, online or not, with roles", params(RoomPath), responses((status = 200, description = "members", body = MembersW)))]
pub async fn members(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Path(room): Path<String>,
) -> ApiResult<Response> {
    let members = app.chat.members(&who, &room_ref(&room)).await?;
    Ok(Json(MembersW { members: members.iter().map(member_w).collect() }).into_response())
}

#[utoipa::path(post, path = "/api/v1/rooms/{room}/join", tag = "rooms", summary = "Join a public room, or a private one you were invited to", params(RoomPath), responses((status = 200, description = "the room", body = RoomW)))]
pub async fn join(State(app): State<Arc<AppState>>, Auth(who): Auth, Path(room): Path<String>) -> ApiResult<Response> {
    let room = app.chat.join(&who, &room_ref(&room)).await?;
    Ok(Json(RoomW::from(&room)).into_response())
}

#[utoipa::path(post, path = "/api/v1/rooms/{room}/leave", tag = "rooms", summary = "Leave a room", params(RoomPath), responses((status = 204, description = "left")))]
pub async fn leave(State(app): State<Arc<AppState>>, Auth(who): Auth, Path(room): Path<String>) -> ApiResult<Response> {
    app.chat.leave(&who, &room_ref(&room)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(post, path = "/api/v1/rooms/{room}/invites", tag = "rooms", summary = "Invite a user (members of private rooms: owner and admins)", params(RoomPath), request_body = InviteReq, responses((status = 204, description = "invited")))]
pub async fn invite(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Path(room): Path<String>,
    Body(req): Body<InviteReq>,
) -> ApiResult<Response> {
    app.chat.invite(&who, &room_ref(&room), &req.username).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    pub(super) before: Option<i64>,
    pub(super) after: Option<i64>,
    pub(super) limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/rooms/{room}/messages", tag = "messages", summary = "History page, ascending seq", params(RoomPath, HistoryParams), responses((status = 200, description = "a page of messages", body = HistoryW)))]
pub async fn history(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Path(room): Path<String>,
    Params(p): Params<HistoryParams>,
) -> ApiResult<Response> {
    let q = HistoryQuery::new(p.before, p.after, p.limit)?;
    let (_, page) = app.chat.history(&who, &room_ref(&room), q).await?;
    Ok(Json(HistoryW::from(&page)).into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    q: String,
    cursor: Option<String>,
    limit: Option<u32>,
}

/// `GET /api/v1/search?q=…&cursor=…&limit=…`: the query language is in `q` (docs/PROTOCOL.md, "Search").
#[utoipa::path(get, path = "/api/v1/search", tag = "messages", summary = "Search the messages you may read (query language: docs/PROTOCOL.md, Search)", params(SearchParams), responses((status = 200, description = "hits, best first, and the next page's cursor", body = SearchResultsW)))]
pub async fn search(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Params(p): Params<SearchParams>,
) -> ApiResult<Response> {
    let found = app.chat.search(&who, &p.q, p.cursor.as_deref(), p.limit).await?;
    Ok(Json(SearchResultsW::from(&found)).into_response())
}

#[utoipa::path(post, path = "/api/v1/rooms/{room}/messages", tag = "messages", summary = "Send a message (answered once it is durable)", params(RoomPath), request_body = SendReq, responses((status = 201, description = "the acknowledgement; a resend with the same `client_id` answers the original with `duplicate: true`", body = AckW), (status = 429, description = "an abuse limit (docs/PROTOCOL.md §1): `rate_limited`, or `too_many_attempts` for a paused username", body = ErrorW, headers(("Retry-After" = u64, description = "seconds to wait before trying again")))))]
pub async fn send(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Path(room): Path<String>,
    Body(req): Body<SendReq>,
) -> ApiResult<Response> {
    let body = MessageBody::parse(&req.body, app.chat.limits.max_message_bytes)?;
    let client_id = req.client_id.as_deref().map(ClientMsgId::parse).transpose()?;
    let send = SendRequest { room: room_ref(&room), body, client_id, reply_to: req.reply_to, files: req.files };
    let pending = app.chat.submit(&who, send).await?;
    let ack = app.chat.finish_send(&who, pending).await?;
    Ok((StatusCode::CREATED, Json(AckW::from(&ack))).into_response())
}

#[utoipa::path(patch, path = "/api/v1/rooms/{room}", tag = "rooms", summary = "Rename, set the topic or the retention period (owner and admins)", params(RoomPath), request_body = PatchRoom, responses((status = 200, description = "the room", body = RoomW)))]
pub async fn patch_room(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Path(room): Path<String>,
    Body(req): Body<PatchRoom>,
) -> ApiResult<Response> {
    let mut r = room_ref(&room);
    let mut out = None;
    if let Some(name) = req.name.as_deref() {
        let updated = app.chat.rename(&who, &r, RoomName::parse(name)?).await?;
        r = RoomRef::Id(updated.id);
        out = Some(updated);
    }
    if let Some(topic) = req.topic.as_deref() {
        out = Some(app.chat.set_topic(&who, &r, Topic::parse(topic)?).await?);
    }
    if let Some(secs) = req.retention_secs {
        out = Some(app.chat.set_retention(&who, &r, secs).await?);
    }
    if let Some(vis) = req.visibility.as_deref() {
        out = Some(app.chat.set_visibility(&who, &r, Visibility::parse(vis)?).await?);
    }
    let room = match out {
        Some(room) => room,
        None => {
            return Err(crate::core::error::Error::BadRequest(
                "give a name, a topic, retention_secs or visibility".into(),
            )
            .into());
        }
    };
    Ok(Json(RoomW::from(&room)).into_response())
}

#[utoipa::path(post, path = "/api/v1/rooms/{room}/kick", tag = "rooms", summary = "Remove a member (owner and admins)", params(RoomPath), request_body = Target, responses((status = 204, description = "kicked")))]
pub async fn kick(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Path(room): Path<String>,
    Body(t): Body<Target>,
) -> ApiResult<Response> {
    app.chat.kick(&who, &room_ref(&room), &t.username).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(post, path = "/api/v1/rooms/{room}/ban", tag = "rooms", summary = "Ban a user (owner and admins)", params(RoomPath), request_body = Target, responses((status = 204, description = "banned")))]
pub async fn ban(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Path(room): Path<String>,
    Body(t): Body<Target>,
) -> ApiResult<Response> {
    app.chat.ban(&who, &room_ref(&room), &t.username).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(post, path = "/api/v1/rooms/{room}/unban", tag = "rooms", summary = "Lift a ban (owner and admins)", params(RoomPath), request_body = Target, responses((status = 204, description = "unbanned")))]
pub async fn unban(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Path(room): Path<String>,
    Body(t): Body<Target>,
) -> ApiResult<Response> {
    app.chat.unban(&who, &room_ref(&room), &t.username).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(post, path = "/api/v1/rooms/{room}/owner", tag = "rooms", summary = "Hand the room to a current member (owner only); the previous owner becomes an admin", description = "Recorded as an `owner_changed` system message (sender: the previous owner, target: the new one).", params(RoomPath), request_body = Target, responses((status = 204, description = "done")))]
/// Hands the room to another member (owner only); the previous owner becomes an admin.
pub async fn transfer_owner(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Path(room): Path<String>,
    Body(t): Body<Target>,
) -> ApiResult<Response> {
    app.chat.transfer_ownership(&who, &room_ref(&room), &t.username).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(get, path = "/api/v1/rooms/{room}/bans", tag = "rooms", summary = "The room's bans (owner and admins)", params(RoomPath), responses((status = 200, description = "bans", body = BansW)))]
/// The room's bans (owner and admins).
pub async fn bans(State(app): State<Arc<AppState>>, Auth(who): Auth, Path(room): Path<String>) -> ApiResult<Response> {
    let bans = app.chat.bans(&who, &room_ref(&room)).await?;
    Ok(Json(BansW { bans: bans.iter().map(BanW::from).collect() }).into_response())
}

#[utoipa::path(get, path = "/api/v1/me/invites", tag = "rooms", summary = "Your pending invitations, oldest first", responses((status = 200, description = "invitations", body = InvitesW)))]
/// The caller's pending invitations, oldest first.
pub async fn my_invites(State(app): State<Arc<AppState>>, Auth(who): Auth) -> ApiResult<Response> {
    let invites = app.chat.invites(&who).await?;
    Ok(Json(InvitesW { invites: invites.iter().map(InviteW::from).collect() }).into_response())
}

#[utoipa::path(post, path = "/api/v1/me/invites/{room}/accept", tag = "rooms", summary = "Accept an invitation: you join the room", params(RoomPath), responses((status = 200, description = "the room joined", body = RoomW), (status = 404, description = "`invite_not_found`: no invitation of yours into that room (the same answer for every room)", body = ErrorW)))]
/// Accepts an invitation: the caller joins the room.
pub async fn accept_invite(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Path(room): Path<String>,
) -> ApiResult<Response> {
    let room = app.chat.accept_invite(&who, &room_ref(&room)).await?;
    Ok(Json(RoomW::from(&room)).into_response())
}

#[utoipa::path(post, path = "/api/v1/me/invites/{room}/decline", tag = "rooms", summary = "Decline an invitation", params(RoomPath), responses((status = 204, description = "declined"), (status = 404, description = "`invite_not_found`: no invitation of yours into that room (the same answer for every room)", body = ErrorW)))]
pub async fn decline_invite(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Path(room): Path<String>,
) -> ApiResult<Response> {
    app.chat.decline_invite(&who, &room_ref(&room)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(post, path = "/api/v1/rooms/{room}/roles", tag = "rooms", summary = "Make a member an admin or a plain member (owner only)", params(RoomPath), request_body = SetRole, responses((status = 204, description = "role set")))]
pub async fn set_role(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Path(room): Path<String>,
    Body(req): Body<SetRole>,
) -> ApiResult<Response> {
    let role = Role::parse_assignable(&req.role)?;
    app.chat.set_role(&who, &room_ref(&room), &req.username, role).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(post, path = "/api/v1/rooms/{room}/read", tag = "messages", summary = "Move your read marker forward", params(RoomPath), request_body = ReadReq, responses((status = 200, description = "the read marker now", body = ReadW)))]
pub async fn mark_read(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Path(room): Path<String>,
    Body(req): Body<ReadReq>,
) -> ApiResult<Response> {
    let (room, seq) = app.chat.mark_read(&who, &room_ref(&room), req.seq).await?;
    Ok(Json(ReadW { room: room.0, seq }).into_response())
}

#[utoipa::path(post, path = "/api/v1/rooms/{room}/typing", tag = "messages", summary = "Say you are typing (ephemeral; at most once per 2 s is forwarded)", params(RoomPath), responses((status = 204, description = "told")))]
pub async fn typing(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Path(room): Path<String>,
) -> ApiResult<Response> {
    app.chat.typing(&who, &room_ref(&room)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(get, path = "/api/v1/rooms/{room}/typing", tag = "messages", summary = "Who is typing now", params(RoomPath), responses((status = 200, description = "user ids", body = TypingW)))]
pub async fn typing_now(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Path(room): Path<String>,
) -> ApiResult<Response> {
    let users = app.chat.typing_in(&who, &room_ref(&room)).await?;
    Ok(Json(TypingW { users: users.iter().map(|u| u.0).collect() }).into_response())
}

#[utoipa::path(patch, path = "/api/v1/rooms/{room}/messages/{seq}", tag = "messages", summary = "Edit your message", params(MessagePath), request_body = EditReq, responses((status = 200, description = "the edited message", body = MessageW)))]
pub async fn edit_message(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Path((room, seq)): Path<(String, String)>,
    Body(req): Body<EditReq>,
) -> ApiResult<Response> {
    let seq = seq_param(&seq)?;
    let body = MessageBody::parse(&req.body, app.chat.limits.max_message_bytes)?;
    let m = app.chat.edit(&who, &room_ref(&room), seq, body).await?;
    Ok(Json(MessageW::from(&*m)).into_response())
}

#[utoipa::path(delete, path = "/api/v1/rooms/{room}/messages/{seq}", tag = "messages", summary = "Delete a message (its author, the owner or admins)", params(MessagePath), responses((status = 204, description = "deleted")))]
pub async fn delete_message(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Path((room, seq)): Path<(String, String)>,
) -> ApiResult<Response> {
    let seq = seq_param(&seq)?;
    app.chat.delete(&who, &room_ref(&room), seq).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn webhook_w(h: &Webhook) -> WebhookW<'_> {
    WebhookW {
        id: h.id,
        room: h.room.0,
        url: &h.url,
        created_by: h.created_by.0,
        created_at: h.created_at,
        secret: None,
    }
}

#[utoipa::path(post, path = "/api/v1/rooms/{room}/webhooks", tag = "webhooks", summary = "Register a webhook (owner and admins); the one answer that shows its secret", params(RoomPath), request_body = NewWebhook, responses((status = 201, description = "the webhook, with `secret`", body = WebhookW)))]
/// Registers a webhook: the one answer that shows its signing secret.
pub async fn add_webhook(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Path(room): Path<String>,
    Body(req): Body<NewWebhook>,
) -> ApiResult<Response> {
    let hook = app.chat.add_webhook(&who, &room_ref(&room), WebhookUrl::parse(&req.url)?).await?;
    let body = WebhookW { secret: Some(&hook.secret), ..webhook_w(&hook) };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[utoipa::path(get, path = "/api/v1/rooms/{room}/webhooks", tag = "webhooks", summary = "The room's webhooks (owner and admins)", params(RoomPath), responses((status = 200, description = "webhooks, without secrets", body = WebhooksW)))]
pub async fn webhooks(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Path(room): Path<String>,
) -> ApiResult<Response> {
    let hooks = app.chat.webhooks(&who, &room_ref(&room)).await?;
    Ok(Json(WebhooksW { webhooks: hooks.iter().map(webhook_w).collect() }).into_response())
}

#[utoipa::path(delete, path = "/api/v1/rooms/{room}/webhooks/{id}", tag = "webhooks", summary = "Remove a webhook (owner and admins)", params(WebhookPath), responses((status = 204, description = "removed")))]
pub async fn delete_webhook(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Path((room, id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let id: i64 = id.parse().map_err(|_| crate::core::error::Error::WebhookNotFound)?;
    app.chat.remove_webhook(&who, &room_ref(&room), id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(get, path = "/api/v1/rooms/{room}/webhooks/dead", tag = "webhooks", summary = "Deliveries that failed every attempt (owner and admins)", params(RoomPath), responses((status = 200, description = "the dead-letter list, newest first", body = DeadDeliveriesW)))]
/// Deliveries to this room's webhooks that failed every attempt (the dead-letter list, newest first).
pub async fn dead_webhook_deliveries(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Path(room): Path<String>,
) -> ApiResult<Response> {
    let room = app.chat.moderated(&who, &room_ref(&room)).await?;
    let dead =
        crate::jobs::webhook::dead_deliveries(&app.jobs, room.id).await.map_err(crate::core::error::Error::internal)?;
    let deliveries = dead.iter().map(crate::jobs::webhook::dead_delivery).collect();
    Ok(Json(DeadDeliveriesW { deliveries }).into_response())
}
