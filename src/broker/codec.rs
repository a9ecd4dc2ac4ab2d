//! The inter-node encoding of [`BrokerEvent`]s: JSON with a version and the sending node, so nodes of
//! different releases can tell when they do not understand each other (a node drops, and logs, an
//! envelope it cannot read; the store still has the truth).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::BrokerEvent;
use crate::core::domain::*;

/// Bumped on any incompatible change to the envelope.
pub(crate) const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Envelope {
    v: u32,
    node: u64,
    ev: Ev,
}

#[derive(Serialize, Deserialize)]
struct U {
    id: i64,
    username: String,
    display_name: String,
}

#[derive(Serialize, Deserialize)]
struct R {
    id: i64,
    name: String,
    kind: String,
    visibility: String,
    topic: String,
    created_by: i64,
    last_seq: i64,
    member_count: i64,
    retention_secs: Option<i64>,
}

#[derive(Serialize, Deserialize)]
struct M {
    room: i64,
    seq: i64,
    kind: String,
    sender: Option<U>,
    target: Option<U>,
    body: String,
    client_id: Option<String>,
    mentions: Vec<i64>,
    ts: i64,
    edited_at: Option<i64>,
    deleted: bool,
    /// Added within v1: absent from older nodes' messages (no files).
    #[serde(default)]
    files: Vec<F>,
    // Added with replies (issue 14); absent from older nodes' envelopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reply_to: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    thread: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    quote: Option<Q>,
}

#[derive(Serialize, Deserialize)]
struct F {
    id: String,
    room: i64,
    uploader: i64,
    seq: Option<i64>,
    blob: String,
    name: String,
    size: i64,
    content_type: String,
    width: Option<i64>,
    height: Option<i64>,
    created_at: i64,
    /// Added with thumbnails; absent from older nodes' messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    thumb: Option<T>,
}

#[derive(Serialize, Deserialize)]
struct T {
    blob: String,
    content_type: String,
    width: i64,
    height: i64,
    size: i64,
}

fn f(x: &FileMeta) -> F {
    F {
        id: x.id.clone(),
        room: x.room.0,
        uploader: x.uploader.0,
        seq: x.seq,
        blob: x.blob.clone(),
        name: x.name.clone(),
        size: x.size,
        content_type: x.content_type.clone(),
        width: x.width,
        height: x.height,
        created_at: x.created_at,
        thumb: x.thumbnail.as_ref().map(|t| T {
            blob: t.blob.clone(),
            content_type: t.content_type.clone(),
            width: t.width,
            height: t.height,
            size: t.size,
        }),
    }
}

fn file(x: F) -> FileMeta {
    FileMeta {
        id: x.id,
        room: RoomId(x.room),
        uploader: UserId(x.uploader),
        seq: x.seq,
        blob: x.blob,
        name: x.name,
        size: x.size,
        content_type: x.content_type,
        width: x.width,
        height: x.height,
        created_at: x.created_at,
        thumbnail: x.thumb.map(|t| Thumbnail {
            blob: t.blob,
            content_type: t.content_type,
            width: t.width,
            height: t.height,
            size: t.size,
        }),
    }
}

#[derive(Serialize, Deserialize)]
struct Q {
    seq: i64,
    sender: Option<U>,
    excerpt: String,
    deleted: bool,
}

/// A [`ConvoEvent`].
#[derive(Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
enum C {
    Reactions { room: i64, seq: i64, reactions: Vec<(String, Vec<i64>)> },
    ThreadUpdated { room: i64, seq: i64, reply_count: i64, last_reply_ts: Option<i64> },
    Notify { room: i64, level: String, muted: bool },
}

fn c(x: &ConvoEvent) -> C {
    match x {
        ConvoEvent::Reactions { room, seq, reactions } => C::Reactions {
            room: room.0,
            seq: *seq,
            reactions: reactions.iter().map(|r| (r.emoji.clone(), r.users.iter().map(|u| u.0).collect())).collect(),
        },
        ConvoEvent::ThreadUpdated { room, seq, reply_count, last_reply_ts } => {
            C::ThreadUpdated { room: room.0, seq: *seq, reply_count: *reply_count, last_reply_ts: *last_reply_ts }
        }
        ConvoEvent::Notify { room, level, muted } => {
            C::Notify { room: room.0, level: level.as_str().into(), muted: *muted }
        }
    }
}

