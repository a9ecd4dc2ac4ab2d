//! The two sides of the protocol cannot drift apart: a sample of every frame the server encodes
//! ([`parley_proto::server::ServerFrame`]) decodes with the client's types ([`parley_proto::client`]) into
//! the same variant and values, and every frame the client writes ([`parley_proto::client::ClientFrame`])
//! decodes on the server ([`parley_proto::inbound::decode_client_frame`]); every REST answer
//! ([`parley_proto::answers`]) decodes with its client mirror ([`parley_proto::client::answers`]) and every
//! REST body ([`parley_proto::rest`], one type for both sides) survives the trip, with guards that fail when
//! a type is added to `answers.rs` or `rest.rs` without a case here.

use parley_proto::client::{self, ClientFrame, RoomRef};
use parley_proto::inbound::{self, decode_client_frame};
use parley_proto::server::*;

fn user(id: i64, name: &str) -> UserW<'_> {
    UserW { id, username: name, display_name: name }
}

fn room() -> RoomW<'static> {
    RoomW {
        id: 3,
        name: "general",
        kind: "group",
        visibility: "public",
        topic: "talk",
        created_by: 1,
        last_seq: 9,
        member_count: 2,
        retention_secs: Some(60),
    }
}

fn message() -> MessageW<'static> {
    MessageW {
        room: 3,
        seq: 9,
        kind: "text",
        sender: Some(user(1, "alice")),
        target: None,
        body: "hello **there**",
        client_id: Some("c1"),
        mentions: vec![2],
        ts: 1_700_000_000_000,
        edited_at: Some(1_700_000_000_500),
        deleted: false,
        files: vec![FileW {
            id: "f1",
            room: 3,
            seq: Some(9),
            name: "cat.png",
            size: 10,
            content_type: "image/png",
            inline: true,
            width: Some(2),
            height: Some(3),
            url: "/api/v1/files/f1".into(),
            thumbnail: Some(ThumbnailW {
                url: "/api/v1/files/f1/thumbnail".into(),
                width: 2,
                height: 3,
                content_type: "image/png",
            }),
        }],
        reply_to: Some(4),
        thread: Some(4),
        quote: Some(QuoteW { seq: 4, sender: Some(user(2, "bob")), excerpt: "earlier", deleted: false }),
        reply_count: Some(2),
        last_reply_ts: Some(1_700_000_000_900),
        reactions: vec![ReactionW { emoji: "👍", count: 2, users: vec![1, 2] }],
    }
}

fn history() -> HistoryW<'static> {
    HistoryW { messages: vec![message()], has_more: true }
}

fn invite() -> InviteW<'static> {
    InviteW { room: room(), invited_by: user(1, "alice"), at: 5 }
}

