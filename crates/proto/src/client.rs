//! A client's side of the Parley v1 wire protocol (`docs/PROTOCOL.md`): owned shapes it decodes server
//! frames into and encodes its own frames from, with small presentation helpers (`label`,
//! `shown_name`). The server encodes with [`crate::server`]; `tests/round_trip.rs` keeps both in step.
//!
//! Unknown fields are ignored and unknown frame types decode as [`ServerFrame::Unknown`], as the
//! protocol asks of clients.

use serde::{Deserialize, Serialize};

/// The answer to `POST /api/v1/login` (the server's [`crate::answers::LoginW`]).
#[derive(Deserialize, Debug, Clone)]
pub struct Login {
    pub token: String,
    #[serde(default)]
    pub expires_at: i64,
    pub user: User,
}

#[derive(Deserialize, Serialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct User {
    pub id: i64,
    pub username: String,
    #[serde(default)]
    pub display_name: String,
}

impl User {
    /// The name to show: the display name, else the username.
    pub fn shown_name(&self) -> &str {
        if self.display_name.trim().is_empty() { &self.username } else { &self.display_name }
    }
}

/// A member of a room, as `GET /rooms/{room}/members` lists them.
#[derive(Deserialize, Serialize, Debug, Clone, PartialEq, Eq)]
pub struct Member {
    #[serde(flatten)]
    pub user: User,
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub online: bool,
}

#[derive(Deserialize, Serialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct Room {
    pub id: i64,
    pub name: String,
    #[serde(default)]
    pub visibility: String,
    #[serde(default)]
    pub created_by: i64,
    #[serde(default)]
    pub last_seq: i64,
    #[serde(default)]
    pub member_count: i64,
    /// `group` or `direct` (a one-to-one conversation).
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub topic: String,
    /// The user's role (`owner`, `admin`, `member`); only in RoomViews (`hello`).
    #[serde(default)]
    pub role: Option<String>,
    /// The other user of a direct conversation; only in RoomViews.
    #[serde(default)]
    pub peer: Option<User>,
    #[serde(default)]
    pub last_read: i64,
    #[serde(default)]
    pub unread: i64,
}

impl Room {
    pub fn is_direct(&self) -> bool {
        self.kind == "direct"
    }

    /// How the room is named on screen: `#name`, `~name` when private, `@peer` for a conversation.
    pub fn label(&self) -> String {
        match (&self.peer, self.is_direct()) {
            (Some(p), true) => format!("@{}", p.username),
            (None, true) => "@…".to_owned(),
            _ if self.visibility == "private" => format!("~{}", self.name),
            _ => format!("#{}", self.name),
        }
    }
}

#[derive(Deserialize, Serialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    pub room: i64,
    pub seq: i64,
    #[serde(default = "text_kind")]
    pub kind: String,
    #[serde(default)]
    pub sender: Option<User>,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub ts: i64,
    /// Who a system message acted on (kick, ban, role, …).
    #[serde(default)]
    pub target: Option<User>,
    /// Ids of the users the text mentions.
    #[serde(default)]
    pub mentions: Vec<i64>,
    #[serde(default)]
    pub edited_at: Option<i64>,
    #[serde(default)]
    pub deleted: bool,
    /// Files the message shares.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileRef>,
    /// On a reply: the message it answers, its thread root and a quote of the parent.
    #[serde(default)]
    pub reply_to: Option<i64>,
    #[serde(default)]
    pub thread: Option<i64>,
    #[serde(default)]
    pub quote: Option<Quote>,
    /// On a thread root with replies.
    #[serde(default)]
    pub reply_count: i64,
    /// Reactions, in first-reaction order (absent: none).
    #[serde(default)]
    pub reactions: Vec<Reaction>,
}

/// A file a message shares (docs/PROTOCOL.md §2 File).
#[derive(Deserialize, Serialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct FileRef {
    pub id: String,
    pub name: String,
    pub size: i64,
    /// The download path on the server.
    pub url: String,
}

/// A reply's compact quote of its parent (a tombstone once the parent is deleted).
#[derive(Deserialize, Serialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct Quote {
    pub seq: i64,
    #[serde(default)]
    pub sender: Option<User>,
    #[serde(default)]
    pub excerpt: String,
    #[serde(default)]
    pub deleted: bool,
}

/// One emoji on a message, with who reacted.
#[derive(Deserialize, Serialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct Reaction {
    pub emoji: String,
    #[serde(default)]
    pub count: i64,
    #[serde(default)]
    pub users: Vec<i64>,
}

