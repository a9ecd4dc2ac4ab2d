//! The hub's unit tests: fan-out, slow clients, presence (here and across nodes), routing interest.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::*;
use crate::core::domain::{Message, MessageKind, RoomKind, Visibility};
use crate::core::ports::broker::BrokerSink;

fn room(id: i64) -> Room {
    Room {
        id: RoomId(id),
        name: format!("r{id}"),
        kind: RoomKind::Group,
        visibility: Visibility::Public,
        topic: String::new(),
        created_by: UserId(1),
        last_seq: 0,
        member_count: 1,
        retention_secs: None,
    }
}

fn user(id: i64) -> User {
    User { id: UserId(id), username: format!("u{id}"), display_name: format!("U{id}") }
}

fn msg(room: i64, seq: i64) -> Arc<Message> {
    Arc::new(Message {
        room: RoomId(room),
        seq,
        kind: MessageKind::Text,
        sender: None,
        target: None,
        body: format!("{seq}"),
        client_id: None,
        mentions: vec![],
        files: vec![],
        ts: 0,
        edited_at: None,
        deleted: false,
        reply_to: None,
        thread: None,
        extras: Default::default(),
    })
}

fn seq_of(d: &Delivery) -> i64 {
    match &d.event {
        HubEvent::Message(m) => m.seq,
        other => panic!("not a message: {other:?}"),
    }
}

fn presence_of(rx: &mut Inbox) -> Vec<(i64, bool)> {
    let mut out = Vec::new();
    while let Ok(d) = rx.try_recv() {
        if let HubEvent::Presence { user, online } = &d.event {
            out.push((user.id.0, *online));
        }
    }
    out
}

#[tokio::test]
async fn presence_is_cluster_wide_and_a_silent_node_expires() {
    let (one, two) = (Hub::new(16, NodeId(1)), Hub::new(16, NodeId(2)));
    let mut from_two = two.presence_changes(16);
    let watcher = one.register(&user(1), SessionId("w".into()));
    one.follow(watcher.id, &[room(7)]);
    one.announce_online(watcher.id);
    let mut w = watcher;

    // User 2 connects to node two: node one's watcher hears it once, from node two's change event.
    let r2 = two.register(&user(2), SessionId("s2".into()));
    two.follow(r2.id, &[room(7)]);
    two.announce_online(r2.id);
    let change = from_two.try_recv().unwrap();
    one.deliver(change.clone());
    one.deliver(change);
    assert_eq!(presence_of(&mut w.rx), vec![(2, true)]);
    assert!(one.online([UserId(2)]).contains(&UserId(2)));

    // User 2 also connects to node one and leaves it: still online (on node two), so no event.
    let local = one.register(&user(2), SessionId("s3".into()));
    one.follow(local.id, &[room(7)]);
    one.announce_online(local.id);
    drop(local);
    assert_eq!(presence_of(&mut w.rx), vec![]);

    // Node two's heartbeat lists user 2; then node two goes silent and expires.
    one.deliver(BrokerEvent::NodeAlive { node: NodeId(2), users: two.local_users() });
    assert_eq!(one.expire_nodes(Duration::from_secs(60)), 0);
    assert_eq!(presence_of(&mut w.rx), vec![]);
    assert_eq!(one.expire_nodes(Duration::ZERO), 1);
    assert_eq!(presence_of(&mut w.rx), vec![(2, false)]);
    assert!(one.online([UserId(2)]).is_empty());

    // A heartbeat brings it back; one without the user takes it away again.
    one.deliver(BrokerEvent::NodeAlive { node: NodeId(2), users: two.local_users() });
    one.deliver(BrokerEvent::NodeAlive { node: NodeId(2), users: vec![] });
    assert_eq!(presence_of(&mut w.rx), vec![(2, true), (2, false)]);

    // A node ignores its own events.
    one.deliver(BrokerEvent::NodeAlive { node: NodeId(1), users: two.local_users() });
    assert_eq!(presence_of(&mut w.rx), vec![]);
}