/// One sample of every server frame. The `match` in [`type_of`] is exhaustive, so a new variant does
/// not compile until it is named there (and should get a sample here).
fn samples() -> Vec<ServerFrame<'static>> {
    let r = Some("r1");
    vec![
        ServerFrame::Hello {
            v: 1,
            user: user(1, "alice"),
            rooms: vec![RoomViewW {
                room: room(),
                role: "owner",
                last_read: 7,
                unread: 2,
                mentions: 1,
                peer: None,
                last_message: Some(message()),
                notify: "all",
                muted: false,
            }],
        },
        ServerFrame::Message { message: message() },
        ServerFrame::MessageUpdated { message: message(), req: r },
        ServerFrame::RoomUpdated { room: room(), req: r },
        ServerFrame::Presence { user: user(2, "bob"), online: true },
        ServerFrame::Typing { room: 3, user: user(2, "bob"), expires_ms: 5000 },
        ServerFrame::Read { room: 3, seq: 9, req: r },
        ServerFrame::UserUpdated { user: user(2, "bob") },
        ServerFrame::Invited { invite: invite() },
        ServerFrame::Invites { invites: vec![invite()], req: r },
        ServerFrame::Recovered { room: 3, seq: 9, req: r },
        ServerFrame::Ok { req: r },
        ServerFrame::Ack { ack: AckW { room: 3, seq: 9, ts: 5, client_id: Some("c1"), duplicate: true }, req: r },
        ServerFrame::Joined { room: room(), req: r },
        ServerFrame::Left { room: 3, req: r },
        ServerFrame::History { room: 3, page: history(), req: r },
        ServerFrame::Pong { req: r },
        ServerFrame::Reactions {
            room: 3,
            seq: 9,
            reactions: vec![ReactionW { emoji: "🎉", count: 1, users: vec![2] }],
            req: r,
        },
        ServerFrame::ThreadUpdated { room: 3, seq: 4, reply_count: 2, last_reply_ts: Some(8) },
        ServerFrame::Notify { room: 3, notify: "mentions", muted: true, req: r },
        ServerFrame::Thread { room: 3, root: message(), page: history(), req: r },
        ServerFrame::Pins {
            room: 3,
            pins: vec![PinW { message: message(), pinned_by: user(1, "alice"), at: 6 }],
            req: r,
        },
        ServerFrame::SearchResults {
            results: SearchResultsW {
                hits: vec![SearchHitW {
                    room: 3,
                    room_name: "general",
                    room_kind: "group",
                    seq: 9,
                    message: message(),
                    snippet: "hello there",
                    highlights: vec![[0, 5]],
                }],
                next_cursor: Some("next"),
            },
            req: r,
        },
        ServerFrame::Error { code: "not_a_member", message: "not a member", retry_after_ms: Some(1000), req: r },
    ]
}