/// One search hit: where it is, and a plain-text snippet whose matches are the `highlights` ranges
/// (`[start, end)` in characters).
#[derive(Deserialize, Serialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct SearchHit {
    pub room: i64,
    #[serde(default)]
    pub room_name: String,
    pub seq: i64,
    pub message: Message,
    #[serde(default)]
    pub snippet: String,
    #[serde(default)]
    pub highlights: Vec<[usize; 2]>,
}

/// A pinned message of a room.
#[derive(Deserialize, Serialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct Pin {
    pub message: Message,
    #[serde(default)]
    pub pinned_by: Option<User>,
    #[serde(default)]
    pub at: i64,
}

/// A followed thread (`GET /me/threads`; the server's [`crate::server::ThreadSummaryW`]).
#[derive(Deserialize, Serialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct ThreadSummary {
    pub room: i64,
    pub seq: i64,
    #[serde(default)]
    pub reply_count: i64,
    pub last_reply_ts: Option<i64>,
    #[serde(default)]
    pub unread: i64,
}

/// An invitation, as its invitee sees it (the server's [`crate::server::InviteW`]).
#[derive(Deserialize, Serialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct Invite {
    pub room: Room,
    pub invited_by: User,
    #[serde(default)]
    pub at: i64,
}

/// A ban, as the room's moderators see it (the server's [`crate::server::BanW`]).
#[derive(Deserialize, Serialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct Ban {
    pub user: User,
    #[serde(default)]
    pub banned_at: i64,
}

/// A webhook (the server's [`crate::answers::WebhookW`]); `secret` only in the answer that created it.
#[derive(Deserialize, Serialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct Webhook {
    pub id: i64,
    pub room: i64,
    pub url: String,
    #[serde(default)]
    pub created_by: i64,
    #[serde(default)]
    pub created_at: i64,
    pub secret: Option<String>,
}

/// A webhook delivery that failed every attempt (the server's [`crate::answers::DeadDeliveryW`]).
#[derive(Deserialize, Serialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct DeadDelivery {
    pub delivery: String,
    pub webhook: Option<i64>,
    pub seq: Option<i64>,
    #[serde(default)]
    pub attempts: u32,
    pub error: Option<String>,
    #[serde(default)]
    pub enqueued_at: i64,
}

/// The REST answers of [`crate::answers`], as a client decodes them: one mirror per answer, named as the
/// answer without its `W` (`RoomsW` → [`Rooms`](answers::Rooms)); [`Login`] is the login answer's.
pub mod answers {
    use serde::Deserialize;

    use super::{Ban, DeadDelivery, Invite, Member, Message, Pin, Reaction, Room, ThreadSummary, User, Webhook};

