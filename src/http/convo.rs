//! REST handlers of issue 14: reactions, threads, pins, notification levels. Same shape as `api.rs`:
//! parse at the boundary, call the chat service, encode the answer.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::api::{Body, HistoryParams, Params, room_ref, seq_param};
use super::auth::Auth;
use super::error::ApiResult;
use super::wire::{HistoryW, MessageW, PinW, ThreadSummaryW, reactions_w};
use crate::core::domain::*;
use parley_proto::answers::{NotifyW, PinsW, ReactionsW, ThreadReadW, ThreadW, ThreadsW};
use parley_proto::rest::{NotifyReq, SeqReq};

async fn react(
    app: &AppState,
    who: &crate::core::chat::Identity,
    room: &str,
    seq: &str,
    emoji: &str,
    add: bool,
) -> ApiResult<Response> {
    let seq = seq_param(seq)?;
    let emoji = Emoji::parse(emoji)?;
    let (room, reactions) = app.chat.react(who, &room_ref(room), seq, &emoji, add).await?;
    Ok(Json(ReactionsW { room: room.0, seq, reactions: reactions_w(&reactions) }).into_response())
}

/// `PUT /rooms/{room}/messages/{seq}/reactions/{emoji}`: idempotent.
#[utoipa::path(put, path = "/api/v1/rooms/{room}/messages/{seq}/reactions/{emoji}", tag = "messages", summary = "Add your reaction (idempotent)", params(crate::http::openapi::ReactionPath), responses((status = 200, description = "`{\"room\",\"seq\",\"reactions\":[Reaction]}` the message's reactions now", body = ReactionsW)))]
pub async fn add_reaction(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Path((room, seq, emoji)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    react(&app, &who, &room, &seq, &emoji, true).await
}

/// `DELETE /rooms/{room}/messages/{seq}/reactions/{emoji}`: idempotent.
#[utoipa::path(delete, path = "/api/v1/rooms/{room}/messages/{seq}/reactions/{emoji}", tag = "messages", summary = "Take your reaction back (idempotent)", params(crate::http::openapi::ReactionPath), responses((status = 200, description = "`{\"room\",\"seq\",\"reactions\":[Reaction]}` the message's reactions now", body = ReactionsW)))]
pub async fn remove_reaction(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Path((room, seq, emoji)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    react(&app, &who, &room, &seq, &emoji, false).await
}

/// `GET /rooms/{room}/threads/{seq}?before&after&limit`.
#[utoipa::path(get, path = "/api/v1/rooms/{room}/threads/{seq}", tag = "messages", summary = "Read a thread: its root and replies, ascending, paged like history", params(crate::http::openapi::MessagePath, HistoryParams), responses((status = 200, description = "`{\"root\": Message, \"messages\": [Message], \"has_more\"}`", body = ThreadW)))]
pub async fn thread(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Path((room, seq)): Path<(String, String)>,
    Params(p): Params<HistoryParams>,
) -> ApiResult<Response> {
    let seq = seq_param(&seq)?;
    let q = HistoryQuery::new(p.before, p.after, p.limit)?;
    let (_, root, page) = app.chat.thread(&who, &room_ref(&room), seq, q).await?;
    let page = HistoryW::from(&page);
    Ok(Json(ThreadW { root: MessageW::from(&*root), messages: page.messages, has_more: page.has_more }).into_response())
}

/// `POST /rooms/{room}/threads/{seq}/read {"seq"}`.
#[utoipa::path(post, path = "/api/v1/rooms/{room}/threads/{seq}/read", tag = "messages", summary = "Move your read position in a thread", params(crate::http::openapi::MessagePath), request_body = SeqReq, responses((status = 200, description = "`{\"room\",\"thread\",\"seq\"}` the position now", body = ThreadReadW)))]
pub async fn mark_thread_read(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Path((room, seq)): Path<(String, String)>,
    Body(req): Body<SeqReq>,
) -> ApiResult<Response> {
    let seq = seq_param(&seq)?;
    let (room, root, pos) = app.chat.mark_thread_read(&who, &room_ref(&room), seq, req.seq).await?;
    Ok(Json(ThreadReadW { room: room.0, thread: root, seq: pos }).into_response())
}

/// `GET /me/threads`.
#[utoipa::path(get, path = "/api/v1/me/threads", tag = "messages", summary = "The threads you follow, latest reply first", responses((status = 200, description = "`{\"threads\": [ThreadSummary]}`", body = ThreadsW)))]
pub async fn my_threads(State(app): State<Arc<AppState>>, Auth(who): Auth) -> ApiResult<Response> {
    let threads = app.chat.followed_threads(&who).await?;
    Ok(Json(ThreadsW { threads: threads.iter().map(ThreadSummaryW::from).collect() }).into_response())
}

/// `POST /rooms/{room}/pins {"seq"}`.
#[utoipa::path(post, path = "/api/v1/rooms/{room}/pins", tag = "rooms", summary = "Pin a message (owner and admins)", params(crate::http::openapi::RoomPath), request_body = SeqReq, responses((status = 204, description = "pinned (or already pinned)")))]
pub async fn pin(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Path(room): Path<String>,
    Body(req): Body<SeqReq>,
) -> ApiResult<Response> {
    app.chat.set_pinned(&who, &room_ref(&room), req.seq, true).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /rooms/{room}/pins/{seq}`.
#[utoipa::path(delete, path = "/api/v1/rooms/{room}/pins/{seq}", tag = "rooms", summary = "Unpin a message (owner and admins)", params(crate::http::openapi::MessagePath), responses((status = 204, description = "unpinned (or was not pinned)")))]
pub async fn unpin(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Path((room, seq)): Path<(String, String)>,
) -> ApiResult<Response> {
    let seq = seq_param(&seq)?;
    app.chat.set_pinned(&who, &room_ref(&room), seq, false).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /rooms/{room}/pins`.
#[utoipa::path(get, path = "/api/v1/rooms/{room}/pins", tag = "rooms", summary = "The room's pinned messages, newest first", params(crate::http::openapi::RoomPath), responses((status = 200, description = "`{\"pins\": [{\"message\": Message, \"pinned_by\": User, \"at\"}]}`", body = PinsW)))]
pub async fn pins(State(app): State<Arc<AppState>>, Auth(who): Auth, Path(room): Path<String>) -> ApiResult<Response> {
    let (_, pins) = app.chat.pins(&who, &room_ref(&room)).await?;
    Ok(Json(PinsW { pins: pins.iter().map(PinW::from).collect() }).into_response())
}

/// `PUT /rooms/{room}/notify {"level"?,"muted"?}`.
#[utoipa::path(put, path = "/api/v1/rooms/{room}/notify", tag = "rooms", summary = "Set your notification level and mute flag for a room", params(crate::http::openapi::RoomPath), request_body = NotifyReq, responses((status = 200, description = "`{\"room\",\"notify\",\"muted\"}`", body = NotifyW)))]
pub async fn set_notify(
    State(app): State<Arc<AppState>>,
    Auth(who): Auth,
    Path(room): Path<String>,
    Body(req): Body<NotifyReq>,
) -> ApiResult<Response> {
    let level = req.level.as_deref().map(NotifyLevel::parse).transpose()?;
    let (room, level, muted) = app.chat.set_notify(&who, &room_ref(&room), level, req.muted).await?;
    Ok(Json(NotifyW { room: room.0, notify: level.as_str(), muted }).into_response())
}