fn type_of(f: &ServerFrame<'_>) -> &'static str {
    match f {
        ServerFrame::Hello { .. } => "hello",
        ServerFrame::Message { .. } => "message",
        ServerFrame::MessageUpdated { .. } => "message_updated",
        ServerFrame::RoomUpdated { .. } => "room_updated",
        ServerFrame::Presence { .. } => "presence",
        ServerFrame::Typing { .. } => "typing",
        ServerFrame::Read { .. } => "read",
        ServerFrame::UserUpdated { .. } => "user_updated",
        ServerFrame::Invited { .. } => "invited",
        ServerFrame::Invites { .. } => "invites",
        ServerFrame::Recovered { .. } => "recovered",
        ServerFrame::Ok { .. } => "ok",
        ServerFrame::Ack { .. } => "ack",
        ServerFrame::Joined { .. } => "joined",
        ServerFrame::Left { .. } => "left",
        ServerFrame::History { .. } => "history",
        ServerFrame::Pong { .. } => "pong",
        ServerFrame::Reactions { .. } => "reactions",
        ServerFrame::ThreadUpdated { .. } => "thread_updated",
        ServerFrame::Notify { .. } => "notify",
        ServerFrame::Thread { .. } => "thread",
        ServerFrame::Pins { .. } => "pins",
        ServerFrame::SearchResults { .. } => "search_results",
        ServerFrame::Error { .. } => "error",
    }
}

/// Frames the terminal client deliberately ignores (decoded as `Unknown`, as the protocol allows).
const CLIENT_IGNORES: &[&str] = &["presence", "invites", "recovered"];

/// The message sample as the client must read it.
fn check_message(m: &client::Message) {
    assert_eq!((m.room, m.seq, m.kind.as_str(), m.body.as_str()), (3, 9, "text", "hello **there**"));
    assert_eq!(m.sender.as_ref().map(|u| u.username.as_str()), Some("alice"));
    assert_eq!(m.client_id.as_deref(), Some("c1"));
    assert_eq!(
        (m.mentions.clone(), m.ts, m.edited_at, m.deleted),
        (vec![2], 1_700_000_000_000, Some(1_700_000_000_500), false)
    );
    assert_eq!(m.files.len(), 1);
    assert_eq!((m.files[0].id.as_str(), m.files[0].name.as_str(), m.files[0].size), ("f1", "cat.png", 10));
    assert_eq!(m.files[0].url, "/api/v1/files/f1");
    assert_eq!((m.reply_to, m.thread, m.reply_count), (Some(4), Some(4), 2));
    let q = m.quote.as_ref().expect("quote");
    assert_eq!((q.seq, q.excerpt.as_str(), q.deleted), (4, "earlier", false));
    assert_eq!(m.reactions, vec![client::Reaction { emoji: "👍".into(), count: 2, users: vec![1, 2] }]);
}

fn check_room(r: &client::Room) {
    assert_eq!((r.id, r.name.as_str(), r.kind.as_str(), r.visibility.as_str()), (3, "general", "group", "public"));
    assert_eq!((r.topic.as_str(), r.created_by, r.last_seq, r.member_count), ("talk", 1, 9, 2));
}

#[test]
fn every_server_frame_decodes_on_the_client() {
    let samples = samples();
    let mut seen = std::collections::BTreeSet::new();
    for frame in &samples {
        let ty = type_of(frame);
        seen.insert(ty);
        let bytes = frame.encode();
        let text = std::str::from_utf8(&bytes).unwrap();
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(v["type"], ty, "{text}");
        let decoded = client::ServerFrame::decode(text).unwrap_or_else(|| panic!("the client cannot read {text}"));
        use client::ServerFrame as C;
        match (&decoded, ty) {
            (C::Unknown, t) => assert!(CLIENT_IGNORES.contains(&t), "the client does not know `{t}`: {text}"),
            (C::Hello { v, user, rooms }, "hello") => {
                assert_eq!((*v, user.username.as_str(), rooms.len()), (1, "alice", 1));
                check_room(&rooms[0]);
                assert_eq!((rooms[0].role.as_deref(), rooms[0].last_read, rooms[0].unread), (Some("owner"), 7, 2));
            }
            (C::Message { message }, "message") | (C::MessageUpdated { message }, "message_updated") => {
                check_message(message)
            }
            (C::RoomUpdated { room, req }, "room_updated") | (C::Joined { room, req }, "joined") => {
                check_room(room);
                assert_eq!(req.as_deref(), Some("r1"));
            }
            (C::Typing { room, user, expires_ms }, "typing") => {
                assert_eq!((*room, user.username.as_str(), *expires_ms), (3, "bob", 5000))
            }
            (C::Read { room, seq, .. }, "read") => assert_eq!((*room, *seq), (3, 9)),
            (C::UserUpdated { user }, "user_updated") => assert_eq!(user.id, 2),
            (C::Invited { room, invited_by, at }, "invited") => {
                check_room(room);
                assert_eq!((invited_by.username.as_str(), *at), ("alice", 5));
            }
            (C::Ok { req }, "ok") | (C::Pong { req }, "pong") => assert_eq!(req.as_deref(), Some("r1")),
            (C::Ack { room, seq, ts, client_id, duplicate, req }, "ack") => {
                assert_eq!((*room, *seq, *ts, client_id.as_deref(), *duplicate), (3, 9, 5, Some("c1"), true));
                assert_eq!(req.as_deref(), Some("r1"));
            }
            (C::Left { room, req }, "left") => assert_eq!((*room, req.as_deref()), (3, Some("r1"))),
            (C::History { room, messages, has_more, req }, "history") => {
                assert_eq!((*room, messages.len(), *has_more, req.as_deref()), (3, 1, true, Some("r1")));
                check_message(&messages[0]);
            }
            (C::Reactions { room, seq, reactions, req }, "reactions") => {
                assert_eq!((*room, *seq, req.as_deref()), (3, 9, Some("r1")));
                assert_eq!(reactions, &vec![client::Reaction { emoji: "🎉".into(), count: 1, users: vec![2] }]);
            }
            (C::ThreadUpdated { room, seq, reply_count, .. }, "thread_updated") => {
                assert_eq!((*room, *seq, *reply_count), (3, 4, 2))
            }
            (C::Notify { room, notify, muted, req }, "notify") => {
                assert_eq!((*room, notify.as_str(), *muted, req.as_deref()), (3, "mentions", true, Some("r1")))
            }
            (C::Thread { room, root, messages, has_more, req }, "thread") => {
                check_message(root);
                assert_eq!((*room, messages.len(), *has_more, req.as_deref()), (3, 1, true, Some("r1")));
            }
            (C::Pins { room, pins, req }, "pins") => {
                assert_eq!((*room, pins.len(), req.as_deref()), (3, 1, Some("r1")));
                check_message(&pins[0].message);
                assert_eq!((pins[0].pinned_by.as_ref().map(|u| u.id), pins[0].at), (Some(1), 6));
            }
            (C::SearchResults { hits, next_cursor, req }, "search_results") => {
                assert_eq!((hits.len(), next_cursor.as_deref(), req.as_deref()), (1, Some("next"), Some("r1")));
                let h = &hits[0];
                assert_eq!((h.room, h.room_name.as_str(), h.seq, h.snippet.as_str()), (3, "general", 9, "hello there"));
                assert_eq!(h.highlights, vec![[0, 5]]);
                check_message(&h.message);
            }
            (C::Error { code, message, req }, "error") => {
                assert_eq!(
                    (code.as_str(), message.as_str(), req.as_deref()),
                    ("not_a_member", "not a member", Some("r1"))
                )
            }
            (other, t) => panic!("`{t}` decoded as {other:?}"),
        }
    }
    assert_eq!(seen.len(), samples.len(), "one sample per frame type");
}

#[test]
fn every_client_frame_decodes_on_the_server() {
    let id = || RoomRef::Id(3);
    let req = || Some("q1".to_owned());
    let frames = vec![
        ClientFrame::Send {
            room: RoomRef::Name("general".into()),
            body: "hi".into(),
            client_id: Some("c1".into()),
            reply_to: Some(4),
            req: req(),
        },
        ClientFrame::React { room: id(), seq: 4, emoji: "👍".into(), req: req() },
        ClientFrame::Unreact { room: id(), seq: 4, emoji: "👍".into(), req: req() },
        ClientFrame::Pin { room: id(), seq: 4, req: req() },
        ClientFrame::Unpin { room: id(), seq: 4, req: req() },
        ClientFrame::Pins { room: id(), req: req() },
        ClientFrame::Search { q: "cats in:general".into(), cursor: Some("c".into()), req: req() },
        ClientFrame::Thread { room: id(), seq: 4, limit: Some(50), req: req() },
        ClientFrame::Notify { room: id(), level: Some("mentions".into()), muted: Some(true), req: req() },
        ClientFrame::Join { room: id(), req: req() },
        ClientFrame::Leave { room: id(), req: req() },
        ClientFrame::History { room: id(), before: Some(9), after: None, limit: Some(20), req: req() },
        ClientFrame::Ping { req: req() },
        ClientFrame::Typing { room: id() },
        ClientFrame::Read { room: id(), seq: 9 },
        ClientFrame::Dm { username: "bob".into(), req: req() },
        ClientFrame::Invite { room: id(), username: "bob".into(), req: req() },
        ClientFrame::Kick { room: id(), username: "bob".into(), req: req() },
        ClientFrame::Ban { room: id(), username: "bob".into(), req: req() },
        ClientFrame::Unban { room: id(), username: "bob".into(), req: req() },
        ClientFrame::SetRole { room: id(), username: "bob".into(), role: "admin".into(), req: req() },
        ClientFrame::Transfer { room: id(), username: "bob".into(), req: req() },
        ClientFrame::Topic { room: id(), topic: "new".into(), req: req() },
    ];
    for f in frames {
        let text = f.encode();
        let got = decode_client_frame(&text).unwrap_or_else(|e| panic!("the server refuses {text}: {e:?}"));
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(inbound::CLIENT_FRAME_TYPES.contains(&v["type"].as_str().unwrap()));
        // Typing and read carry no `req` on the client; everything else carries it back.
        if !matches!(f, ClientFrame::Typing { .. } | ClientFrame::Read { .. }) {
            assert_eq!(got.req(), Some("q1"), "{text}");
        }
        use inbound::ClientFrame as S;
        use inbound::RoomRefW;
        let ok = match (&f, &got) {
            (ClientFrame::Send { .. }, S::Send { room: RoomRefW::Name(n), body, client_id, reply_to, .. }) => {
                n == "general" && body == "hi" && client_id.as_deref() == Some("c1") && *reply_to == Some(4)
            }
            (ClientFrame::React { .. }, S::React { room: RoomRefW::Id(3), seq: 4, emoji, .. })
            | (ClientFrame::Unreact { .. }, S::Unreact { room: RoomRefW::Id(3), seq: 4, emoji, .. }) => emoji == "👍",
            (ClientFrame::Pin { .. }, S::Pin { room: RoomRefW::Id(3), seq: 4, .. })
            | (ClientFrame::Unpin { .. }, S::Unpin { room: RoomRefW::Id(3), seq: 4, .. })
            | (ClientFrame::Pins { .. }, S::Pins { room: RoomRefW::Id(3), .. })
            | (ClientFrame::Join { .. }, S::Join { room: RoomRefW::Id(3), .. })
            | (ClientFrame::Leave { .. }, S::Leave { room: RoomRefW::Id(3), .. })
            | (ClientFrame::Ping { .. }, S::Ping { .. })
            | (ClientFrame::Typing { .. }, S::Typing { room: RoomRefW::Id(3), .. })
            | (ClientFrame::Read { .. }, S::Read { room: RoomRefW::Id(3), seq: 9, .. }) => true,
            (ClientFrame::Search { .. }, S::Search { q, cursor, .. }) => {
                q == "cats in:general" && cursor.as_deref() == Some("c")
            }
            (ClientFrame::Thread { .. }, S::Thread { room: RoomRefW::Id(3), seq: 4, limit, .. }) => *limit == Some(50),
            (ClientFrame::Notify { .. }, S::Notify { room: RoomRefW::Id(3), level, muted, .. }) => {
                level.as_deref() == Some("mentions") && *muted == Some(true)
            }
            (ClientFrame::History { .. }, S::History { room: RoomRefW::Id(3), before, after, limit, .. }) => {
                (*before, *after, *limit) == (Some(9), None, Some(20))
            }
            (ClientFrame::Dm { .. }, S::Dm { username, .. })
            | (ClientFrame::Invite { .. }, S::Invite { room: RoomRefW::Id(3), username, .. })
            | (ClientFrame::Kick { .. }, S::Kick { room: RoomRefW::Id(3), username, .. })
            | (ClientFrame::Ban { .. }, S::Ban { room: RoomRefW::Id(3), username, .. })
            | (ClientFrame::Unban { .. }, S::Unban { room: RoomRefW::Id(3), username, .. })
            | (ClientFrame::Transfer { .. }, S::Transfer { room: RoomRefW::Id(3), username, .. }) => username == "bob",
            (ClientFrame::SetRole { .. }, S::SetRole { room: RoomRefW::Id(3), username, role, .. }) => {
                username == "bob" && role == "admin"
            }
            (ClientFrame::Topic { .. }, S::Topic { room: RoomRefW::Id(3), topic, .. }) => topic == "new",
            _ => false,
        };
        assert!(ok, "{text} decoded as {got:?}");
    }
}

#[test]
fn the_login_answer_decodes_on_the_client() {
    let sent = parley_proto::answers::LoginW { token: "tok".into(), expires_at: 42, user: user(7, "ada") };
    let got: client::Login = serde_json::from_str(&serde_json::to_string(&sent).unwrap()).unwrap();
    assert_eq!((got.token.as_str(), got.expires_at, got.user.id, got.user.username.as_str()), ("tok", 42, 7, "ada"));
}

/// Encodes a server answer and decodes it as its client mirror.
fn decode_as<T: serde::de::DeserializeOwned>(sent: &impl serde::Serialize) -> T {
    let text = serde_json::to_string(sent).expect("answers encode");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("the client cannot read {text}: {e}"))
}