fn big_room(id: i64, members: i64) -> Room {
    Room { member_count: members, ..room(id) }
}

/// Frames queued to all connections by one more user connecting into a room of `size` members
/// (all connected), and by that user leaving again.
fn frames_per_connect(size: i64) -> (usize, usize) {
    let hub = Hub::new(4, NodeId(1));
    let r = big_room(1, size + 1);
    let mut members: Vec<Registration> = (0..size)
        .map(|i| {
            let reg = hub.register(&user(100 + i), SessionId(format!("s{i}")));
            hub.follow(reg.id, std::slice::from_ref(&r));
            hub.announce_online(reg.id);
            reg
        })
        .collect();
    let drain = |members: &mut Vec<Registration>| {
        members.iter_mut().map(|m| std::iter::from_fn(|| m.rx.try_recv().ok()).count()).sum::<usize>()
    };
    drain(&mut members);
    let newcomer = hub.register(&user(1), SessionId("new".into()));
    hub.follow(newcomer.id, std::slice::from_ref(&r));
    hub.announce_online(newcomer.id);
    let on = drain(&mut members);
    drop(newcomer);
    (on, drain(&mut members))
}

#[test]
fn a_connect_into_a_big_room_queues_no_frames_per_member() {
    // Small rooms: every member hears of it (exact presence).
    assert_eq!(frames_per_connect(10), (10, 10));
    assert_eq!(
        frames_per_connect(PRESENCE_ROOM_LIMIT - 1),
        ((PRESENCE_ROOM_LIMIT - 1) as usize, (PRESENCE_ROOM_LIMIT - 1) as usize)
    );
    // Past the limit the work per connect does not grow with the room.
    for size in [PRESENCE_ROOM_LIMIT, 2_000, 10_000] {
        assert_eq!(frames_per_connect(size), (0, 0), "room of {size}");
    }
}

#[test]
fn a_room_that_grows_past_the_limit_stops_pushing_presence() {
    let hub = Hub::new(8, NodeId(1));
    let mut a = hub.register(&user(1), SessionId("a".into()));
    hub.follow(a.id, &[big_room(1, 2)]);
    hub.announce_online(a.id);
    let b = hub.register(&user(2), SessionId("b".into()));
    hub.follow(b.id, &[big_room(1, 2)]);
    hub.announce_online(b.id);
    assert_eq!(presence_of(&mut a.rx), vec![(2, true)]);
    hub.deliver(BrokerEvent::RoomUpdated(big_room(1, PRESENCE_ROOM_LIMIT + 1)));
    drop(b);
    assert_eq!(presence_of(&mut a.rx), vec![]);
    // The online state is still answered on request.
    assert!(hub.online([UserId(1), UserId(2)]) == HashSet::from([UserId(1)]));
}

#[derive(Default)]
struct Seen(parking_lot::Mutex<Vec<(char, i64, bool)>>);
impl Interest for Seen {
    fn room(&self, room: RoomId, wanted: bool) {
        self.0.lock().push(('r', room.0, wanted));
    }
    fn user(&self, user: UserId, wanted: bool) {
        self.0.lock().push(('u', user.0, wanted));
    }
}

#[test]
fn interest_follows_the_first_and_last_local_follower() {
    let hub = Hub::new(8, NodeId(1));
    let seen = Arc::new(Seen::default());
    hub.set_interest(seen.clone());
    let a = hub.register(&user(1), SessionId("a".into()));
    hub.follow(a.id, &[room(1), room(2)]);
    let b = hub.register(&user(1), SessionId("b".into()));
    hub.follow(b.id, &[room(1)]);
    hub.deliver(BrokerEvent::Left { room: room(2), user: UserId(1) });
    hub.deliver(BrokerEvent::Joined { room: room(3), user: UserId(1) });
    drop(a);
    let mut got = std::mem::take(&mut *seen.0.lock());
    got.sort();
    assert_eq!(got, vec![('r', 1, true), ('r', 2, false), ('r', 2, true), ('r', 3, true), ('u', 1, true)]);
    drop(b);
    let mut got = std::mem::take(&mut *seen.0.lock());
    got.sort();
    assert_eq!(got, vec![('r', 1, false), ('r', 3, false), ('u', 1, false)]);
}

