//! Micro-benchmarks of the paths every message takes: frame encoding and decoding, and the hub's
//! fan-out. Run with `cargo bench --bench hot_paths`; figures are recorded in BENCHMARKS.md.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use parley::broker::{BrokerEvent, BrokerSink};
use parley::core::domain::{Message, MessageKind, Room, RoomId, RoomKind, SessionId, User, UserId, Visibility};
use parley::core::hub::{Hub, HubEvent, WireSlot};
use parley::http::wire::{decode_client_frame, encode_event};

fn main() {
    divan::main();
}

fn user(id: i64) -> User {
    User { id: UserId(id), username: format!("user{id}"), display_name: format!("User {id}") }
}

fn message(seq: i64) -> Arc<Message> {
    Arc::new(Message {
        room: RoomId(1),
        seq,
        kind: MessageKind::Text,
        sender: Some(user(1)),
        target: None,
        body: "b|3|1234|1763812345678901234 and some words of a typical chat line".into(),
        client_id: Some("b|3|1234".into()),
        mentions: vec![],
        ts: 1_763_812_345_678,
        edited_at: None,
        deleted: false,
        files: vec![],
        reply_to: None,
        thread: None,
        extras: Default::default(),
    })
}

#[divan::bench]
fn encode_message_frame() -> bytes::Bytes {
    encode_event(&HubEvent::Message(divan::black_box(message(7))))
}

#[divan::bench]
fn decode_send_frame() -> bool {
    let f = r#"{"type":"send","room":12,"body":"b|3|1234|1763812345678901234 and some words","client_id":"b|3|1234"}"#;
    decode_client_frame(divan::black_box(f)).is_ok()
}

/// One message to a room of `n` followers: the hub's work (one shared delivery, `n` queue pushes) plus
/// each connection's encoding lookup, which after the first is a cache hit.
#[divan::bench(args = [10, 100, 1000])]
fn fan_out(bencher: divan::Bencher, n: i64) {
    let hub = Hub::new(1024, parley::core::domain::NodeId(1));
    let room = Room {
        id: RoomId(1),
        name: "r".into(),
        kind: RoomKind::Group,
        visibility: Visibility::Public,
        topic: String::new(),
        created_by: UserId(1),
        last_seq: 0,
        member_count: n,
        retention_secs: None,
    };
    let mut regs: Vec<_> = (0..n)
        .map(|i| {
            let r = hub.register(&user(i + 1), SessionId(format!("s{i}")));
            hub.follow(r.id, std::slice::from_ref(&room));
            r
        })
        .collect();
    let seq = AtomicI64::new(0);
    bencher.counter(divan::counter::ItemsCount::new(n as usize)).bench_local(|| {
        let s = seq.fetch_add(1, Ordering::Relaxed) + 1;
        hub.deliver(BrokerEvent::Message(message(s)));
        for r in regs.iter_mut() {
            let d = r.rx.try_recv().expect("delivered");
            divan::black_box(d.encoded(WireSlot::Json, encode_event));
        }
    });
}
