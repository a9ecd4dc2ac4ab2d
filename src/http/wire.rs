//! Wire types, version 1: the JSON shapes of `docs/PROTOCOL.md`, shared by REST, WebSocket and SSE.
//! The shapes and frame enums live in the protocol crate (`crates/proto`, `parley-proto`), shared with
//! the terminal client; they are re-exported here, so server code names them `wire::…`. What stays here
//! is what needs the domain: building shapes from domain values (borrowing, so encoding copies nothing
//! but the output bytes), the error frame's source, and the hub event encodings.

use std::borrow::Cow;

use bytes::Bytes;

use crate::core::chat::{Ack, SearchResults};
use crate::core::domain::{
    Ban, ConvoEvent, FileMeta, HistoryPage, Invite, Member, Message, Pin, Quote, Reaction, Room, RoomId, RoomRef,
    RoomView, ThreadSummary, User,
};
use crate::core::error::Error;
use crate::core::hub::HubEvent;

pub use parley_proto::inbound::*;
pub use parley_proto::server::*;
pub use parley_proto::{PROTOCOL_VERSION, SUBPROTOCOL};

impl WireError for Error {
    fn code(&self) -> &str {
        Error::code(self)
    }

    fn public_message(&self) -> Cow<'_, str> {
        Cow::Owned(Error::public_message(self))
    }

    fn retry_after(&self) -> Option<std::time::Duration> {
        Error::retry_after(self)
    }
}

impl<'a> From<&'a User> for UserW<'a> {
    fn from(u: &'a User) -> Self {
        UserW { id: u.id.0, username: &u.username, display_name: &u.display_name }
    }
}

/// A member and whether they are online, as the members list shows them.
pub fn member_w((m, online): &(Member, bool)) -> MemberW<'_> {
    MemberW { user: UserW::from(&m.user), role: m.role.as_str(), online: *online }
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

impl<'a> From<&'a Invite> for InviteW<'a> {
    fn from(i: &'a Invite) -> Self {
        InviteW { room: RoomW::from(&i.room), invited_by: UserW::from(&i.invited_by), at: i.at }
    }
}

impl<'a> From<&'a Ban> for BanW<'a> {
    fn from(b: &'a Ban) -> Self {
        BanW { user: UserW::from(&b.user), banned_at: b.banned_at }
    }
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

impl<'a> From<&'a Quote> for QuoteW<'a> {
    fn from(q: &'a Quote) -> Self {
        QuoteW { seq: q.seq, sender: q.sender.as_ref().map(UserW::from), excerpt: &q.excerpt, deleted: q.deleted }
    }
}

impl<'a> From<&'a Reaction> for ReactionW<'a> {
    fn from(r: &'a Reaction) -> Self {
        ReactionW { emoji: &r.emoji, count: r.users.len(), users: r.users.iter().map(|u| u.0).collect() }
    }
}

impl<'a> From<&'a Pin> for PinW<'a> {
    fn from(p: &'a Pin) -> Self {
        PinW { message: MessageW::from(&*p.message), pinned_by: UserW::from(&p.pinned_by), at: p.at }
    }
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

impl<'a> From<&'a Ack> for AckW<'a> {
    fn from(a: &'a Ack) -> Self {
        AckW { room: a.room.0, seq: a.seq, ts: a.ts, client_id: a.client_id.as_deref(), duplicate: a.duplicate }
    }
}

impl<'a> From<&'a HistoryPage> for HistoryW<'a> {
    fn from(p: &'a HistoryPage) -> Self {
        HistoryW { messages: p.messages.iter().map(|m| MessageW::from(&**m)).collect(), has_more: p.has_more }
    }
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

pub fn reactions_w(rs: &[Reaction]) -> Vec<ReactionW<'_>> {
    rs.iter().map(ReactionW::from).collect()
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

impl From<RoomRefW> for RoomRef {
    fn from(r: RoomRefW) -> Self {
        match r {
            RoomRefW::Id(id) => RoomRef::Id(RoomId(id)),
            RoomRefW::Name(n) => RoomRef::parse(&n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
