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
use super::wire::{AckW, BanW, HistoryW, InviteW, MemberW, MessageW, RoomViewW, RoomW, SearchResultsW, UserW};
use crate::core::domain::*;
use axum::extract::ConnectInfo;

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

fn seq_param(s: &str) -> Result<Seq, crate::core::error::Error> {
    s.parse()
        .map_err(|_| crate::core::error::Error::BadRequest("the message sequence number must be an integer".into()))
}

fn room_ref(s: &str) -> RoomRef {
    RoomRef::parse(s)
}

#[derive(Deserialize)]
pub struct RegisterReq {
    username: String,
    password: String,
    display_name: Option<String>,
}

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

#[derive(Deserialize)]
pub struct LoginReq {
    username: String,
    password: String,
}

pub async fn login(
    State(app): State<Arc<AppState>>,
    ConnectInfo(ClientAddr(peer)): ConnectInfo<ClientAddr>,
    Body(req): Body<LoginReq>,
) -> ApiResult<Response> {
    app.chat.auth_attempt(peer.ip())?;
    let ok = app.chat.login(&req.username, &req.password).await?;
    let body = serde_json::json!({ "token": ok.token, "expires_at": ok.expires_at, "user": UserW::from(&ok.user) });
    let mut resp = Json(body).into_response();
    // HttpOnly + SameSite=Strict: the web page authenticates without script ever holding the token.
    let cookie =
        format!("{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}", ok.token, app.chat.token_ttl().as_secs());
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

pub async fn logout(State(app): State<Arc<AppState>>, Auth(who): Auth) -> ApiResult<Response> {
    app.chat.logout(&who).await?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("parley_token=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    );
    Ok(resp)
}

pub async fn me(Auth(who): Auth) -> ApiResult<Response> {
    Ok(Json(UserW::from(&who.user)).into_response())
}

#[derive(Deserialize)]
pub struct PatchMe {
    display_name: String,
}

pub async fn patch_me(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Body(req): Body<PatchMe>,
) -> ApiResult<Response> {
    let user = app.chat.set_display_name(&who, DisplayName::parse(&req.display_name)?).await?;
    Ok(Json(UserW::from(&user)).into_response())
}

fn rooms_json(rooms: &[Room]) -> Response {
    Json(serde_json::json!({ "rooms": rooms.iter().map(RoomW::from).collect::<Vec<_>>() })).into_response()
}

pub async fn my_rooms(State(app): State<Arc<AppState>>, Auth(who): Auth) -> ApiResult<Response> {
    let views = app.chat.my_rooms(&who).await?;
    Ok(Json(serde_json::json!({ "rooms": views.iter().map(RoomViewW::from).collect::<Vec<_>>() })).into_response())
}

/// Direct conversations only, newest activity first.
pub async fn my_dms(State(app): State<Arc<AppState>>, Auth(who): Auth) -> ApiResult<Response> {
    let mut views: Vec<RoomView> =
        app.chat.my_rooms(&who).await?.into_iter().filter(|v| v.room.kind == RoomKind::Direct).collect();
    views.sort_by_key(|v| std::cmp::Reverse(v.last_message.as_ref().map_or(0, |m| m.ts)));
    Ok(Json(serde_json::json!({ "conversations": views.iter().map(RoomViewW::from).collect::<Vec<_>>() }))
        .into_response())
}

#[derive(Deserialize)]
pub struct OpenDm {
    username: String,
}

pub async fn open_dm(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Body(req): Body<OpenDm>,
) -> ApiResult<Response> {
    let (room, peer) = app.chat.open_direct(&who, &req.username).await?;
    Ok(Json(serde_json::json!({ "room": RoomW::from(&room), "peer": UserW::from(&peer) })).into_response())
}

pub async fn public_rooms(State(app): State<Arc<AppState>>, Auth(_who): Auth) -> ApiResult<Response> {
    Ok(rooms_json(&app.chat.public_rooms().await?))
}

#[derive(Deserialize)]
pub struct CreateRoom {
    name: String,
    visibility: Option<String>,
}

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

pub async fn get_room(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Path(room): Path<String>,
) -> ApiResult<Response> {
    let room = app.chat.room(&who, &room_ref(&room)).await?;
    Ok(Json(RoomW::from(&room)).into_response())
}

pub async fn members(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Path(room): Path<String>,
) -> ApiResult<Response> {
    let members = app.chat.members(&who, &room_ref(&room)).await?;
    Ok(Json(serde_json::json!({ "members": members.iter().map(MemberW::from).collect::<Vec<_>>() })).into_response())
}

pub async fn join(State(app): State<Arc<AppState>>, Auth(who): Auth, Path(room): Path<String>) -> ApiResult<Response> {
    let room = app.chat.join(&who, &room_ref(&room)).await?;
    Ok(Json(RoomW::from(&room)).into_response())
}

pub async fn leave(State(app): State<Arc<AppState>>, Auth(who): Auth, Path(room): Path<String>) -> ApiResult<Response> {
    app.chat.leave(&who, &room_ref(&room)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
pub struct InviteReq {
    username: String,
}

pub async fn invite(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Path(room): Path<String>,
    Body(req): Body<InviteReq>,
) -> ApiResult<Response> {
    app.chat.invite(&who, &room_ref(&room), &req.username).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
pub struct HistoryParams {
    before: Option<i64>,
    after: Option<i64>,
    limit: Option<u32>,
}

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

#[derive(Deserialize)]
pub struct SearchParams {
    q: String,
    cursor: Option<String>,
    limit: Option<u32>,
}

/// `GET /api/v1/search?q=…&cursor=…&limit=…`: the query language is in `q` (docs/PROTOCOL.md, "Search").
pub async fn search(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Params(p): Params<SearchParams>,
) -> ApiResult<Response> {
    let found = app.chat.search(&who, &p.q, p.cursor.as_deref(), p.limit).await?;
    Ok(Json(SearchResultsW::from(&found)).into_response())
}

#[derive(Deserialize)]
pub struct SendReq {
    body: String,
    client_id: Option<String>,
}

pub async fn send(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Path(room): Path<String>,
    Body(req): Body<SendReq>,
) -> ApiResult<Response> {
    let body = MessageBody::parse(&req.body, app.chat.limits.max_message_bytes)?;
    let client_id = req.client_id.as_deref().map(ClientMsgId::parse).transpose()?;
    let ack = app.chat.send(&who, &room_ref(&room), body, client_id).await?;
    Ok((StatusCode::CREATED, Json(AckW::from(&ack))).into_response())
}

#[derive(Deserialize)]
pub struct PatchRoom {
    name: Option<String>,
    topic: Option<String>,
    /// `public` or `private` (owner only).
    visibility: Option<String>,
    /// Absent: unchanged; `null`: keep forever; a number: seconds.
    #[serde(default, deserialize_with = "present")]
    retention_secs: Option<Option<i64>>,
}

/// Tells a present `null` (`Some(None)`) from an absent field (`None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
    Option::<i64>::deserialize(d).map(Some)
}

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

#[derive(Deserialize)]
pub struct Target {
    username: String,
}

pub async fn kick(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Path(room): Path<String>,
    Body(t): Body<Target>,
) -> ApiResult<Response> {
    app.chat.kick(&who, &room_ref(&room), &t.username).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn ban(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Path(room): Path<String>,
    Body(t): Body<Target>,
) -> ApiResult<Response> {
    app.chat.ban(&who, &room_ref(&room), &t.username).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn unban(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Path(room): Path<String>,
    Body(t): Body<Target>,
) -> ApiResult<Response> {
    app.chat.unban(&who, &room_ref(&room), &t.username).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

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

/// The room's bans (owner and admins).
pub async fn bans(State(app): State<Arc<AppState>>, Auth(who): Auth, Path(room): Path<String>) -> ApiResult<Response> {
    let bans = app.chat.bans(&who, &room_ref(&room)).await?;
    Ok(Json(serde_json::json!({ "bans": bans.iter().map(BanW::from).collect::<Vec<_>>() })).into_response())
}

/// The caller's pending invitations, oldest first.
pub async fn my_invites(State(app): State<Arc<AppState>>, Auth(who): Auth) -> ApiResult<Response> {
    let invites = app.chat.invites(&who).await?;
    Ok(Json(serde_json::json!({ "invites": invites.iter().map(InviteW::from).collect::<Vec<_>>() })).into_response())
}

/// Accepts an invitation: the caller joins the room.
pub async fn accept_invite(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Path(room): Path<String>,
) -> ApiResult<Response> {
    let room = app.chat.accept_invite(&who, &room_ref(&room)).await?;
    Ok(Json(RoomW::from(&room)).into_response())
}

pub async fn decline_invite(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Path(room): Path<String>,
) -> ApiResult<Response> {
    app.chat.decline_invite(&who, &room_ref(&room)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
pub struct SetRole {
    username: String,
    role: String,
}

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

#[derive(Deserialize)]
pub struct ReadReq {
    seq: Seq,
}

pub async fn mark_read(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Path(room): Path<String>,
    Body(req): Body<ReadReq>,
) -> ApiResult<Response> {
    let (room, seq) = app.chat.mark_read(&who, &room_ref(&room), req.seq).await?;
    Ok(Json(serde_json::json!({ "room": room.0, "seq": seq })).into_response())
}

pub async fn typing(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Path(room): Path<String>,
) -> ApiResult<Response> {
    app.chat.typing(&who, &room_ref(&room)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn typing_now(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Path(room): Path<String>,
) -> ApiResult<Response> {
    let users = app.chat.typing_in(&who, &room_ref(&room)).await?;
    Ok(Json(serde_json::json!({ "users": users.iter().map(|u| u.0).collect::<Vec<_>>() })).into_response())
}

#[derive(Deserialize)]
pub struct EditReq {
    body: String,
}

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

pub async fn delete_message(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Path((room, seq)): Path<(String, String)>,
) -> ApiResult<Response> {
    let seq = seq_param(&seq)?;
    app.chat.delete(&who, &room_ref(&room), seq).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn webhook_json(h: &Webhook) -> serde_json::Value {
    serde_json::json!({ "id": h.id, "room": h.room.0, "url": h.url, "created_by": h.created_by.0, "created_at": h.created_at })
}

#[derive(Deserialize)]
pub struct NewWebhook {
    url: String,
}

/// Registers a webhook: the one answer that shows its signing secret.
pub async fn add_webhook(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Path(room): Path<String>,
    Body(req): Body<NewWebhook>,
) -> ApiResult<Response> {
    let hook = app.chat.add_webhook(&who, &room_ref(&room), WebhookUrl::parse(&req.url)?).await?;
    let mut body = webhook_json(&hook);
    body["secret"] = serde_json::Value::String(hook.secret.clone());
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

pub async fn webhooks(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Path(room): Path<String>,
) -> ApiResult<Response> {
    let hooks = app.chat.webhooks(&who, &room_ref(&room)).await?;
    Ok(Json(serde_json::json!({ "webhooks": hooks.iter().map(webhook_json).collect::<Vec<_>>() })).into_response())
}

pub async fn delete_webhook(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Path((room, id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let id: i64 = id.parse().map_err(|_| crate::core::error::Error::WebhookNotFound)?;
    app.chat.remove_webhook(&who, &room_ref(&room), id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Deliveries to this room's webhooks that failed every attempt (the dead-letter list, newest first).
pub async fn dead_webhook_deliveries(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Path(room): Path<String>,
) -> ApiResult<Response> {
    let room = app.chat.moderated(&who, &room_ref(&room)).await?;
    let dead =
        crate::jobs::webhook::dead_deliveries(&app.jobs, room.id).await.map_err(crate::core::error::Error::internal)?;
    Ok(Json(serde_json::json!({ "deliveries": dead })).into_response())
}
