//! What clients send on a WebSocket, as the server reads it: [`ClientFrame`], decoded by
//! [`decode_client_frame`] with the protocol's refusals (`bad_frame`, `unknown_type`). Clients that
//! write frames use [`crate::client::ClientFrame`]; `tests/round_trip.rs` checks every one of those
//! decodes here.

use serde::{Deserialize, Serialize};

/// A room reference as clients write it: an id or a name.
#[derive(Deserialize, Serialize, Debug, Clone, PartialEq, Eq)]
#[serde(untagged)]
pub enum RoomRefW {
    Id(i64),
    Name(String),
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
        reply_to: Option<i64>,
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
        seq: i64,
        req: Option<String>,
    },
    Edit {
        room: RoomRefW,
        seq: i64,
        body: String,
        req: Option<String>,
    },
    Delete {
        room: RoomRefW,
        seq: i64,
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
        seq: i64,
        emoji: String,
        req: Option<String>,
    },
    Unreact {
        room: RoomRefW,
        seq: i64,
        emoji: String,
        req: Option<String>,
    },
    Thread {
        room: RoomRefW,
        seq: i64,
        before: Option<i64>,
        after: Option<i64>,
        limit: Option<u32>,
        req: Option<String>,
    },
    Pin {
        room: RoomRefW,
        seq: i64,
        req: Option<String>,
    },
    Unpin {
        room: RoomRefW,
        seq: i64,
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
#[derive(Deserialize, Serialize, Debug, Clone, PartialEq, Eq)]
pub struct ResumeW {
    pub room: i64,
    pub after: i64,
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
}
