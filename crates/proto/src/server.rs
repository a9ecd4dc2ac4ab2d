//! What the server sends, as it encodes it: the JSON shapes of `docs/PROTOCOL.md` (REST bodies, WebSocket
//! frames, SSE events). Shapes borrow their strings, so encoding copies nothing but the output bytes; the
//! server builds them from its domain values (`src/http/wire.rs`). Clients decode the same JSON with the
//! owned shapes of [`crate::client`]; `tests/round_trip.rs` keeps the two in step.
//!
//! One file past 600 lines on purpose: the server frame enum (serde-tagged, so every variant lives in
//! one enum) and the shapes it embeds are the protocol's single vocabulary, read side by side with
//! `docs/PROTOCOL.md`; split, a new frame would be spread over several files.

use std::borrow::Cow;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;

/// What an error must tell the wire: its stable code, the message a client may see, and when to retry.
/// The server's error enum implements it.
pub trait WireError {
    fn code(&self) -> &str;
    fn public_message(&self) -> Cow<'_, str>;
    fn retry_after(&self) -> Option<Duration>;
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = User))]
pub struct UserW<'a> {
    pub id: i64,
    pub username: &'a str,
    pub display_name: &'a str,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = Member))]
pub struct MemberW<'a> {
    #[serde(flatten)]
    pub user: UserW<'a>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "member"))]
    /// `owner`, `admin` or `member`.
    pub role: &'static str,
    pub online: bool,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = Room))]
pub struct RoomW<'a> {
    pub id: i64,
    pub name: &'a str,
    /// `group` or `direct`.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "group"))]
    pub kind: &'static str,
    /// `public` or `private`.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "public"))]
    pub visibility: &'static str,
    pub topic: &'a str,
    pub created_by: i64,
    pub last_seq: i64,
    pub member_count: i64,
    /// Messages older than this many seconds are purged; `null` keeps everything.
    pub retention_secs: Option<i64>,
}

/// An invitation, as its invitee sees it.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = Invite))]
pub struct InviteW<'a> {
    pub room: RoomW<'a>,
    pub invited_by: UserW<'a>,
    pub at: i64,
}

/// A ban, as the room's moderators see it.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = Ban))]
pub struct BanW<'a> {
    pub user: UserW<'a>,
    pub banned_at: i64,
}

/// A room as one member sees it.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = RoomView))]
pub struct RoomViewW<'a> {
    #[serde(flatten)]
    pub room: RoomW<'a>,
    /// Your role: `owner`, `admin` or `member`.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "member"))]
    pub role: &'static str,
    pub last_read: i64,
    pub unread: i64,
    pub mentions: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<UserW<'a>>,
    pub last_message: Option<MessageW<'a>>,
    pub notify: &'static str,
    pub muted: bool,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = Message))]
pub struct MessageW<'a> {
    pub room: i64,
    pub seq: i64,
    /// `text`, or a system kind (`create`, `join`, `leave`, `invite`, `kick`, `ban`, `unban`, `role`, `rename`,
    /// `topic`, …; docs/PROTOCOL.md §2).
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "text"))]
    pub kind: &'static str,
    /// `null` for system messages without an actor.
    pub sender: Option<UserW<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<UserW<'a>>,
    pub body: &'a str,
    pub client_id: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub mentions: Vec<i64>,
    pub ts: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<i64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub files: Vec<FileW<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quote: Option<QuoteW<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_reply_ts: Option<i64>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub reactions: Vec<ReactionW<'a>>,
}

/// An uploaded file as clients see it (never its blob address or uploader-only details).
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = File))]
pub struct FileW<'a> {
    pub id: &'a str,
    pub room: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<i64>,
    pub name: &'a str,
    pub size: i64,
    pub content_type: &'a str,
    /// Whether the page may show it inline (PNG, JPEG, GIF, WebP); everything else downloads.
    pub inline: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<i64>,
    /// Where its bytes are (`GET`, same authentication as the API; ranges accepted).
    pub url: String,
    /// A server-made thumbnail (inline images only; absent when none could be made).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thumbnail: Option<ThumbnailW<'a>>,
}

/// A file's thumbnail: at most 320 pixels on its longer side, PNG or JPEG.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = Thumbnail))]
pub struct ThumbnailW<'a> {
    /// `GET`, same authentication and access as the file.
    pub url: String,
    pub width: i64,
    pub height: i64,
    pub content_type: &'a str,
}

/// A reply's quote of its parent.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QuoteW<'a> {
    pub seq: i64,
    pub sender: Option<UserW<'a>>,
    pub excerpt: &'a str,
    pub deleted: bool,
}

/// One emoji's reactions on a message.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReactionW<'a> {
    pub emoji: &'a str,
    pub count: usize,
    pub users: Vec<i64>,
}

/// A pinned message.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PinW<'a> {
    pub message: MessageW<'a>,
    pub pinned_by: UserW<'a>,
    pub at: i64,
}

/// A followed thread (`GET /me/threads`).
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ThreadSummaryW {
    pub room: i64,
    pub seq: i64,
    pub reply_count: i64,
    pub last_reply_ts: Option<i64>,
    pub unread: i64,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = Ack))]