fn room_view() -> RoomViewW<'static> {
    RoomViewW {
        room: room(),
        role: "admin",
        last_read: 7,
        unread: 2,
        mentions: 1,
        peer: Some(user(2, "bob")),
        last_message: Some(message()),
        notify: "all",
        muted: false,
    }
}

fn check_room_view(r: &client::Room) {
    check_room(r);
    assert_eq!((r.role.as_deref(), r.last_read, r.unread), (Some("admin"), 7, 2));
    assert_eq!(r.peer.as_ref().map(|p| (p.id, p.username.as_str())), Some((2, "bob")));
}

fn webhook(secret: Option<&'static str>) -> parley_proto::answers::WebhookW<'static> {
    parley_proto::answers::WebhookW {
        id: 4,
        room: 3,
        url: "https://example.com/hook",
        created_by: 1,
        created_at: 8,
        secret,
    }
}

fn check_webhook(w: &client::Webhook, secret: Option<&str>) {
    assert_eq!((w.id, w.room, w.url.as_str(), w.created_by, w.created_at), (4, 3, "https://example.com/hook", 1, 8));
    assert_eq!(w.secret.as_deref(), secret);
}

fn dead_delivery() -> parley_proto::answers::DeadDeliveryW<'static> {
    parley_proto::answers::DeadDeliveryW {
        delivery: "wh4-3-9",
        webhook: Some(4),
        seq: Some(9),
        attempts: 5,
        error: Some("HTTP 500"),
        enqueued_at: 11,
    }
}

