//! REST answers that wrap the server's shapes (`crate::server`): the login answer, the lists (`{"rooms": …}`,
//! `{"members": …}`, …), the read marker, who is typing, the conversation answers (reactions, threads, pins,
//! notification levels) and the webhook answers. Borrowed `Serialize` shapes like the rest of
//! [`crate::server`], with utoipa schemas behind the `openapi` feature; their doc comments are the schemas'
//! descriptions in docs/openapi.json.

use serde::Serialize;

use crate::server::{BanW, InviteW, MemberW, MessageW, PinW, ReactionW, RoomViewW, RoomW, ThreadSummaryW, UserW};

/// A new session.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginW<'a> {
    /// Bearer token (JWT) bound to a server-side session; also set as the HttpOnly cookie `parley_token`.
    pub token: String,
    /// When the token expires, ms since the Unix epoch.
    pub expires_at: i64,
    pub user: UserW<'a>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoomsW<'a> {
    pub rooms: Vec<RoomW<'a>>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoomViewsW<'a> {
    pub rooms: Vec<RoomViewW<'a>>,
}

/// Direct conversations, newest activity first.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConversationsW<'a> {
    pub conversations: Vec<RoomViewW<'a>>,
}

/// A direct conversation and its peer.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DirectW<'a> {
    pub room: RoomW<'a>,
    pub peer: UserW<'a>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MembersW<'a> {
    pub members: Vec<MemberW<'a>>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BansW<'a> {
    pub bans: Vec<BanW<'a>>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InvitesW<'a> {
    pub invites: Vec<InviteW<'a>>,
}

/// The read marker after the update (it never moves back).
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReadW {
    pub room: i64,
    pub seq: i64,
}

/// Ids of the users typing in the room now.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TypingW {
    pub users: Vec<i64>,
}

/// A message's reactions after adding or taking back one.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReactionsW<'a> {
    pub room: i64,
    pub seq: i64,
    pub reactions: Vec<ReactionW<'a>>,
}

/// A thread: its root and a page of replies, ascending, paged like history.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ThreadW<'a> {
    pub root: MessageW<'a>,
    pub messages: Vec<MessageW<'a>>,
    pub has_more: bool,
}

/// The read position in a thread after the update.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ThreadReadW {
    pub room: i64,
    /// The thread's root message.
    pub thread: i64,
    pub seq: i64,
}

/// The threads you follow, latest reply first.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ThreadsW {
    pub threads: Vec<ThreadSummaryW>,
}

/// The room's pinned messages, newest first.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PinsW<'a> {
    pub pins: Vec<PinW<'a>>,
}

/// Your notification level and mute flag for a room after the update.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NotifyW<'a> {
    pub room: i64,
    pub notify: &'a str,
    pub muted: bool,
}

/// A webhook; `secret` (for `X-Parley-Signature`) only in the answer that created it.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = Webhook))]
pub struct WebhookW<'a> {
    pub id: i64,
    pub room: i64,
    pub url: &'a str,
    pub created_by: i64,
    /// ms since the Unix epoch.
    pub created_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<&'a str>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhooksW<'a> {
    pub webhooks: Vec<WebhookW<'a>>,
}

/// A webhook delivery that failed every attempt.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeadDeliveryW<'a> {
    /// The delivery id (also sent as `X-Parley-Delivery`).
    pub delivery: &'a str,
    pub webhook: Option<i64>,
    pub seq: Option<i64>,
    pub attempts: u32,
    /// The last failure.
    pub error: Option<&'a str>,
    /// ms since the Unix epoch.
    pub enqueued_at: i64,
}

/// Deliveries that failed every attempt, newest first (docs/PROTOCOL.md §7).
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeadDeliveriesW<'a> {
    pub deliveries: Vec<DeadDeliveryW<'a>>,
}
