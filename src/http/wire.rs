//! Wire types, version 1: the JSON shapes of `docs/PROTOCOL.md`, shared by REST, WebSocket and SSE.
//! Server-side shapes borrow from domain values, so encoding copies nothing but the output bytes.
//!
//! One file past 600 lines on purpose: the two frame enums (serde-tagged, so every variant lives in one
//! enum) and the shapes they embed are the protocol's single vocabulary, read side by side with
//! `docs/PROTOCOL.md`; split, a new frame would be spread over several files.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::core::chat::{Ack, SearchResults};
use crate::core::domain::{
    Ban, ConvoEvent, FileMeta, HistoryPage, Invite, Member, Message, Pin, Quote, Reaction, Room, RoomId, RoomRef,
    RoomView, Seq, ThreadSummary, User,
};
use crate::core::error::Error;
use crate::core::hub::HubEvent;

pub const PROTOCOL_VERSION: u32 = 1;
pub const SUBPROTOCOL: &str = "parley.v1";

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = User)]
pub struct UserW<'a> {
    pub id: i64,
    pub username: &'a str,
    pub display_name: &'a str,
}

impl<'a> From<&'a User> for UserW<'a> {
    fn from(u: &'a User) -> Self {
        UserW { id: u.id.0, username: &u.username, display_name: &u.display_name }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Member)]
pub struct MemberW<'a> {
    #[serde(flatten)]
    pub user: UserW<'a>,
    #[schema(value_type = String, example = "member")]
    /// `owner`, `admin` or `member`.
    pub role: &'static str,
    pub online: bool,
}

impl<'a> From<&'a (Member, bool)> for MemberW<'a> {
    fn from((m, online): &'a (Member, bool)) -> Self {
        MemberW { user: UserW::from(&m.user), role: m.role.as_str(), online: *online }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Room)]
pub struct RoomW<'a> {
    pub id: i64,
    pub name: &'a str,
    /// `group` or `direct`.
    #[schema(value_type = String, example = "group")]
    pub kind: &'static str,
    /// `public` or `private`.
    #[schema(value_type = String, example = "public")]
    pub visibility: &'static str,
    pub topic: &'a str,
    pub created_by: i64,
    pub last_seq: i64,
    pub member_count: i64,
    /// Messages older than this many seconds are purged; `null` keeps everything.
    pub retention_secs: Option<i64>,
}

impl<'a> From<&'a Room> for RoomW<'a> {
    fn from(r: &'a Room) -> Self {
        RoomW {
            id: r.id.0,
            name: &r.name,
            kind: r.kind.as_str(),
            visibility: r.visibility.as_str(),
            topic: &r.topic,
            created_by: r.created_by.0,
            last_seq: r.last_seq,
            member_count: r.member_count,
            retention_secs: r.retention_secs,
        }
    }
}

/// An invitation, as its invitee sees it.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Invite)]
pub struct InviteW<'a> {
    pub room: RoomW<'a>,
    pub invited_by: UserW<'a>,
    pub at: i64,
}

impl<'a> From<&'a Invite> for InviteW<'a> {
    fn from(i: &'a Invite) -> Self {
        InviteW { room: RoomW::from(&i.room), invited_by: UserW::from(&i.invited_by), at: i.at }
    }
}

/// A ban, as the room's moderators see it.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Ban)]
pub struct BanW<'a> {
    pub user: UserW<'a>,
    pub banned_at: i64,
}

impl<'a> From<&'a Ban> for BanW<'a> {
    fn from(b: &'a Ban) -> Self {
        BanW { user: UserW::from(&b.user), banned_at: b.banned_at }
    }
}

/// A room as one member sees it.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = RoomView)]
pub struct RoomViewW<'a> {
    #[serde(flatten)]
    pub room: RoomW<'a>,
    /// Your role: `owner`, `admin` or `member`.
    #[schema(value_type = String, example = "member")]
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

impl<'a> From<&'a RoomView> for RoomViewW<'a> {
    fn from(v: &'a RoomView) -> Self {
        RoomViewW {
            room: RoomW::from(&v.room),
            role: v.role.as_str(),
            last_read: v.last_read,
            unread: v.unread,
            mentions: v.mentions,
            peer: v.peer.as_ref().map(UserW::from),
            last_message: v.last_message.as_deref().map(MessageW::from),
            notify: v.notify.as_str(),
            muted: v.muted,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Message)]
