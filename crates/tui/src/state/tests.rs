//! The state machine's tests: frames, network events and keys in, actions and held state out.
use super::*;
use crate::proto::Message;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

pub(super) fn user(id: i64, name: &str) -> User {
    User { id, username: name.into(), display_name: name.into() }
}

pub(super) fn room(id: i64, name: &str, last_seq: i64) -> Room {
    Room {
        id,
        name: name.into(),
        visibility: "public".into(),
        created_by: 1,
        last_seq,
        member_count: 2,
        kind: "group".into(),
        ..Room::default()
    }
}

pub(super) fn msg(room: i64, seq: i64, from: &User, body: &str) -> Message {
    Message {
        room,
        seq,
        kind: "text".into(),
        sender: Some(from.clone()),
        body: body.into(),
        client_id: Some(format!("c{seq}")),
        ts: 1_763_812_345_678 + seq * 1000,
        target: None,
        mentions: vec![],
        edited_at: None,
        deleted: false,
        files: vec![],
        ..Message::default()
    }
}

pub(super) fn hello(rooms: Vec<Room>) -> ServerFrame {
    ServerFrame::Hello { v: 1, user: user(1, "alice"), rooms }
}

fn history(room: i64, msgs: Vec<Message>, has_more: bool, req: &str) -> ServerFrame {
    ServerFrame::History { room, messages: msgs, has_more, req: Some(req.into()) }
}

/// The `(req, room, before, after, limit)` of every history request among `actions`.
/// `(req, room, before, after, limit)`.
type HistoryReq = (String, i64, Option<i64>, Option<i64>, Option<u32>);

fn history_reqs(actions: &[Action]) -> Vec<HistoryReq> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(ClientFrame::History { room: RoomRef::Id(r), before, after, limit, req }) => {
                Some((req.clone().unwrap_or_default(), *r, *before, *after, *limit))
            }
            _ => None,
        })
        .collect()
}

pub(super) fn sends(actions: &[Action]) -> Vec<(String, String)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(ClientFrame::Send { body, client_id, .. }) => {
                Some((client_id.clone().unwrap_or_default(), body.clone()))
            }
            _ => None,
        })
        .collect()
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn ctrl(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
}

fn type_line(s: &mut ChatState, text: &str) -> Vec<Action> {
    for c in text.chars() {
        let a = s.on_key(key(KeyCode::Char(c)));
        assert!(a.iter().all(|a| matches!(a, Action::Send(ClientFrame::Typing { .. }))), "{a:?}");
    }
    s.on_key(key(KeyCode::Enter))
}

fn seqs(s: &ChatState, room: i64) -> Vec<i64> {
    s.room(room).unwrap().messages.keys().copied().collect()
}

#[test]
fn merges_by_seq_without_duplicates_or_gaps() {
    let bob = user(2, "bob");
    let mut s = ChatState::new("t", None);
    let a = s.apply(hello(vec![room(7, "general", 3)]));
    let reqs = history_reqs(&a);
    assert_eq!(reqs.len(), 1);
    let (req, r, before, after, _) = reqs[0].clone();
    assert_eq!((r, before, after), (7, None, None), "nothing held yet: the newest page");
    // A live message overtakes the history reply; then the page arrives, overlapping nothing.
    s.apply(ServerFrame::Message { message: msg(7, 4, &bob, "four") });
    s.apply(history(7, (1..=3).map(|q| msg(7, q, &bob, "x")).collect(), false, &req));
    // The same message twice, and a page overlapping what is held.
    s.apply(ServerFrame::Message { message: msg(7, 4, &bob, "four") });
    s.apply(ServerFrame::Message { message: msg(7, 5, &bob, "five") });
    s.apply(history(7, (2..=5).map(|q| msg(7, q, &bob, "x")).collect(), false, "stale"));
    assert_eq!(seqs(&s, 7), vec![1, 2, 3, 4, 5]);
    assert_eq!(s.room(7).unwrap().messages[&4].body, "four", "a held message is never replaced");
    assert_eq!(s.room(7).unwrap().room.last_seq, 5);
}