pub struct AckW<'a> {
    pub room: i64,
    pub seq: i64,
    pub ts: i64,
    pub client_id: Option<&'a str>,
    pub duplicate: bool,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = History))]
pub struct HistoryW<'a> {
    pub messages: Vec<MessageW<'a>>,
    pub has_more: bool,
}

/// One search hit: where it is (room, seq: open the room there) and a plain-text snippet whose matched
/// words are the `highlights` ranges, `[start, end)` in characters (Unicode scalar values) of `snippet`.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchHitW<'a> {
    pub room: i64,
    pub room_name: &'a str,
    pub room_kind: &'static str,
    pub seq: i64,
    pub message: MessageW<'a>,
    pub snippet: &'a str,
    pub highlights: Vec<[usize; 2]>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchResultsW<'a> {
    pub hits: Vec<SearchHitW<'a>>,
    /// Pass back as `cursor` for the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<&'a str>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = ErrorBody))]
pub struct ErrorBodyW<'a> {
    pub code: &'a str,
    pub message: &'a str,
    /// For refusals that say when to try again (`rate_limited`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

/// Frames the server sends on a WebSocket.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame<'a> {
    Hello {
        v: u32,
        user: UserW<'a>,
        rooms: Vec<RoomViewW<'a>>,
    },
    Message {
        message: MessageW<'a>,
    },
    MessageUpdated {
        message: MessageW<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        req: Option<&'a str>,
    },
    RoomUpdated {
        room: RoomW<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        req: Option<&'a str>,
    },
    Presence {
        user: UserW<'a>,
        online: bool,
    },
    Typing {
        room: i64,
        user: UserW<'a>,
        expires_ms: u64,
    },
    Read {
        room: i64,
        seq: i64,
        #[serde(skip_serializing_if = "Option::is_none")]
        req: Option<&'a str>,
    },
    UserUpdated {
        user: UserW<'a>,
    },
    /// You were invited into a room.
    Invited {
        #[serde(flatten)]
        invite: InviteW<'a>,
    },
    /// Your pending invitations (reply to `invites`).
    Invites {
        invites: Vec<InviteW<'a>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        req: Option<&'a str>,
    },
    Recovered {
        room: i64,
        seq: i64,
        #[serde(skip_serializing_if = "Option::is_none")]
        req: Option<&'a str>,
    },
    Ok {
        #[serde(skip_serializing_if = "Option::is_none")]
        req: Option<&'a str>,
    },
    Ack {
        #[serde(flatten)]
        ack: AckW<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        req: Option<&'a str>,
    },
    Joined {
        room: RoomW<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        req: Option<&'a str>,
    },
    Left {
        room: i64,
        #[serde(skip_serializing_if = "Option::is_none")]
        req: Option<&'a str>,
    },
    History {
        room: i64,
        #[serde(flatten)]
        page: HistoryW<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        req: Option<&'a str>,
    },
    Pong {
        #[serde(skip_serializing_if = "Option::is_none")]
        req: Option<&'a str>,
    },
    Reactions {
        room: i64,
        seq: i64,
        reactions: Vec<ReactionW<'a>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        req: Option<&'a str>,
    },
    ThreadUpdated {
        room: i64,
        seq: i64,
        reply_count: i64,
        last_reply_ts: Option<i64>,
    },
    Notify {
        room: i64,
        notify: &'static str,
        muted: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        req: Option<&'a str>,
    },
    /// Reply to `thread`: the root and a page of its replies.
    Thread {
        room: i64,
        root: MessageW<'a>,
        #[serde(flatten)]
        page: HistoryW<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        req: Option<&'a str>,
    },
    Pins {
        room: i64,
        pins: Vec<PinW<'a>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        req: Option<&'a str>,
    },
    /// Reply to `search`.
    SearchResults {
        #[serde(flatten)]
        results: SearchResultsW<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        req: Option<&'a str>,
    },
    Error {
        code: &'a str,
        message: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        req: Option<&'a str>,
    },
}

impl ServerFrame<'_> {
    pub fn encode(&self) -> Bytes {
        // Serialising these types cannot fail: no maps with non-string keys, no failing Serialize impls.
        Bytes::from(serde_json::to_vec(self).unwrap_or_default())
    }

    /// The `error` frame of `e` (the server's error type, through [`WireError`]).
    pub fn error(e: &impl WireError, req: Option<&str>) -> Bytes {
        let retry_after_ms = e.retry_after().map(retry_ms);
        ServerFrame::Error { code: e.code(), message: &e.public_message(), retry_after_ms, req }.encode()
    }

    /// An error frame for refusals that only exist on the WebSocket (`bad_frame`, `unknown_type`).
    pub fn error_with_code(code: &str, message: &str, req: Option<&str>) -> Bytes {
        ServerFrame::Error { code, message, retry_after_ms: None, req }.encode()
    }
}

/// Milliseconds, rounded up so a client never retries too early.
pub fn retry_ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros().div_ceil(1000)).unwrap_or(u64::MAX).max(1)
}