/// Heartbeats are a count and a digest; a node whose picture differs (it just started, or a delta
/// was lost) asks for a snapshot and is repaired by it; a matching beat asks for nothing.
#[tokio::test]
async fn a_beat_that_does_not_match_asks_for_a_snapshot_that_repairs_presence() {
    let (one, two) = (Hub::new(16, NodeId(1)), Hub::new(16, NodeId(2)));
    let (mut from_one, mut from_two) = (one.presence_changes(16), two.presence_changes(16));
    let mut w = one.register(&user(1), SessionId("w".into()));
    one.follow(w.id, &[room(7)]);
    one.announce_online(w.id);
    while from_one.try_recv().is_ok() {}
    let regs: Vec<Registration> = (2..=4)
        .map(|i| {
            let r = two.register(&user(i), SessionId(format!("s{i}")));
            two.follow(r.id, &[room(7)]);
            two.announce_online(r.id);
            r
        })
        .collect();
    while from_two.try_recv().is_ok() {} // the deltas are lost
    let beat = two.beat();
    assert!(matches!(beat, BrokerEvent::NodeBeat { users: 3, .. }), "{beat:?}");
    one.deliver(beat);
    let want = from_one.try_recv().unwrap();
    assert!(matches!(want, BrokerEvent::SnapshotWanted { of: NodeId(2) }), "{want:?}");
    one.deliver(want.clone()); // not for node one: ignored
    assert!(from_one.try_recv().is_err());
    two.deliver(want);
    let snapshot = from_two.try_recv().unwrap();
    assert!(matches!(&snapshot, BrokerEvent::NodeAlive { users, .. } if users.len() == 3), "{snapshot:?}");
    one.deliver(snapshot);
    let mut got = presence_of(&mut w.rx);
    got.sort();
    assert_eq!(got, vec![(2, true), (3, true), (4, true)]);
    one.deliver(two.beat());
    assert!(from_one.try_recv().is_err(), "the pictures match: no snapshot");
    // A user leaves node two and that delta is delivered: still in step.
    drop(regs);
    while let Ok(change) = from_two.try_recv() {
        one.deliver(change);
    }
    one.deliver(two.beat());
    assert!(from_one.try_recv().is_err());
    assert!(one.online([UserId(2), UserId(3), UserId(4)]).is_empty());
}

#[tokio::test]
async fn fan_out_reaches_followers_once_in_order() {
    let hub = Hub::new(16, NodeId(1));
    let mut a = hub.register(&user(1), SessionId("s1".into()));
    hub.follow(a.id, &[room(1)]);
    let mut b = hub.register(&user(2), SessionId("s2".into()));
    hub.follow(b.id, &[room(1), room(2), room(1)]);
    for s in [1, 2, 2, 1, 3] {
        hub.deliver(BrokerEvent::Message(msg(1, s)));
    }
    hub.deliver(BrokerEvent::Message(msg(2, 1)));
    for rx in [&mut a.rx, &mut b.rx] {
        assert_eq!(
            [seq_of(&rx.recv().await.unwrap()), seq_of(&rx.recv().await.unwrap()), seq_of(&rx.recv().await.unwrap())],
            [1, 2, 3]
        );
    }
    assert_eq!(seq_of(&b.rx.recv().await.unwrap()), 1);
    assert!(a.rx.try_recv().is_err(), "a does not follow room 2");
}