#[test]
fn a_gap_in_live_messages_is_fetched() {
    let bob = user(2, "bob");
    let mut s = ChatState::new("t", None);
    let a = s.apply(hello(vec![room(7, "general", 2)]));
    let req = history_reqs(&a)[0].0.clone();
    s.apply(history(7, (1..=2).map(|q| msg(7, q, &bob, "x")).collect(), false, &req));
    let a = s.apply(ServerFrame::Message { message: msg(7, 6, &bob, "six") });
    let reqs = history_reqs(&a);
    assert_eq!(reqs.len(), 1);
    assert_eq!((reqs[0].1, reqs[0].3), (7, Some(2)));
    s.apply(history(7, (3..=6).map(|q| msg(7, q, &bob, "x")).collect(), false, &reqs[0].0));
    assert_eq!(seqs(&s, 7), vec![1, 2, 3, 4, 5, 6]);
}

#[test]
fn recovery_asks_for_everything_after_the_last_seq_in_pages_of_200() {
    let bob = user(2, "bob");
    let mut s = ChatState::new("t", None);
    let a = s.apply(hello(vec![room(1, "general", 5), room(2, "random", 0)]));
    for (req, r, ..) in history_reqs(&a) {
        if r == 1 {
            s.apply(history(1, (1..=5).map(|q| msg(1, q, &bob, "x")).collect(), false, &req));
        } else {
            s.apply(history(2, vec![], false, &req));
        }
    }
    assert!(s.is_settled());
    s.on_net(NetEvent::Disconnected { reason: "gone".into(), retry_in: Duration::from_millis(500) });
    assert_eq!(s.connection, Connection::Offline);
    assert!(s.status.as_ref().unwrap().error);

    // A third room appeared and "random" was left while we were away.
    let a = s.apply(hello(vec![room(1, "general", 450), room(3, "new", 2)]));
    let mut reqs = history_reqs(&a);
    reqs.sort_by_key(|r| r.1);
    assert_eq!(reqs.len(), 2);
    assert_eq!((reqs[0].1, reqs[0].2, reqs[0].3, reqs[0].4), (1, None, Some(5), Some(RECOVERY_PAGE)));
    assert_eq!((reqs[1].1, reqs[1].2, reqs[1].3), (3, None, None));
    assert!(s.room(2).is_none(), "a room left meanwhile is dropped");

    // Pages of 200 until has_more is false, each continuing after the page's last seq.
    let mut req = reqs[0].0.clone();
    let mut from = 6;
    loop {
        let to = (from + 199).min(450);
        let a = s.apply(history(1, (from..=to).map(|q| msg(1, q, &bob, "x")).collect(), to < 450, &req));
        let next = history_reqs(&a);
        if to == 450 {
            assert!(next.is_empty());
            break;
        }
        assert_eq!(next.len(), 1);
        assert_eq!((next[0].3, next[0].4), (Some(to), Some(RECOVERY_PAGE)));
        req = next[0].0.clone();
        from = to + 1;
    }
    assert_eq!(seqs(&s, 1), (1..=450).collect::<Vec<_>>());
    assert!(!s.room(1).unwrap().catching_up);
}