pub struct MessageW<'a> {
    pub room: i64,
    pub seq: i64,
    /// `text`, or a system kind (`create`, `join`, `leave`, `invite`, `kick`, `ban`, `unban`, `role`, `rename`,
    /// `topic`, …; docs/PROTOCOL.md §2).
    #[schema(value_type = String, example = "text")]
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
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = File)]
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
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Thumbnail)]
pub struct ThumbnailW<'a> {
    /// `GET`, same authentication and access as the file.
    pub url: String,
    pub width: i64,
    pub height: i64,
    pub content_type: &'a str,
}

impl<'a> From<&'a FileMeta> for FileW<'a> {
    fn from(f: &'a FileMeta) -> Self {
        FileW {
            id: &f.id,
            room: f.room.0,
            seq: f.seq,
            name: &f.name,
            size: f.size,
            content_type: &f.content_type,
            inline: f.inline(),
            width: f.width,
            height: f.height,
            url: f.download_path(),
            thumbnail: f.thumbnail.as_ref().zip(f.thumbnail_path()).map(|(t, url)| ThumbnailW {
                url,
                width: t.width,
                height: t.height,
                content_type: &t.content_type,
            }),
        }
    }
}

/// A reply's quote of its parent.
#[derive(Serialize, utoipa::ToSchema)]
pub struct QuoteW<'a> {
    pub seq: i64,
    pub sender: Option<UserW<'a>>,
    pub excerpt: &'a str,
    pub deleted: bool,
}

impl<'a> From<&'a Quote> for QuoteW<'a> {
    fn from(q: &'a Quote) -> Self {
        QuoteW { seq: q.seq, sender: q.sender.as_ref().map(UserW::from), excerpt: &q.excerpt, deleted: q.deleted }
    }
}

/// One emoji's reactions on a message.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ReactionW<'a> {
    pub emoji: &'a str,
    pub count: usize,
    pub users: Vec<i64>,
}

impl<'a> From<&'a Reaction> for ReactionW<'a> {
    fn from(r: &'a Reaction) -> Self {
        ReactionW { emoji: &r.emoji, count: r.users.len(), users: r.users.iter().map(|u| u.0).collect() }
    }
}

pub fn reactions_w(rs: &[Reaction]) -> Vec<ReactionW<'_>> {
    rs.iter().map(ReactionW::from).collect()
}

/// A pinned message.
#[derive(Serialize)]
pub struct PinW<'a> {
    pub message: MessageW<'a>,
    pub pinned_by: UserW<'a>,
    pub at: i64,
}

impl<'a> From<&'a Pin> for PinW<'a> {
    fn from(p: &'a Pin) -> Self {
        PinW { message: MessageW::from(&*p.message), pinned_by: UserW::from(&p.pinned_by), at: p.at }
    }
}

/// A followed thread (`GET /me/threads`).
#[derive(Serialize)]
pub struct ThreadSummaryW {
    pub room: i64,
    pub seq: i64,
    pub reply_count: i64,
    pub last_reply_ts: Option<i64>,
    pub unread: i64,
}

impl From<&ThreadSummary> for ThreadSummaryW {
    fn from(t: &ThreadSummary) -> Self {
        ThreadSummaryW {
            room: t.room.0,
            seq: t.root,
            reply_count: t.reply_count,
            last_reply_ts: t.last_reply_ts,
            unread: t.unread,
        }
    }
}

impl<'a> From<&'a Message> for MessageW<'a> {
    fn from(m: &'a Message) -> Self {
        MessageW {
            room: m.room.0,
            seq: m.seq,
            kind: m.kind.as_str(),
            sender: m.sender.as_ref().map(UserW::from),
            target: m.target.as_ref().map(UserW::from),
            body: &m.body,
            client_id: m.client_id.as_deref(),
            mentions: m.mentions.iter().map(|u| u.0).collect(),
            ts: m.ts,
            edited_at: m.edited_at,
            deleted: m.deleted,
            files: m.files.iter().map(FileW::from).collect(),
            reply_to: m.reply_to,
            thread: m.thread,
            quote: m.extras.quote.as_ref().map(QuoteW::from),
            reply_count: (m.extras.reply_count > 0).then_some(m.extras.reply_count),
            last_reply_ts: m.extras.last_reply_ts.filter(|_| m.extras.reply_count > 0),
            reactions: reactions_w(&m.extras.reactions),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Ack)]