fn convo(x: C) -> Option<ConvoEvent> {
    Some(match x {
        C::Reactions { room, seq, reactions } => ConvoEvent::Reactions {
            room: RoomId(room),
            seq,
            reactions: reactions
                .into_iter()
                .map(|(emoji, users)| Reaction { emoji, users: users.into_iter().map(UserId).collect() })
                .collect(),
        },
        C::ThreadUpdated { room, seq, reply_count, last_reply_ts } => {
            ConvoEvent::ThreadUpdated { room: RoomId(room), seq, reply_count, last_reply_ts }
        }
        C::Notify { room, level, muted } => {
            ConvoEvent::Notify { room: RoomId(room), level: NotifyLevel::parse(&level).ok()?, muted }
        }
    })
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
enum Ev {
    Message {
        m: M,
    },
    Joined {
        room: R,
        user: i64,
    },
    Left {
        room: R,
        user: i64,
    },
    SessionEnded {
        session: String,
    },
    Updated {
        m: M,
    },
    RoomUpdated {
        room: R,
    },
    Read {
        user: i64,
        room: i64,
        seq: i64,
    },
    UserUpdated {
        user: U,
    },
    Typing {
        room: i64,
        user: U,
    },
    Invited {
        user: i64,
        room: R,
        by: U,
        at: i64,
    },
    Presence {
        node: u64,
        user: U,
        rooms: Vec<i64>,
        online: bool,
    },
    NodeAlive {
        node: u64,
        users: Vec<(U, Vec<i64>)>,
    },
    NodeBeat {
        node: u64,
        users: u64,
        digest: u64,
    },
    SnapshotWanted {
        of: u64,
    },
    /// Issue 14: reactions, thread summaries (to a room); notification settings (to a user).
    Convo {
        c: C,
    },
    UserConvo {
        user: i64,
        c: C,
    },
}

fn u(x: &User) -> U {
    U { id: x.id.0, username: x.username.clone(), display_name: x.display_name.clone() }
}
fn user(x: U) -> User {
    User { id: UserId(x.id), username: x.username, display_name: x.display_name }
}
fn r(x: &Room) -> R {
    R {
        id: x.id.0,
        name: x.name.clone(),
        kind: x.kind.as_str().into(),
        visibility: x.visibility.as_str().into(),
        topic: x.topic.clone(),
        created_by: x.created_by.0,
        last_seq: x.last_seq,
        member_count: x.member_count,
        retention_secs: x.retention_secs,
    }
}
fn room(x: R) -> Option<Room> {
    Some(Room {
        id: RoomId(x.id),
        name: x.name,
        kind: RoomKind::parse(&x.kind)?,
        visibility: Visibility::parse(&x.visibility).ok()?,
        topic: x.topic,
        created_by: UserId(x.created_by),
        last_seq: x.last_seq,
        member_count: x.member_count,
        retention_secs: x.retention_secs,
    })
}
fn m(x: &Message) -> M {
    M {
        room: x.room.0,
        seq: x.seq,
        kind: x.kind.as_str().into(),
        sender: x.sender.as_ref().map(u),
        target: x.target.as_ref().map(u),
        body: x.body.clone(),
        client_id: x.client_id.clone(),
        mentions: x.mentions.iter().map(|i| i.0).collect(),
        ts: x.ts,
        edited_at: x.edited_at,
        deleted: x.deleted,
        files: x.files.iter().map(f).collect(),
        reply_to: x.reply_to,
        thread: x.thread,
        quote: x.extras.quote.as_ref().map(|q| Q {
            seq: q.seq,
            sender: q.sender.as_ref().map(u),
            excerpt: q.excerpt.clone(),
            deleted: q.deleted,
        }),
    }
}
fn message(x: M) -> Option<Arc<Message>> {
    Some(Arc::new(Message {
        room: RoomId(x.room),
        seq: x.seq,
        kind: MessageKind::parse(&x.kind)?,
        sender: x.sender.map(user),
        target: x.target.map(user),
        body: x.body,
        client_id: x.client_id,
        mentions: x.mentions.into_iter().map(UserId).collect(),
        ts: x.ts,
        edited_at: x.edited_at,
        deleted: x.deleted,
        files: x.files.into_iter().map(file).collect(),
        reply_to: x.reply_to,
        thread: x.thread,
        extras: MessageExtras {
            quote: x.quote.map(|q| Quote {
                seq: q.seq,
                sender: q.sender.map(user),
                excerpt: q.excerpt,
                deleted: q.deleted,
            }),
            ..Default::default()
        },
    }))
}
fn ids(v: &[RoomId]) -> Vec<i64> {
    v.iter().map(|r| r.0).collect()
}

pub(crate) fn encode(node: NodeId, event: &BrokerEvent) -> Vec<u8> {
    let ev = match event {
        BrokerEvent::Message(x) => Ev::Message { m: m(x) },
        BrokerEvent::Joined { room, user } => Ev::Joined { room: r(room), user: user.0 },
        BrokerEvent::Left { room, user } => Ev::Left { room: r(room), user: user.0 },
        BrokerEvent::SessionEnded(s) => Ev::SessionEnded { session: s.0.clone() },
        BrokerEvent::Updated(x) => Ev::Updated { m: m(x) },
        BrokerEvent::RoomUpdated(room) => Ev::RoomUpdated { room: r(room) },
        BrokerEvent::Read { user, room, seq } => Ev::Read { user: user.0, room: room.0, seq: *seq },
        BrokerEvent::UserUpdated(x) => Ev::UserUpdated { user: u(x) },
        BrokerEvent::Typing { room, user } => Ev::Typing { room: room.0, user: u(user) },
        BrokerEvent::Invited { user, invite } => {
            Ev::Invited { user: user.0, room: r(&invite.room), by: u(&invite.invited_by), at: invite.at }
        }
        BrokerEvent::Presence { node, user, rooms, online } => {
            Ev::Presence { node: node.0, user: u(user), rooms: ids(rooms), online: *online }
        }
        BrokerEvent::NodeAlive { node, users } => {
            Ev::NodeAlive { node: node.0, users: users.iter().map(|(x, rs)| (u(x), ids(rs))).collect() }
        }
        BrokerEvent::Convo(x) => Ev::Convo { c: c(x) },
        BrokerEvent::UserConvo { user, event } => Ev::UserConvo { user: user.0, c: c(event) },
        BrokerEvent::NodeBeat { node, users, digest } => Ev::NodeBeat { node: node.0, users: *users, digest: *digest },
        BrokerEvent::SnapshotWanted { of } => Ev::SnapshotWanted { of: of.0 },
    };
    // Serialising plain owned data cannot fail.
    serde_json::to_vec(&Envelope { v: VERSION, node: node.0, ev }).unwrap_or_default()
}

/// The sending node and the event; an error says why the payload was not understood.
pub(crate) fn decode(bytes: &[u8]) -> Result<(NodeId, BrokerEvent), String> {
    let env: Envelope = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if env.v != VERSION {
        return Err(format!("envelope version {} (this node speaks {VERSION})", env.v));
    }
    let bad = || "a field out of range".to_owned();
    let rooms = |v: Vec<i64>| v.into_iter().map(RoomId).collect::<Vec<_>>();
    let ev = match env.ev {
        Ev::Message { m } => BrokerEvent::Message(message(m).ok_or_else(bad)?),
        Ev::Joined { room: x, user } => BrokerEvent::Joined { room: room(x).ok_or_else(bad)?, user: UserId(user) },
        Ev::Left { room: x, user } => BrokerEvent::Left { room: room(x).ok_or_else(bad)?, user: UserId(user) },
        Ev::SessionEnded { session } => BrokerEvent::SessionEnded(SessionId(session)),
        Ev::Updated { m } => BrokerEvent::Updated(message(m).ok_or_else(bad)?),
        Ev::RoomUpdated { room: x } => BrokerEvent::RoomUpdated(room(x).ok_or_else(bad)?),
        Ev::Read { user, room, seq } => BrokerEvent::Read { user: UserId(user), room: RoomId(room), seq },
        Ev::UserUpdated { user: x } => BrokerEvent::UserUpdated(user(x)),
        Ev::Typing { room, user: x } => BrokerEvent::Typing { room: RoomId(room), user: user(x) },
        Ev::Invited { user: to, room: x, by, at } => BrokerEvent::Invited {
            user: UserId(to),
            invite: Invite { room: room(x).ok_or_else(bad)?, invited_by: user(by), at },
        },
        Ev::Presence { node, user: x, rooms: rs, online } => {
            BrokerEvent::Presence { node: NodeId(node), user: user(x), rooms: rooms(rs), online }
        }
        Ev::NodeAlive { node, users } => BrokerEvent::NodeAlive {
            node: NodeId(node),
            users: users.into_iter().map(|(x, rs)| (user(x), rooms(rs))).collect(),
        },
        Ev::Convo { c: x } => BrokerEvent::Convo(convo(x).ok_or_else(bad)?),
        Ev::UserConvo { user, c: x } => BrokerEvent::UserConvo { user: UserId(user), event: convo(x).ok_or_else(bad)? },
        Ev::NodeBeat { node, users, digest } => BrokerEvent::NodeBeat { node: NodeId(node), users, digest },
        Ev::SnapshotWanted { of } => BrokerEvent::SnapshotWanted { of: NodeId(of) },
    };
    Ok((NodeId(env.node), ev))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> User {
        User { id: UserId(7), username: "alice".into(), display_name: "Alice \"A\" <x>".into() }
    }

    #[test]
    fn every_event_survives_the_round_trip() {
        let msg = Arc::new(Message {
            room: RoomId(3),
            seq: 42,
            kind: MessageKind::Text,
            sender: Some(alice()),
            target: None,
            body: "hi @bob 👋".into(),
            client_id: Some("c1".into()),
            mentions: vec![UserId(8)],
            ts: 1_700_000_000_000,
            edited_at: Some(1_700_000_000_500),
            deleted: false,
            files: vec![FileMeta {
                id: "f1".into(),
                room: RoomId(3),
                uploader: UserId(7),
                seq: Some(42),
                blob: "ab".repeat(32),
                name: "cat.png".into(),
                size: 1234,
                content_type: "image/png".into(),
                width: Some(10),
                height: Some(20),
                created_at: 1_700_000_000_000,
                thumbnail: Some(Thumbnail {
                    blob: "cd".repeat(32),
                    content_type: "image/jpeg".into(),
                    width: 5,
                    height: 10,
                    size: 99,
                }),
            }],
            reply_to: None,
            thread: None,
            extras: Default::default(),
        });
        let room = Room {
            id: RoomId(3),
            name: "general".into(),
            kind: RoomKind::Group,
            visibility: Visibility::Private,
            topic: "t".into(),
            created_by: UserId(7),
            last_seq: 42,
            member_count: 2,
            retention_secs: Some(3600),
        };
        let mut reply = (*msg).clone();
        reply.reply_to = Some(40);
        reply.thread = Some(39);
        reply.extras.quote = Some(Quote { seq: 40, sender: Some(alice()), excerpt: "hi".into(), deleted: false });
        let events = vec![
            BrokerEvent::Message(Arc::new(reply)),
            BrokerEvent::Convo(ConvoEvent::Reactions {
                room: RoomId(3),
                seq: 42,
                reactions: vec![Reaction { emoji: "👍".into(), users: vec![UserId(7), UserId(8)] }],
            }),
            BrokerEvent::Convo(ConvoEvent::ThreadUpdated {
                room: RoomId(3),
                seq: 39,
                reply_count: 2,
                last_reply_ts: Some(5),
            }),
            BrokerEvent::UserConvo {
                user: UserId(7),
                event: ConvoEvent::Notify { room: RoomId(3), level: NotifyLevel::Mentions, muted: true },
            },
            BrokerEvent::Message(msg.clone()),
            BrokerEvent::Joined { room: room.clone(), user: UserId(8) },
            BrokerEvent::Left { room: room.clone(), user: UserId(8) },
            BrokerEvent::SessionEnded(SessionId("abc".into())),
            BrokerEvent::Updated(msg),
            BrokerEvent::RoomUpdated(room.clone()),
            BrokerEvent::Invited {
                user: UserId(8),
                invite: Invite { room, invited_by: alice(), at: 1_700_000_000_900 },
            },
            BrokerEvent::Read { user: UserId(7), room: RoomId(3), seq: 40 },
            BrokerEvent::UserUpdated(alice()),
            BrokerEvent::Typing { room: RoomId(3), user: alice() },
            BrokerEvent::Presence { node: NodeId(9), user: alice(), rooms: vec![RoomId(3)], online: true },
            BrokerEvent::NodeAlive { node: NodeId(9), users: vec![(alice(), vec![RoomId(3), RoomId(4)])] },
            BrokerEvent::NodeBeat { node: NodeId(9), users: 3, digest: u64::MAX },
            BrokerEvent::SnapshotWanted { of: NodeId(9) },
        ];
        for e in events {
            let (node, back) = decode(&encode(NodeId(5), &e)).unwrap();
            assert_eq!(node, NodeId(5));
            assert_eq!(format!("{back:?}"), format!("{e:?}"));
        }
    }

    #[test]
    fn foreign_and_broken_payloads_are_refused_not_panicked_on() {
        assert!(decode(b"").is_err());
        assert!(decode(b"{\"v\":2,\"node\":1,\"ev\":{\"t\":\"read\",\"user\":1,\"room\":1,\"seq\":1}}").is_err());
        assert!(decode(b"{\"v\":1,\"node\":1,\"ev\":{\"t\":\"nope\"}}").is_err());
        let bad_kind = br#"{"v":1,"node":1,"ev":{"t":"message","m":{"room":1,"seq":1,"kind":"??","sender":null,"target":null,"body":"","client_id":null,"mentions":[],"ts":0,"edited_at":null,"deleted":false}}}"#;
        assert!(decode(bad_kind).is_err());
    }
}