#[test]
fn unacknowledged_sends_are_resent_with_the_same_client_id() {
    let mut s = ChatState::new("run1", None);
    s.apply(hello(vec![room(1, "general", 0)]));
    let a = type_line(&mut s, "hello there");
    let sent = sends(&a);
    assert_eq!(sent, vec![("run1-1".to_owned(), "hello there".to_owned())]);
    assert_eq!(s.pending.len(), 1);
    assert!(s.input().is_empty());

    s.on_net(NetEvent::Disconnected { reason: "x".into(), retry_in: Duration::ZERO });
    // Typed while offline: queued too.
    let a = type_line(&mut s, "second");
    assert_eq!(sends(&a)[0].0, "run1-2");
    let a = s.apply(hello(vec![room(1, "general", 0)]));
    assert_eq!(
        sends(&a),
        vec![("run1-1".to_owned(), "hello there".to_owned()), ("run1-2".to_owned(), "second".to_owned())]
    );
    s.apply(ServerFrame::Ack { room: 1, seq: 1, ts: 0, client_id: Some("run1-1".into()), duplicate: true, req: None });
    assert_eq!(s.pending.len(), 1);
    // The other one shows up in a history page (its ack was lost): it is sent.
    let mut m = msg(1, 2, &user(1, "alice"), "second");
    m.client_id = Some("run1-2".into());
    s.apply(ServerFrame::History { room: 1, messages: vec![m], has_more: false, req: None });
    assert!(s.pending.is_empty());
}

#[test]
fn a_refused_send_goes_back_to_the_input_line() {
    let mut s = ChatState::new("t", None);
    s.apply(hello(vec![room(1, "general", 0)]));
    type_line(&mut s, "too long");
    s.apply(ServerFrame::Error {
        code: "message_too_large".into(),
        message: "too large".into(),
        req: Some("t-1".into()),
    });
    assert!(s.pending.is_empty());
    assert_eq!(s.input(), "too long");
    assert_eq!(s.status.as_ref().unwrap().text, "message not sent: too large");
}

#[test]
fn commands_become_actions() {
    let mut s = ChatState::new("t", None);
    s.apply(hello(vec![room(1, "general", 0)]));
    let a = type_line(&mut s, "/join random");
    let Action::Send(ClientFrame::Join { room: RoomRef::Name(n), req: Some(req) }) = &a[0] else { panic!("{a:?}") };
    assert_eq!(n, "random");
    // The reply selects the room and fetches its newest page; the hub's copy of the event changes nothing.
    let a = s.apply(ServerFrame::Joined { room: room(2, "random", 3), req: Some(req.clone()) });
    assert_eq!(history_reqs(&a).len(), 1);
    assert_eq!(s.current_room().unwrap().room.name, "random");
    assert!(s.apply(ServerFrame::Joined { room: room(2, "random", 3), req: None }).is_empty());
    assert_eq!(s.rooms.len(), 2);

    let a = type_line(&mut s, "/leave");
    assert!(matches!(&a[0], Action::Send(ClientFrame::Leave { room: RoomRef::Id(2), .. })));
    s.apply(ServerFrame::Left { room: 2, req: None });
    assert_eq!(s.rooms.len(), 1);
    assert_eq!(s.current_room().unwrap().room.name, "general");

    assert_eq!(
        type_line(&mut s, "/create ops private"),
        vec![Action::CreateRoom { name: "ops".into(), private: true }]
    );
    let a = s.on_net(NetEvent::RoomCreated(room(9, "ops", 1)));
    assert_eq!(history_reqs(&a).len(), 1);
    assert_eq!(s.current_room().unwrap().room.name, "ops");

    assert_eq!(type_line(&mut s, "/nick Alice L"), vec![Action::SetDisplayName("Alice L".into())]);
    assert_eq!(sends(&type_line(&mut s, "//shrug")), vec![("t-1".to_owned(), "/shrug".to_owned())]);
    assert!(type_line(&mut s, "/bogus").is_empty());
    assert!(s.status.as_ref().unwrap().error);
    assert_eq!(type_line(&mut s, "/quit"), vec![Action::Quit]);
    assert!(s.quit);
}