pub struct AckW<'a> {
    pub room: i64,
    pub seq: i64,
    pub ts: i64,
    pub client_id: Option<&'a str>,
    pub duplicate: bool,
}

impl<'a> From<&'a Ack> for AckW<'a> {
    fn from(a: &'a Ack) -> Self {
        AckW { room: a.room.0, seq: a.seq, ts: a.ts, client_id: a.client_id.as_deref(), duplicate: a.duplicate }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = History)]
pub struct HistoryW<'a> {
    pub messages: Vec<MessageW<'a>>,
    pub has_more: bool,
}

impl<'a> From<&'a HistoryPage> for HistoryW<'a> {
    fn from(p: &'a HistoryPage) -> Self {
        HistoryW { messages: p.messages.iter().map(|m| MessageW::from(&**m)).collect(), has_more: p.has_more }
    }
}

/// One search hit: where it is (room, seq: open the room there) and a plain-text snippet whose matched
/// words are the `highlights` ranges, `[start, end)` in characters (Unicode scalar values) of `snippet`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SearchHitW<'a> {
    pub room: i64,
    pub room_name: &'a str,
    pub room_kind: &'static str,
    pub seq: i64,
    pub message: MessageW<'a>,
    pub snippet: &'a str,
    pub highlights: Vec<[usize; 2]>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SearchResultsW<'a> {
    pub hits: Vec<SearchHitW<'a>>,
    /// Pass back as `cursor` for the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<&'a str>,
}