#[test]
fn slow_client_disconnects_are_counted() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    let recorder = DebuggingRecorder::new();
    let snapshot = recorder.snapshotter();
    let hub = Hub::new(2, NodeId(1));
    let slow = hub.register(&user(1), SessionId("s1".into()));
    hub.follow(slow.id, &[room(1)]);
    metrics::with_local_recorder(&recorder, || {
        for s in 1..=4 {
            hub.deliver(BrokerEvent::Message(msg(1, s)));
        }
    });
    assert_eq!(slow.ctl.reason(), Some(CloseReason::TooSlow));
    let counted = snapshot
        .snapshot()
        .into_vec()
        .into_iter()
        .find(|(k, ..)| k.key().name() == "parley_slow_client_disconnects_total")
        .map(|(.., v)| v);
    assert!(matches!(counted, Some(DebugValue::Counter(1))), "{counted:?}");
}

#[tokio::test]
async fn a_full_queue_closes_only_that_connection() {
    let hub = Hub::new(2, NodeId(1));
    let slow = hub.register(&user(1), SessionId("s1".into()));
    hub.follow(slow.id, &[room(1)]);
    let mut fast = hub.register(&user(2), SessionId("s2".into()));
    hub.follow(fast.id, &[room(1)]);
    for s in 1..=5 {
        hub.deliver(BrokerEvent::Message(msg(1, s)));
        assert_eq!(seq_of(&fast.rx.recv().await.unwrap()), s);
    }
    assert_eq!(slow.ctl.reason(), Some(CloseReason::TooSlow));
    assert_eq!(fast.ctl.reason(), None);
    assert_eq!(hub.connection_count(), 1, "the slow connection left the hub");
}

#[tokio::test]
async fn joins_leaves_and_session_end_reach_every_connection_of_the_user() {
    let hub = Hub::new(8, NodeId(1));
    let mut c1 = hub.register(&user(1), SessionId("s1".into()));
    let mut c2 = hub.register(&user(1), SessionId("s2".into()));
    hub.deliver(BrokerEvent::Joined { room: room(7), user: UserId(1) });
    hub.deliver(BrokerEvent::Message(msg(7, 1)));
    for c in [&mut c1, &mut c2] {
        assert!(matches!(c.rx.recv().await.unwrap().event, HubEvent::Joined(_)));
        assert_eq!(seq_of(&c.rx.recv().await.unwrap()), 1);
    }
    hub.deliver(BrokerEvent::Left { room: room(7), user: UserId(1) });
    hub.deliver(BrokerEvent::Message(msg(7, 2)));
    assert!(matches!(c1.rx.recv().await.unwrap().event, HubEvent::Left(RoomId(7))));
    assert!(c1.rx.try_recv().is_err(), "no messages after leaving");
    hub.deliver(BrokerEvent::SessionEnded(SessionId("s2".into())));
    assert_eq!(c2.ctl.closed().await, CloseReason::SessionEnded);
    assert_eq!(c1.ctl.reason(), None, "other sessions stay");
}

fn big(room: i64, seq: i64, body: usize) -> Arc<Message> {
    Arc::new(Message { body: "x".repeat(body), ..(*msg(room, seq)).clone() })
}