#[test]
fn keys_edit_switch_and_quit() {
    let mut s = ChatState::new("t", Some("random".into()));
    let a = s.apply(hello(vec![room(1, "general", 0), room(2, "random", 0), room(3, "ops", 0)]));
    assert!(a.iter().all(|a| matches!(a, Action::Send(ClientFrame::History { .. }))), "--room is held: no join");
    assert_eq!(s.current, 1, "--room opens first");
    s.on_key(key(KeyCode::Tab));
    assert_eq!(s.current, 2);
    s.on_key(ctrl('n'));
    assert_eq!(s.current, 0);
    s.on_key(ctrl('p'));
    assert_eq!(s.current, 2);
    for c in "helo wrld".chars() {
        s.on_key(key(KeyCode::Char(c)));
    }
    for _ in 0..3 {
        s.on_key(key(KeyCode::Left));
    }
    s.on_key(key(KeyCode::Char('o')));
    s.on_key(key(KeyCode::Home));
    s.on_key(key(KeyCode::Right));
    s.on_key(key(KeyCode::Right));
    s.on_key(key(KeyCode::Char('l')));
    assert_eq!(s.input(), "hello world");
    s.on_key(ctrl('w'));
    assert_eq!(s.input(), "lo world", "Ctrl-W deletes the word before the cursor");
    assert_eq!(s.composer.cursor().1, 0);
    s.on_key(ctrl('u'));
    assert_eq!(s.input(), "");
    assert_eq!(s.on_key(ctrl('c')), vec![Action::Quit]);
}

#[test]
fn an_unknown_initial_room_is_joined() {
    let mut s = ChatState::new("t", Some("#lobby".into()));
    let a = s.apply(hello(vec![room(1, "general", 0)]));
    assert!(
        a.iter().any(|a| matches!(a, Action::Send(ClientFrame::Join { room: RoomRef::Name(n), .. }) if n == "lobby"))
    );
}

#[test]
fn scrolling_to_the_top_loads_older_history() {
    let bob = user(2, "bob");
    let mut s = ChatState::new("t", None);
    let a = s.apply(hello(vec![room(1, "general", 120)]));
    let req = history_reqs(&a)[0].0.clone();
    s.apply(history(1, (71..=120).map(|q| msg(1, q, &bob, "x")).collect(), true, &req));
    s.pane_height = 20;
    s.pane_width = 60;
    assert!(history_reqs(&s.on_key(key(KeyCode::PageUp))).is_empty());
    assert_eq!(s.rooms[0].scroll, 19);
    let a = s.on_key(key(KeyCode::PageUp));
    let reqs = history_reqs(&a);
    assert_eq!(reqs.len(), 1);
    assert_eq!((reqs[0].2, reqs[0].3), (Some(71), None), "older page: before the first seq held");
    assert_eq!(s.rooms[0].scroll, 30, "clamped at the top");
    assert!(history_reqs(&s.on_key(key(KeyCode::PageUp))).is_empty(), "one older page at a time");
    s.apply(history(1, (21..=70).map(|q| msg(1, q, &bob, "x")).collect(), true, &reqs[0].0));
    assert_eq!(seqs(&s, 1), (21..=120).collect::<Vec<_>>());
    assert_eq!(s.rooms[0].scroll, 30, "the view stays where it was");
    s.on_key(key(KeyCode::PageDown));
    assert_eq!(s.rooms[0].scroll, 11);
    s.on_key(key(KeyCode::Esc));
    assert_eq!(s.rooms[0].scroll, 0);
}

fn reads(actions: &[Action]) -> Vec<(i64, i64)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(ClientFrame::Read { room: RoomRef::Id(r), seq }) => Some((*r, *seq)),
            _ => None,
        })
        .collect()
}

