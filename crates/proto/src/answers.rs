//! REST answers that wrap the server's shapes (`crate::server`): the login answer, the lists (`{"rooms": …}`,
//! `{"members": …}`, …), the read marker and who is typing. Borrowed `Serialize` shapes like the rest of
//! [`crate::server`], with utoipa schemas behind the `openapi` feature; their doc comments are the schemas'
//! descriptions in docs/openapi.json.

use serde::Serialize;

use crate::server::{BanW, InviteW, MemberW, RoomViewW, RoomW, UserW};

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