    /// Declares answers that are one list under one key (`{"rooms": […]}`); an absent list reads as empty.
    macro_rules! list_answers {
        ($($(#[doc = $doc:literal])* $name:ident { $field:ident: $item:ty })*) => {$(
            $(#[doc = $doc])*
            #[derive(Deserialize, Debug, Clone, PartialEq, Eq, Default)]
            pub struct $name {
                #[serde(default)]
                pub $field: Vec<$item>,
            }
        )*};
    }

    list_answers! {
        /// `GET /rooms`: public rooms.
        Rooms { rooms: Room }
        /// `GET /me/rooms`: the rooms as one member sees them.
        RoomViews { rooms: Room }
        /// `GET /dms`: direct conversations, newest activity first.
        Conversations { conversations: Room }
        Members { members: Member }
        Bans { bans: Ban }
        Invites { invites: Invite }
        /// Ids of the users typing in a room.
        Typing { users: i64 }
        Threads { threads: ThreadSummary }
        Pins { pins: Pin }
        Webhooks { webhooks: Webhook }
        DeadDeliveries { deliveries: DeadDelivery }
    }

    /// `POST /dms`: a direct conversation and its peer.
    #[derive(Deserialize, Debug, Clone, PartialEq, Eq, Default)]
    pub struct Direct {
        pub room: Room,
        pub peer: User,
    }

    /// The read marker after an update.
    #[derive(Deserialize, Debug, Clone, PartialEq, Eq, Default)]
    pub struct Read {
        pub room: i64,
        pub seq: i64,
    }

    /// A message's reactions after adding or taking back one.
    #[derive(Deserialize, Debug, Clone, PartialEq, Eq, Default)]
    pub struct Reactions {
        pub room: i64,
        pub seq: i64,
        #[serde(default)]
        pub reactions: Vec<Reaction>,
    }

    /// A thread: its root and a page of replies.
    #[derive(Deserialize, Debug, Clone, PartialEq, Eq, Default)]
    pub struct Thread {
        pub root: Message,
        #[serde(default)]
        pub messages: Vec<Message>,
        #[serde(default)]
        pub has_more: bool,
    }

    /// The read position in a thread after an update.
    #[derive(Deserialize, Debug, Clone, PartialEq, Eq, Default)]
    pub struct ThreadRead {
        pub room: i64,
        pub thread: i64,
        pub seq: i64,
    }

    /// A room's notification level and mute flag after an update.
    #[derive(Deserialize, Debug, Clone, PartialEq, Eq, Default)]
    pub struct Notify {
        pub room: i64,
        #[serde(default)]
        pub notify: String,
        #[serde(default)]
        pub muted: bool,
    }
}

fn text_kind() -> String {
    "text".to_owned()
}

impl Message {
    pub fn is_system(&self) -> bool {
        self.kind != "text"
    }
}

/// Frames the server sends on the WebSocket.
#[derive(Deserialize, Debug, Clone, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    Hello {
        #[serde(default)]
        v: u32,
        user: User,
        #[serde(default)]
        rooms: Vec<Room>,
    },
    Message {
        message: Message,
    },
    MessageUpdated {
        message: Message,
    },
    RoomUpdated {
        room: Room,
        #[serde(default)]
        req: Option<String>,
    },
    Typing {
        room: i64,
        user: User,
        #[serde(default)]
        expires_ms: u64,
    },
    Read {
        room: i64,
        seq: i64,
    },
    UserUpdated {
        user: User,
    },
    /// Someone invited the user into a (private) room.
    Invited {
        room: Room,
        invited_by: User,
        #[serde(default)]
        at: i64,
    },
    Ok {
        #[serde(default)]
        req: Option<String>,
    },
    /// A message's reactions changed (the whole new list); also the reply to `react` / `unreact`.
    Reactions {
        room: i64,
        seq: i64,
        #[serde(default)]
        reactions: Vec<Reaction>,
        #[serde(default)]
        req: Option<String>,
    },
    /// A reply to thread root `seq` was stored or deleted.
    ThreadUpdated {
        room: i64,
        seq: i64,
        #[serde(default)]
        reply_count: i64,
    },
    /// The user's notification settings of a room (from any device; also the reply to `notify`).
    Notify {
        room: i64,
        #[serde(default)]
        notify: String,
        #[serde(default)]
        muted: bool,
        #[serde(default)]
        req: Option<String>,
    },
    /// Reply to `thread`: the root and a page of its replies.
    Thread {
        room: i64,
        root: Box<Message>,
        #[serde(default)]
        messages: Vec<Message>,
        #[serde(default)]
        has_more: bool,
        #[serde(default)]
        req: Option<String>,
    },
    /// Reply to `pins`.
    Pins {
        room: i64,
        #[serde(default)]
        pins: Vec<Pin>,
        #[serde(default)]
        req: Option<String>,
    },
    Ack {
        room: i64,
        seq: i64,
        #[serde(default)]
        ts: i64,
        #[serde(default)]
        client_id: Option<String>,
        #[serde(default)]
        duplicate: bool,
        #[serde(default)]
        req: Option<String>,
    },
    Joined {
        room: Room,
        #[serde(default)]
        req: Option<String>,
    },
    Left {
        room: i64,
        #[serde(default)]
        req: Option<String>,
    },
    History {
        room: i64,
        #[serde(default)]
        messages: Vec<Message>,
        #[serde(default)]
        has_more: bool,
        #[serde(default)]
        req: Option<String>,
    },
    Pong {
        #[serde(default)]
        req: Option<String>,
    },
    Error {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
        #[serde(default)]
        req: Option<String>,
    },
    /// Reply to `search`.
    SearchResults {
        #[serde(default)]
        hits: Vec<SearchHit>,
        #[serde(default)]
        next_cursor: Option<String>,
        #[serde(default)]
        req: Option<String>,
    },
    /// A frame type this client does not use (presence, recovered, …): ignored.
    #[serde(other)]
    Unknown,
}

impl ServerFrame {
    /// Decodes one text frame; `None` when it is not a frame this client can read at all.
    pub fn decode(text: &str) -> Option<ServerFrame> {
        serde_json::from_str(text).ok()
    }
}

/// A room reference as the client writes it: numeric id or name.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
#[serde(untagged)]
pub enum RoomRef {
    Id(i64),
    Name(String),
}