#[test]
fn edits_and_deletions_are_applied_live_and_from_history() {
    let bob = user(2, "bob");
    let mut s = ChatState::new("t", None);
    let a = s.apply(hello(vec![room(1, "general", 3)]));
    let req = history_reqs(&a)[0].0.clone();
    s.apply(history(1, (1..=3).map(|q| msg(1, q, &bob, "original")).collect(), false, &req));
    let mut edited = msg(1, 2, &bob, "fixed typo");
    edited.edited_at = Some(99);
    s.apply(ServerFrame::MessageUpdated { message: edited });
    let mut gone = msg(1, 3, &bob, "");
    gone.deleted = true;
    s.apply(ServerFrame::MessageUpdated { message: gone.clone() });
    let held = &s.room(1).unwrap().messages;
    assert_eq!((held[&2].body.as_str(), held[&2].edited_at), ("fixed typo", Some(99)));
    assert!(held[&3].deleted && held[&3].body.is_empty(), "a tombstone keeps its seq");
    // An update of a message not held (scrolled away) is ignored, and a stale page never undoes one.
    s.apply(ServerFrame::MessageUpdated { message: msg(1, 40, &bob, "far away") });
    assert!(!s.room(1).unwrap().messages.contains_key(&40));
    s.apply(history(1, (1..=3).map(|q| msg(1, q, &bob, "original")).collect(), false, "again"));
    assert_eq!(s.room(1).unwrap().messages[&2].body, "fixed typo");
    assert!(s.room(1).unwrap().messages[&3].deleted);
    // Edited while away: the catch-up page brings the new state.
    let mut later = msg(1, 1, &bob, "edited while away");
    later.edited_at = Some(5);
    s.apply(history(1, vec![later], false, "h-x"));
    assert_eq!(s.room(1).unwrap().messages[&1].body, "edited while away");
}

#[test]
fn read_markers_follow_what_the_user_sees() {
    let bob = user(2, "bob");
    let mut s = ChatState::new("t", None);
    let mut general = room(1, "general", 3);
    general.last_read = 1;
    general.unread = 2;
    let a = s.apply(hello(vec![general, room(2, "random", 0)]));
    assert_eq!(s.room(1).unwrap().unread, 2, "the server's unread count is shown at once");
    assert!(reads(&a).is_empty(), "nothing held yet: nothing read");
    let req = history_reqs(&a).iter().find(|r| r.1 == 1).unwrap().0.clone();
    let a = s.apply(history(1, (1..=3).map(|q| msg(1, q, &bob, "x")).collect(), false, &req));
    assert_eq!(reads(&a), vec![(1, 3)], "the open room's newest page is read");
    assert_eq!(s.room(1).unwrap().unread, 0);
    // A live message in the open room at the bottom: read at once; in another room: counted unread.
    assert_eq!(reads(&s.apply(ServerFrame::Message { message: msg(1, 4, &bob, "live") })), vec![(1, 4)]);
    assert!(reads(&s.apply(ServerFrame::Message { message: msg(2, 1, &bob, "elsewhere") })).is_empty());
    assert_eq!(s.room(2).unwrap().unread, 1);
    // Scrolled up, new messages are not read until the user comes back to the bottom.
    s.pane_height = 2;
    s.on_key(key(KeyCode::PageUp));
    assert!(s.rooms[0].scroll > 0);
    assert!(reads(&s.apply(ServerFrame::Message { message: msg(1, 5, &bob, "while up") })).is_empty());
    assert_eq!(s.room(1).unwrap().unread, 1);
    assert_eq!(reads(&s.on_key(key(KeyCode::Esc))), vec![(1, 5)]);
    // Switching to the other room reads it; a read from another device clears the count.
    assert_eq!(reads(&s.on_key(key(KeyCode::Tab))), vec![(2, 1)]);
    s.apply(ServerFrame::Message { message: msg(1, 6, &bob, "x") });
    assert_eq!(s.room(1).unwrap().unread, 1);
    s.apply(ServerFrame::Read { room: 1, seq: 6 });
    assert_eq!(s.room(1).unwrap().unread, 0);
    assert!(reads(&s.on_key(key(KeyCode::Tab))).is_empty(), "already read elsewhere: nothing to send");
}