impl<'a> From<&'a SearchResults> for SearchResultsW<'a> {
    fn from(r: &'a SearchResults) -> Self {
        SearchResultsW {
            hits: r
                .hits
                .iter()
                .map(|h| SearchHitW {
                    room: h.room.id.0,
                    room_name: &h.room.name,
                    room_kind: h.room.kind.as_str(),
                    seq: h.message.seq,
                    message: MessageW::from(&*h.message),
                    snippet: &h.snippet.text,
                    highlights: h.snippet.highlights.iter().map(|&(a, b)| [a, b]).collect(),
                })
                .collect(),
            next_cursor: r.next_cursor.as_deref(),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ErrorBody)]
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

    pub fn error(e: &Error, req: Option<&str>) -> Bytes {
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

/// The JSON encoding of a hub event (cached per delivery: see `core::hub::Delivery`).
pub fn encode_event(e: &HubEvent) -> Bytes {
    match e {
        HubEvent::Message(m) => ServerFrame::Message { message: MessageW::from(&**m) }.encode(),
        HubEvent::Updated(m) => ServerFrame::MessageUpdated { message: MessageW::from(&**m), req: None }.encode(),
        HubEvent::Joined(r) => ServerFrame::Joined { room: RoomW::from(r), req: None }.encode(),
        HubEvent::Left(r) => ServerFrame::Left { room: r.0, req: None }.encode(),
        HubEvent::RoomUpdated(r) => ServerFrame::RoomUpdated { room: RoomW::from(r), req: None }.encode(),
        HubEvent::Presence { user, online } => {
            ServerFrame::Presence { user: UserW::from(user), online: *online }.encode()
        }
        HubEvent::Typing { room, user } => ServerFrame::Typing {
            room: room.0,
            user: UserW::from(user),
            expires_ms: crate::core::typing::TypingTracker::TTL.as_millis() as u64,
        }
        .encode(),
        HubEvent::Read { room, seq } => ServerFrame::Read { room: room.0, seq: *seq, req: None }.encode(),
        HubEvent::UserUpdated(u) => ServerFrame::UserUpdated { user: UserW::from(u) }.encode(),
        HubEvent::Invited(i) => ServerFrame::Invited { invite: InviteW::from(i) }.encode(),
        HubEvent::Convo(c) => encode_convo(c, None),
    }
}

/// The frame of a [`ConvoEvent`] (also the reply to `react`/`unreact`/`notify`, with its `req`).
pub fn encode_convo(c: &ConvoEvent, req: Option<&str>) -> Bytes {
    match c {
        ConvoEvent::Reactions { room, seq, reactions } => {
            ServerFrame::Reactions { room: room.0, seq: *seq, reactions: reactions_w(reactions), req }.encode()
        }
        ConvoEvent::ThreadUpdated { room, seq, reply_count, last_reply_ts } => ServerFrame::ThreadUpdated {
            room: room.0,
            seq: *seq,
            reply_count: *reply_count,
            last_reply_ts: *last_reply_ts,
        }
        .encode(),
        ConvoEvent::Notify { room, level, muted } => {
            ServerFrame::Notify { room: room.0, notify: level.as_str(), muted: *muted, req }.encode()
        }
    }
}

/// One message as a `message` frame (for gap fills and resumes, which are not shared deliveries).
pub fn encode_message(m: &Message) -> Bytes {
    ServerFrame::Message { message: MessageW::from(m) }.encode()
}

/// A room reference as clients write it: an id or a name.
#[derive(Deserialize, Debug, Clone)]
#[serde(untagged)]
pub enum RoomRefW {
    Id(i64),
    Name(String),
}

impl From<RoomRefW> for RoomRef {
    fn from(r: RoomRefW) -> Self {
        match r {
            RoomRefW::Id(id) => RoomRef::Id(RoomId(id)),
            RoomRefW::Name(n) => RoomRef::parse(&n),
        }
    }
}

/// Frames clients send on a WebSocket.
#[derive(Deserialize, Debug)]
// Unknown fields are ignored: within a version, fields are only ever added (PROTOCOL.md).
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    Send {
        room: RoomRefW,
        body: String,
        client_id: Option<String>,
        /// Ids of files the sender uploaded into this room (`POST /api/v1/rooms/{room}/files`).
        #[serde(default)]
        files: Vec<String>,
        reply_to: Option<Seq>,
        req: Option<String>,
    },
    Join {
        room: RoomRefW,
        req: Option<String>,
    },
    Leave {
        room: RoomRefW,
        req: Option<String>,
    },
    History {
        room: RoomRefW,
        before: Option<i64>,
        after: Option<i64>,
        limit: Option<u32>,
        req: Option<String>,
    },
    Ping {
        req: Option<String>,
    },
    Resume {
        rooms: Vec<ResumeW>,
        req: Option<String>,
    },
    Typing {
        room: RoomRefW,
        req: Option<String>,
    },
    Read {
        room: RoomRefW,
        seq: Seq,
        req: Option<String>,
    },
    Edit {
        room: RoomRefW,
        seq: Seq,
        body: String,
        req: Option<String>,
    },
    Delete {
        room: RoomRefW,
        seq: Seq,
        req: Option<String>,
    },
    Dm {
        username: String,
        req: Option<String>,
    },
    Invite {
        room: RoomRefW,
        username: String,
        req: Option<String>,
    },
    Kick {
        room: RoomRefW,
        username: String,
        req: Option<String>,
    },
    Ban {
        room: RoomRefW,
        username: String,
        req: Option<String>,
    },
    Unban {
        room: RoomRefW,
        username: String,
        req: Option<String>,
    },
    SetRole {
        room: RoomRefW,
        username: String,
        role: String,
        req: Option<String>,
    },
    Rename {
        room: RoomRefW,
        name: String,
        req: Option<String>,
    },
    Topic {
        room: RoomRefW,
        topic: String,
        req: Option<String>,
    },
    Transfer {
        room: RoomRefW,
        username: String,
        req: Option<String>,
    },
    Invites {
        req: Option<String>,
    },
    AcceptInvite {
        room: RoomRefW,
        req: Option<String>,
    },
    DeclineInvite {
        room: RoomRefW,
        req: Option<String>,
    },
    React {
        room: RoomRefW,
        seq: Seq,
        emoji: String,
        req: Option<String>,
    },
    Unreact {
        room: RoomRefW,
        seq: Seq,
        emoji: String,
        req: Option<String>,
    },
    Thread {
        room: RoomRefW,
        seq: Seq,
        before: Option<i64>,
        after: Option<i64>,
        limit: Option<u32>,
        req: Option<String>,
    },
    Pin {
        room: RoomRefW,
        seq: Seq,
        req: Option<String>,
    },
    Unpin {
        room: RoomRefW,
        seq: Seq,
        req: Option<String>,
    },
    Pins {
        room: RoomRefW,
        req: Option<String>,
    },
    Notify {
        room: RoomRefW,
        level: Option<String>,
        muted: Option<bool>,
        req: Option<String>,
    },
    Search {
        q: String,
        cursor: Option<String>,
        limit: Option<u32>,
        req: Option<String>,
    },
}