/// Frames the client sends on the WebSocket.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    Send {
        room: RoomRef,
        body: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        client_id: Option<String>,
        /// The message of the room this one answers.
        #[serde(skip_serializing_if = "Option::is_none")]
        reply_to: Option<i64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        req: Option<String>,
    },
    React {
        room: RoomRef,
        seq: i64,
        emoji: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        req: Option<String>,
    },
    Unreact {
        room: RoomRef,
        seq: i64,
        emoji: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        req: Option<String>,
    },
    Pin {
        room: RoomRef,
        seq: i64,
        #[serde(skip_serializing_if = "Option::is_none")]
        req: Option<String>,
    },
    Unpin {
        room: RoomRef,
        seq: i64,
        #[serde(skip_serializing_if = "Option::is_none")]
        req: Option<String>,
    },
    Pins {
        room: RoomRef,
        #[serde(skip_serializing_if = "Option::is_none")]
        req: Option<String>,
    },
    Search {
        q: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        cursor: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        req: Option<String>,
    },
    Thread {
        room: RoomRef,
        seq: i64,
        #[serde(skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        req: Option<String>,
    },
    Notify {
        room: RoomRef,
        #[serde(skip_serializing_if = "Option::is_none")]
        level: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        muted: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        req: Option<String>,
    },
    Join {
        room: RoomRef,
        #[serde(skip_serializing_if = "Option::is_none")]
        req: Option<String>,
    },
    Leave {
        room: RoomRef,
        #[serde(skip_serializing_if = "Option::is_none")]
        req: Option<String>,
    },
    History {
        room: RoomRef,
        #[serde(skip_serializing_if = "Option::is_none")]
        before: Option<i64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        after: Option<i64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        req: Option<String>,
    },
    Ping {
        #[serde(skip_serializing_if = "Option::is_none")]
        req: Option<String>,
    },
    Typing {
        room: RoomRef,
    },
    Read {
        room: RoomRef,
        seq: i64,
    },
    Dm {
        username: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        req: Option<String>,
    },
    Invite {
        room: RoomRef,
        username: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        req: Option<String>,
    },
    Kick {
        room: RoomRef,
        username: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        req: Option<String>,
    },
    Ban {
        room: RoomRef,
        username: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        req: Option<String>,
    },
    Unban {
        room: RoomRef,
        username: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        req: Option<String>,
    },
    SetRole {
        room: RoomRef,
        username: String,
        role: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        req: Option<String>,
    },
    /// Hand the room over to `username` (owner only).
    Transfer {
        room: RoomRef,
        username: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        req: Option<String>,
    },
    Topic {
        room: RoomRef,
        topic: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        req: Option<String>,
    },
}

impl ClientFrame {
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_protocol_examples_and_ignores_unknown_things() {
        let hello = r#"{"type":"hello","v":1,"user":{"id":1,"username":"alice","display_name":"alice"},"rooms":[{"id":1,"name":"general","visibility":"public","created_by":1,"last_seq":1,"member_count":1}],"future":true}"#;
        match ServerFrame::decode(hello) {
            Some(ServerFrame::Hello { v: 1, user, rooms }) => {
                assert_eq!(user.username, "alice");
                assert_eq!(rooms[0].last_seq, 1);
            }
            other => panic!("{other:?}"),
        }
        let sys = r#"{"type":"message","message":{"room":1,"seq":1,"kind":"create","sender":{"id":1,"username":"a","display_name":"a"},"body":"","client_id":null,"ts":5}}"#;
        assert!(matches!(ServerFrame::decode(sys), Some(ServerFrame::Message { message }) if message.is_system()));
        assert_eq!(
            ServerFrame::decode(r#"{"type":"presence","user":{"id":2,"username":"b"},"online":true}"#),
            Some(ServerFrame::Unknown)
        );
        let upd = r#"{"type":"message_updated","message":{"room":1,"seq":4,"kind":"text","sender":null,"body":"","ts":5,"deleted":true}}"#;
        assert!(matches!(ServerFrame::decode(upd), Some(ServerFrame::MessageUpdated { message }) if message.deleted));
        let dm = r#"{"type":"hello","v":1,"user":{"id":1,"username":"alice"},"rooms":[{"id":4,"name":"dm-1-2","kind":"direct","visibility":"private","peer":{"id":2,"username":"bob","display_name":"Bob"},"unread":3,"last_read":7}]}"#;
        match ServerFrame::decode(dm) {
            Some(ServerFrame::Hello { rooms, .. }) => {
                assert_eq!(rooms[0].label(), "@bob");
                assert_eq!((rooms[0].unread, rooms[0].last_read), (3, 7));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(ServerFrame::decode("not json"), None);
    }

    #[test]
    fn encodes_client_frames_without_nulls() {
        let f =
            ClientFrame::History { room: RoomRef::Id(3), before: None, after: Some(7), limit: Some(200), req: None };
        assert_eq!(f.encode(), r#"{"type":"history","room":3,"after":7,"limit":200}"#);
        let f = ClientFrame::Join { room: RoomRef::Name("general".into()), req: Some("j1".into()) };
        assert_eq!(f.encode(), r#"{"type":"join","room":"general","req":"j1"}"#);
    }
}