/// Every REST answer (`parley_proto::answers`), encoded as the server does and decoded with its client
/// mirror (`client::answers`, and `client::Login`), keeps its fields. One function per answer type, named
/// in it; [`every_answer_type_has_a_round_trip_case`] fails when a new one has none.
fn answer_cases() -> Vec<(&'static str, fn())> {
    use client::answers as c;
    use parley_proto::answers::*;
    vec![
        ("LoginW", the_login_answer_decodes_on_the_client),
        ("RoomsW", || {
            let got: c::Rooms = decode_as(&RoomsW { rooms: vec![room()] });
            assert_eq!(got.rooms.len(), 1);
            check_room(&got.rooms[0]);
        }),
        ("RoomViewsW", || {
            let got: c::RoomViews = decode_as(&RoomViewsW { rooms: vec![room_view()] });
            assert_eq!(got.rooms.len(), 1);
            check_room_view(&got.rooms[0]);
        }),
        ("ConversationsW", || {
            let got: c::Conversations = decode_as(&ConversationsW { conversations: vec![room_view()] });
            assert_eq!(got.conversations.len(), 1);
            check_room_view(&got.conversations[0]);
        }),
        ("DirectW", || {
            let got: c::Direct = decode_as(&DirectW { room: room(), peer: user(2, "bob") });
            check_room(&got.room);
            assert_eq!((got.peer.id, got.peer.username.as_str(), got.peer.display_name.as_str()), (2, "bob", "bob"));
        }),
        ("MembersW", || {
            let got: c::Members =
                decode_as(&MembersW { members: vec![MemberW { user: user(2, "bob"), role: "admin", online: true }] });
            assert_eq!(
                got.members,
                vec![client::Member {
                    user: client::User { id: 2, username: "bob".into(), display_name: "bob".into() },
                    role: "admin".into(),
                    online: true,
                }]
            );
        }),
        ("BansW", || {
            let got: c::Bans = decode_as(&BansW { bans: vec![BanW { user: user(2, "bob"), banned_at: 12 }] });
            assert_eq!(got.bans.len(), 1);
            assert_eq!((got.bans[0].user.username.as_str(), got.bans[0].banned_at), ("bob", 12));
        }),
        ("InvitesW", || {
            let got: c::Invites = decode_as(&InvitesW { invites: vec![invite()] });
            assert_eq!(got.invites.len(), 1);
            check_room(&got.invites[0].room);
            assert_eq!((got.invites[0].invited_by.username.as_str(), got.invites[0].at), ("alice", 5));
        }),
        ("ReadW", || {
            let got: c::Read = decode_as(&ReadW { room: 3, seq: 9 });
            assert_eq!(got, c::Read { room: 3, seq: 9 });
        }),
        ("TypingW", || {
            let got: c::Typing = decode_as(&TypingW { users: vec![2, 5] });
            assert_eq!(got.users, vec![2, 5]);
        }),
        ("ReactionsW", || {
            let got: c::Reactions = decode_as(&ReactionsW {
                room: 3,
                seq: 9,
                reactions: vec![ReactionW { emoji: "🎉", count: 1, users: vec![2] }],
            });
            assert_eq!((got.room, got.seq), (3, 9));
            assert_eq!(got.reactions, vec![client::Reaction { emoji: "🎉".into(), count: 1, users: vec![2] }]);
        }),
        ("ThreadW", || {
            let got: c::Thread = decode_as(&ThreadW { root: message(), messages: vec![message()], has_more: true });
            check_message(&got.root);
            assert_eq!((got.messages.len(), got.has_more), (1, true));
            check_message(&got.messages[0]);
        }),
        ("ThreadReadW", || {
            let got: c::ThreadRead = decode_as(&ThreadReadW { room: 3, thread: 4, seq: 9 });
            assert_eq!(got, c::ThreadRead { room: 3, thread: 4, seq: 9 });
        }),
        ("ThreadsW", || {
            let got: c::Threads = decode_as(&ThreadsW {
                threads: vec![ThreadSummaryW { room: 3, seq: 4, reply_count: 2, last_reply_ts: Some(8), unread: 1 }],
            });
            assert_eq!(
                got.threads,
                vec![client::ThreadSummary { room: 3, seq: 4, reply_count: 2, last_reply_ts: Some(8), unread: 1 }]
            );
        }),
        ("PinsW", || {
            let got: c::Pins =
                decode_as(&PinsW { pins: vec![PinW { message: message(), pinned_by: user(1, "alice"), at: 6 }] });
            assert_eq!(got.pins.len(), 1);
            check_message(&got.pins[0].message);
            assert_eq!((got.pins[0].pinned_by.as_ref().map(|u| u.id), got.pins[0].at), (Some(1), 6));
        }),
        ("NotifyW", || {
            let got: c::Notify = decode_as(&NotifyW { room: 3, notify: "mentions", muted: true });
            assert_eq!(got, c::Notify { room: 3, notify: "mentions".into(), muted: true });
        }),
        ("WebhookW", || {
            check_webhook(&decode_as(&webhook(Some("s3cret"))), Some("s3cret"));
            check_webhook(&decode_as(&webhook(None)), None);
        }),
        ("WebhooksW", || {
            let got: c::Webhooks = decode_as(&WebhooksW { webhooks: vec![webhook(None)] });
            assert_eq!(got.webhooks.len(), 1);
            check_webhook(&got.webhooks[0], None);
        }),
        ("DeadDeliveryW", || {
            let got: client::DeadDelivery = decode_as(&dead_delivery());
            assert_eq!(
                (got.delivery.as_str(), got.webhook, got.seq, got.attempts, got.error.as_deref(), got.enqueued_at),
                ("wh4-3-9", Some(4), Some(9), 5, Some("HTTP 500"), 11)
            );
        }),
        ("DeadDeliveriesW", || {
            let got: c::DeadDeliveries = decode_as(&DeadDeliveriesW { deliveries: vec![dead_delivery()] });
            assert_eq!(got.deliveries.len(), 1);
            assert_eq!((got.deliveries[0].delivery.as_str(), got.deliveries[0].attempts), ("wh4-3-9", 5));
        }),
    ]
}