/// Where a reconnecting client stands in one room.
#[derive(Deserialize, Debug, Clone)]
pub struct ResumeW {
    pub room: i64,
    pub after: Seq,
}

pub const CLIENT_FRAME_TYPES: &[&str] = &[
    "send",
    "join",
    "leave",
    "history",
    "ping",
    "resume",
    "typing",
    "read",
    "edit",
    "delete",
    "dm",
    "invite",
    "kick",
    "ban",
    "unban",
    "set_role",
    "rename",
    "topic",
    "transfer",
    "invites",
    "accept_invite",
    "decline_invite",
    "react",
    "unreact",
    "thread",
    "pin",
    "unpin",
    "pins",
    "notify",
    "search",
];

impl ClientFrame {
    pub fn req(&self) -> Option<&str> {
        match self {
            ClientFrame::Send { req, .. }
            | ClientFrame::Join { req, .. }
            | ClientFrame::Leave { req, .. }
            | ClientFrame::History { req, .. }
            | ClientFrame::Ping { req }
            | ClientFrame::Resume { req, .. }
            | ClientFrame::Typing { req, .. }
            | ClientFrame::Read { req, .. }
            | ClientFrame::Edit { req, .. }
            | ClientFrame::Delete { req, .. }
            | ClientFrame::Dm { req, .. }
            | ClientFrame::Invite { req, .. }
            | ClientFrame::Kick { req, .. }
            | ClientFrame::Ban { req, .. }
            | ClientFrame::Unban { req, .. }
            | ClientFrame::SetRole { req, .. }
            | ClientFrame::Rename { req, .. }
            | ClientFrame::Topic { req, .. }
            | ClientFrame::Transfer { req, .. }
            | ClientFrame::Invites { req }
            | ClientFrame::AcceptInvite { req, .. }
            | ClientFrame::DeclineInvite { req, .. }
            | ClientFrame::React { req, .. }
            | ClientFrame::Unreact { req, .. }
            | ClientFrame::Thread { req, .. }
            | ClientFrame::Pin { req, .. }
            | ClientFrame::Unpin { req, .. }
            | ClientFrame::Pins { req, .. }
            | ClientFrame::Notify { req, .. }
            | ClientFrame::Search { req, .. } => req.as_deref(),
        }
    }
}

/// Why a text frame could not be read as a [`ClientFrame`].
#[derive(Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Not JSON, no `type`, or wrong fields for a known type: `bad_frame`.
    Bad(String),
    /// A well-formed frame of a type this version does not know: `unknown_type`.
    UnknownType(String),
}

/// The `req` of a frame that could not be decoded, when it is JSON with a usable one: the error reply
/// carries it back, so the client can match it to its request.
pub fn frame_req(text: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct ReqOnly {
        req: Option<serde_json::Value>,
    }
    match serde_json::from_str::<ReqOnly>(text).ok()?.req? {
        serde_json::Value::String(r) if r.len() <= 64 => Some(r),
        _ => None,
    }
}