#[test]
fn msg_opens_a_conversation_named_by_its_peer() {
    let mut s = ChatState::new("t", None);
    s.apply(hello(vec![room(1, "general", 0)]));
    let a = type_line(&mut s, "/msg bob hi there");
    let Action::Send(ClientFrame::Dm { username, req: Some(req) }) = &a[0] else { panic!("{a:?}") };
    assert_eq!(username, "bob");
    let dm =
        Room { id: 5, name: "dm-1-2".into(), kind: "direct".into(), visibility: "private".into(), ..Room::default() };
    let a = s.apply(ServerFrame::Joined { room: dm.clone(), req: Some(req.clone()) });
    assert_eq!(s.current_room().unwrap().room.label(), "@bob");
    assert_eq!(sends(&a), vec![("t-1".to_owned(), "hi there".to_owned())], "the text goes into the conversation");
    assert!(!a.contains(&Action::LoadDms), "the peer is known");
    // Going back to it later is local; a conversation opened by someone else asks who it is with.
    s.on_key(key(KeyCode::Tab));
    assert!(type_line(&mut s, "/msg @bob").iter().all(|a| matches!(a, Action::Send(ClientFrame::Read { .. }))));
    assert_eq!(s.current_room().unwrap().room.id, 5);
    let other =
        Room { id: 6, name: "dm-1-3".into(), kind: "direct".into(), visibility: "private".into(), ..Room::default() };
    let a = s.apply(ServerFrame::Joined { room: other, req: None });
    assert!(a.contains(&Action::LoadDms));
    let carol = user(3, "carol");
    s.on_net(NetEvent::Dms(vec![Room { id: 6, kind: "direct".into(), peer: Some(carol), ..Room::default() }]));
    assert_eq!(s.room(6).unwrap().room.label(), "@carol");
}

#[test]
fn moderation_commands_send_frames_and_report_the_outcome() {
    let mut s = ChatState::new("t", None);
    s.apply(hello(vec![room(1, "general", 0)]));
    let cases: Vec<(&str, ClientFrame)> = vec![
        ("/kick bob", ClientFrame::Kick { room: RoomRef::Id(1), username: "bob".into(), req: None }),
        ("/ban bob", ClientFrame::Ban { room: RoomRef::Id(1), username: "bob".into(), req: None }),
        ("/unban bob", ClientFrame::Unban { room: RoomRef::Id(1), username: "bob".into(), req: None }),
        (
            "/op bob",
            ClientFrame::SetRole { room: RoomRef::Id(1), username: "bob".into(), role: "admin".into(), req: None },
        ),
        (
            "/deop bob",
            ClientFrame::SetRole { room: RoomRef::Id(1), username: "bob".into(), role: "member".into(), req: None },
        ),
        ("/invite carol", ClientFrame::Invite { room: RoomRef::Id(1), username: "carol".into(), req: None }),
        ("/owner bob", ClientFrame::Transfer { room: RoomRef::Id(1), username: "bob".into(), req: None }),
        ("/topic Release day", ClientFrame::Topic { room: RoomRef::Id(1), topic: "Release day".into(), req: None }),
    ];
    for (line, mut expected) in cases {
        let a = type_line(&mut s, line);
        let Action::Send(frame) = &a[0] else { panic!("{line}: {a:?}") };
        let req = match frame {
            ClientFrame::Kick { req, .. }
            | ClientFrame::Ban { req, .. }
            | ClientFrame::Unban { req, .. }
            | ClientFrame::SetRole { req, .. }
            | ClientFrame::Invite { req, .. }
            | ClientFrame::Transfer { req, .. }
            | ClientFrame::Topic { req, .. } => req.clone(),
            other => panic!("{line}: {other:?}"),
        };
        match &mut expected {
            ClientFrame::Kick { req: r, .. }
            | ClientFrame::Ban { req: r, .. }
            | ClientFrame::Unban { req: r, .. }
            | ClientFrame::SetRole { req: r, .. }
            | ClientFrame::Invite { req: r, .. }
            | ClientFrame::Transfer { req: r, .. }
            | ClientFrame::Topic { req: r, .. } => *r = req.clone(),
            _ => unreachable!(),
        }
        assert_eq!(frame, &expected, "{line}");
        s.apply(ServerFrame::Ok { req });
        assert!(!s.status.as_ref().unwrap().error, "{line}: {:?}", s.status);
    }
    assert_eq!(s.status.as_ref().unwrap().text, "topic of #general set");
    let a = type_line(&mut s, "/kick alice");
    let Action::Send(ClientFrame::Kick { req, .. }) = &a[0] else { panic!() };
    s.apply(ServerFrame::Error { code: "forbidden".into(), message: "not allowed".into(), req: req.clone() });
    assert_eq!(s.status.as_ref().unwrap().text, "refused (removed alice from #general): not allowed");
    assert_eq!(type_line(&mut s, "/who"), vec![Action::LoadMembers { room: 1 }]);
    assert_eq!(type_line(&mut s, "/list"), vec![Action::LoadPublicRooms]);
    assert_eq!(sends(&type_line(&mut s, "/me waves")), vec![("t-1".to_owned(), "/me waves".to_owned())]);
}