#[test]
fn every_rest_answer_decodes_on_the_client() {
    for (_, case) in answer_cases() {
        case();
    }
}

/// The `pub struct` names of a source file (the first word after `pub struct`).
fn pub_structs(src: &str) -> std::collections::BTreeSet<&str> {
    src.lines()
        .filter_map(|l| l.trim_start().strip_prefix("pub struct "))
        .map(|rest| rest.split(|c: char| !(c.is_alphanumeric() || c == '_')).next().unwrap_or(""))
        .collect()
}

#[test]
fn every_answer_type_has_a_round_trip_case() {
    let declared = pub_structs(include_str!("../src/answers.rs"));
    let cases: std::collections::BTreeSet<&str> = answer_cases().into_iter().map(|(name, _)| name).collect();
    assert!(declared.len() >= 20, "parsing answers.rs found only {declared:?}");
    assert_eq!(
        declared, cases,
        "every answer in answers.rs needs a case in `answer_cases` (and no case names a gone one)"
    );
}

/// Every REST request body is one type for both sides (`Serialize` for clients, `Deserialize` for the
/// server): a sample of each survives the trip.
fn body_cases() -> Vec<(&'static str, fn())> {
    use parley_proto::rest::*;
    fn trip<T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(sent: T) {
        let text = serde_json::to_string(&sent).expect("bodies encode");
        let got: T = serde_json::from_str(&text).unwrap_or_else(|e| panic!("the server cannot read {text}: {e}"));
        assert_eq!(got, sent, "{text}");
    }
    vec![
        ("RegisterReq", || {
            trip(RegisterReq { username: "ada".into(), password: "pw".into(), display_name: Some("Ada".into()) })
        }),
        ("LoginReq", || trip(LoginReq { username: "ada".into(), password: "pw".into() })),
        ("PatchMe", || trip(PatchMe { display_name: "Ada".into() })),
        ("OpenDm", || trip(OpenDm { username: "bob".into() })),
        ("CreateRoom", || trip(CreateRoom { name: "lobby".into(), visibility: Some("private".into()) })),
        ("InviteReq", || trip(InviteReq { username: "bob".into() })),
        ("SendReq", || {
            trip(SendReq {
                body: "hi".into(),
                client_id: Some("c1".into()),
                files: vec!["f1".into()],
                reply_to: Some(4),
            })
        }),
        ("PatchRoom", || {
            trip(PatchRoom {
                name: Some("n".into()),
                topic: Some("t".into()),
                visibility: Some("public".into()),
                retention_secs: Some(None),
            });
            trip(PatchRoom { retention_secs: Some(Some(60)), ..PatchRoom::default() })
        }),
        ("Target", || trip(Target { username: "bob".into() })),
        ("SetRole", || trip(SetRole { username: "bob".into(), role: "admin".into() })),
        ("ReadReq", || trip(ReadReq { seq: 9 })),
        ("EditReq", || trip(EditReq { body: "fixed".into() })),
        ("NewWebhook", || trip(NewWebhook { url: "https://example.com/hook".into() })),
        ("SeqReq", || trip(SeqReq { seq: 4 })),
        ("NotifyReq", || trip(NotifyReq { level: Some("mentions".into()), muted: Some(true) })),
    ]
}

#[test]
fn every_rest_body_round_trips_and_has_a_case() {
    let declared = pub_structs(include_str!("../src/rest.rs"));
    let cases = body_cases();
    let named: std::collections::BTreeSet<&str> = cases.iter().map(|(name, _)| *name).collect();
    assert_eq!(declared, named, "every body in rest.rs needs a case in `body_cases`");
    for (_, case) in cases {
        case();
    }
}