/// Item 8 of issue 11: the queue is bounded in bytes as well as deliveries. A reader that takes its
/// deliveries frees their bytes; one that does not is closed once its bytes pass the bound, though
/// its queue has room for 60 more deliveries.
#[tokio::test]
async fn the_byte_bound_closes_a_connection_whose_queue_still_has_room() {
    let size = Delivery::new(HubEvent::Message(big(1, 1, 4000))).size();
    assert!((4000 + EVENT_OVERHEAD..4000 + 2 * EVENT_OVERHEAD).contains(&size), "{size}");
    let hub = Hub::with_bounds(64, 3 * size, NodeId(1));
    let slow = hub.register(&user(1), SessionId("s1".into()));
    hub.follow(slow.id, &[room(1)]);
    let mut reader = hub.register(&user(2), SessionId("s2".into()));
    hub.follow(reader.id, &[room(1)]);
    for s in 1..=3 {
        hub.deliver(BrokerEvent::Message(big(1, s, 4000)));
        let d = reader.rx.recv().await.unwrap();
        assert_eq!(reader.ctl.queued_bytes(), size);
        reader.took(&d);
        assert_eq!(reader.ctl.queued_bytes(), 0);
    }
    assert_eq!(slow.ctl.queued_bytes(), 3 * size);
    assert_eq!(slow.ctl.reason(), None, "at the bound, not past it");
    // Ephemera go only where half the byte bound is free: not to the full queue.
    hub.deliver(BrokerEvent::Typing { room: RoomId(1), user: user(3) });
    assert_eq!(slow.ctl.queued_bytes(), 3 * size);
    assert!(matches!(reader.rx.try_recv().unwrap().event, HubEvent::Typing { .. }));
    hub.deliver(BrokerEvent::Message(big(1, 4, 4000)));
    assert_eq!(slow.ctl.reason(), Some(CloseReason::TooSlow));
    assert_eq!(slow.rx.len(), 3, "closed by bytes with 61 deliveries of room left");
    assert_eq!(slow.ctl.queued_bytes(), 3 * size, "counts what is queued, never what was refused");
    assert_eq!(reader.ctl.reason(), None);
    assert_eq!(seq_of(&reader.rx.recv().await.unwrap()), 4);
    // Small events count small: many fit where few big messages did.
    let small = Delivery::new(HubEvent::Message(msg(1, 5))).size();
    assert!(small < EVENT_OVERHEAD + 16, "{small}");
}

#[test]
fn deliveries_encode_once_per_slot() {
    let d = Delivery::new(HubEvent::Left(RoomId(1)));
    let mut calls = 0;
    for _ in 0..3 {
        d.encoded(WireSlot::Json, |_| {
            calls += 1;
            Bytes::from_static(b"x")
        });
    }
    assert_eq!(calls, 1);
}

/// A room's entry goes with its last follower, whichever way it leaves (unregistering, leaving the
/// room, being closed as too slow): the hub holds the rooms followed now, not every room ever followed.
#[test]
fn a_room_entry_goes_with_its_last_follower() {
    let hub = Hub::new(2, NodeId(1));
    let rooms = |hub: &Hub| {
        let mut ids: Vec<i64> = hub.state.read().rooms.keys().map(|r| r.0).collect();
        ids.sort();
        ids
    };
    let a = hub.register(&user(1), SessionId("a".into()));
    hub.follow(a.id, &[room(1), room(2)]);
    let b = hub.register(&user(2), SessionId("b".into()));
    hub.follow(b.id, &[room(2)]);
    hub.deliver(BrokerEvent::Joined { room: room(3), user: UserId(2) });
    assert_eq!(rooms(&hub), vec![1, 2, 3]);
    hub.deliver(BrokerEvent::Left { room: room(3), user: UserId(2) });
    assert_eq!(rooms(&hub), vec![1, 2], "left: its last follower");
    drop(a);
    assert_eq!(rooms(&hub), vec![2], "unregistered");
    // b never reads: closed as too slow, and its room goes with it.
    for s in 1..=4 {
        hub.deliver(BrokerEvent::Message(msg(2, s)));
    }
    assert_eq!(b.ctl.reason(), Some(CloseReason::TooSlow));
    assert!(rooms(&hub).is_empty(), "{:?}", rooms(&hub));
    assert!(hub.followed_rooms().is_empty());
    // A message for a room nobody follows creates nothing.
    hub.deliver(BrokerEvent::Message(msg(5, 1)));
    hub.deliver(BrokerEvent::RoomUpdated(room(5)));
    assert!(rooms(&hub).is_empty());
}