#[test]
fn typing_is_sent_while_writing_a_message_at_most_every_few_seconds() {
    let mut s = ChatState::new("t", None);
    s.apply(hello(vec![room(1, "general", 0)]));
    let mut typing = 0;
    for c in "hello".chars() {
        typing += s
            .on_key(key(KeyCode::Char(c)))
            .iter()
            .filter(|a| matches!(a, Action::Send(ClientFrame::Typing { room: RoomRef::Id(1) })))
            .count();
    }
    assert_eq!(typing, 1);
    s.on_key(ctrl('u'));
    for c in "/who".chars() {
        assert!(s.on_key(key(KeyCode::Char(c))).is_empty(), "commands are not typing");
    }
}

#[test]
fn up_and_down_walk_the_lines_sent_and_alt_enter_makes_a_new_line() {
    let mut s = ChatState::new("t", None);
    s.apply(hello(vec![room(1, "general", 0)]));
    type_line(&mut s, "first");
    type_line(&mut s, "second");
    for c in "draft".chars() {
        s.on_key(key(KeyCode::Char(c)));
    }
    s.on_key(key(KeyCode::Up));
    assert_eq!(s.input(), "second");
    s.on_key(key(KeyCode::Up));
    assert_eq!(s.input(), "first");
    s.on_key(key(KeyCode::Up));
    assert_eq!(s.input(), "first", "the oldest stays");
    s.on_key(key(KeyCode::Down));
    s.on_key(key(KeyCode::Down));
    assert_eq!(s.input(), "draft", "the line being written comes back");
    s.on_key(ctrl('u'));
    for c in "a".chars() {
        s.on_key(key(KeyCode::Char(c)));
    }
    s.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::ALT));
    s.on_key(key(KeyCode::Char('b')));
    assert_eq!(s.input(), "a\nb");
    let a = s.on_key(key(KeyCode::Enter));
    assert_eq!(sends(&a)[0].1, "a\nb", "one message of two lines");
}

#[test]
fn an_invitation_is_announced_with_how_to_accept_it() {
    let mut s = ChatState::new("t", None);
    s.apply(hello(vec![room(1, "general", 0)]));
    let frame = ServerFrame::decode(
        r#"{"type":"invited","room":{"id":7,"name":"club","kind":"group","visibility":"private"},"invited_by":{"id":2,"username":"bob","display_name":"Bob"},"at":5}"#,
    )
    .unwrap();
    assert!(s.apply(frame).is_empty());
    assert_eq!(s.status.as_ref().unwrap().text, "Bob invited you to #club (/join club)");
}