pub fn decode_client_frame(text: &str) -> Result<ClientFrame, FrameError> {
    match serde_json::from_str::<ClientFrame>(text) {
        Ok(f) => {
            if f.req().is_some_and(|r| r.len() > 64) {
                return Err(FrameError::Bad("req must be at most 64 characters".into()));
            }
            Ok(f)
        }
        Err(e) => {
            #[derive(Deserialize)]
            struct TypeOnly {
                #[serde(rename = "type")]
                t: String,
            }
            match serde_json::from_str::<TypeOnly>(text) {
                Ok(TypeOnly { t }) if !CLIENT_FRAME_TYPES.contains(&t.as_str()) => {
                    let mut t = t;
                    t.truncate(64);
                    Err(FrameError::UnknownType(t))
                }
                _ => Err(FrameError::Bad(e.to_string())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_frames_decode_or_say_why() {
        assert!(matches!(
            decode_client_frame(r#"{"type":"send","room":3,"body":"hi","client_id":"c1"}"#),
            Ok(ClientFrame::Send { room: RoomRefW::Id(3), .. })
        ));
        assert!(matches!(
            decode_client_frame(r#"{"type":"join","room":"general"}"#),
            Ok(ClientFrame::Join { room: RoomRefW::Name(_), .. })
        ));
        assert!(matches!(decode_client_frame(r#"{"type":"ping","req":"p1"}"#), Ok(ClientFrame::Ping { req: Some(_) })));
        assert!(matches!(decode_client_frame(r#"{"type":"shout"}"#), Err(FrameError::UnknownType(t)) if t == "shout"));
        for bad in ["", "{", "[]", "null", r#"{"room":1}"#, r#"{"type":"send","room":1}"#, r#"{"type":7}"#] {
            assert!(matches!(decode_client_frame(bad), Err(FrameError::Bad(_))), "{bad}");
        }
        // Unknown fields are ignored (fields are only ever added within a version).
        assert!(matches!(
            decode_client_frame(r#"{"type":"send","room":1,"body":"x","extra":1}"#),
            Ok(ClientFrame::Send { .. })
        ));
        assert_eq!(frame_req(r#"{"type":"shout","req":"r9"}"#).as_deref(), Some("r9"));
        assert_eq!(frame_req(r#"{"type":"shout","req":9}"#), None);
        assert_eq!(frame_req("not json"), None);
        let long_req = format!(r#"{{"type":"ping","req":"{}"}}"#, "x".repeat(65));
        assert!(matches!(decode_client_frame(&long_req), Err(FrameError::Bad(_))));
    }

    #[test]
    fn server_frames_have_the_documented_shape() {
        let ack = Ack { room: RoomId(3), seq: 9, ts: 5, client_id: Some("c1".into()), duplicate: false };
        let v: serde_json::Value =
            serde_json::from_slice(&ServerFrame::Ack { ack: AckW::from(&ack), req: None }.encode()).unwrap();
        assert_eq!(v, serde_json::json!({"type":"ack","room":3,"seq":9,"ts":5,"client_id":"c1","duplicate":false}));
        let v: serde_json::Value = serde_json::from_slice(&ServerFrame::error(&Error::NotAMember, Some("r1"))).unwrap();
        assert_eq!(v["type"], "error");
        assert_eq!(v["code"], "not_a_member");
        assert_eq!(v["req"], "r1");
    }

    #[test]
    fn conversation_frames_decode_and_encode_as_documented() {
        assert!(matches!(
            decode_client_frame(r#"{"type":"send","room":1,"body":"x","reply_to":4}"#),
            Ok(ClientFrame::Send { reply_to: Some(4), .. })
        ));
        assert!(matches!(
            decode_client_frame(r#"{"type":"react","room":1,"seq":4,"emoji":"👍","req":"r"}"#),
            Ok(ClientFrame::React { seq: 4, .. })
        ));
        assert!(matches!(
            decode_client_frame(r#"{"type":"notify","room":1,"muted":true}"#),
            Ok(ClientFrame::Notify { .. })
        ));
        assert!(matches!(decode_client_frame(r#"{"type":"pins","room":"general"}"#), Ok(ClientFrame::Pins { .. })));
        assert!(matches!(decode_client_frame(r#"{"type":"react","room":1,"seq":4}"#), Err(FrameError::Bad(_))));

        use crate::core::domain::{ConvoEvent, NotifyLevel, Reaction, UserId};
        let e = ConvoEvent::Reactions {
            room: RoomId(3),
            seq: 9,
            reactions: vec![Reaction { emoji: "👍".into(), users: vec![UserId(1), UserId(5)] }],
        };
        let v: serde_json::Value = serde_json::from_slice(&encode_convo(&e, None)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type":"reactions","room":3,"seq":9,"reactions":[{"emoji":"👍","count":2,"users":[1,5]}]})
        );
        let e = ConvoEvent::Notify { room: RoomId(3), level: NotifyLevel::None, muted: true };
        let v: serde_json::Value = serde_json::from_slice(&encode_convo(&e, Some("n"))).unwrap();
        assert_eq!(v, serde_json::json!({"type":"notify","room":3,"notify":"none","muted":true,"req":"n"}));
        let e = ConvoEvent::ThreadUpdated { room: RoomId(3), seq: 2, reply_count: 1, last_reply_ts: Some(7) };
        let v: serde_json::Value = serde_json::from_slice(&encode_convo(&e, None)).unwrap();
        assert_eq!(v, serde_json::json!({"type":"thread_updated","room":3,"seq":2,"reply_count":1,"last_reply_ts":7}));
    }
}
