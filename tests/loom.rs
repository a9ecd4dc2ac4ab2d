//! Model checks (loom) of the concurrent hand-offs of the core: every interleaving of the threads below
//! is explored, with a preemption bound of 3.
//!
//! What is checked is a model of each protocol built from loom's instrumented atomics and locks, with
//! the real [`Cursors`] (the Feed's rule) where the protocol uses it: the hub itself is built on tokio
//! channels and `parking_lot`, which loom cannot instrument. ThreadSanitizer runs the real code
//! (`scripts/tsan.sh`); see docs/CONFORMANCE.md.
//!
//! Run: `cargo test --test loom` (seconds; `LOOM_LOG=trace` shows a failing path). `cargo test` runs them too.

use std::collections::VecDeque;

use loom::sync::atomic::{AtomicI64, Ordering};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

use parley::core::cursor::{Admit, Cursors};
use parley::core::domain::RoomId;

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(f);
}

/// The hub's room gate (`Hub::fan_out_message`): forward a `seq` only if it is above the last one
/// forwarded (`fetch_max`), then push it onto the connection's queue — two steps, not one.
struct Room {
    last_seq: AtomicI64,
    queue: Mutex<VecDeque<i64>>,
}

impl Room {
    fn publish(&self, seq: i64) {
        if self.last_seq.fetch_max(seq, Ordering::AcqRel) >= seq {
            return;
        }
        self.queue.lock().unwrap().push_back(seq);
    }
}

/// The connection's side: the Feed's rule over what the hub queued, filling gaps from the store (which
/// holds every published message: publishing follows the commit).
fn feed(cursors: &mut Cursors, room: RoomId, seq: i64, out: &mut Vec<i64>) {
    match cursors.admit(room, seq) {
        Admit::Seen => {}
        Admit::Next => out.push(seq),
        Admit::Gap { after } => {
            out.extend(after + 1..=seq);
            cursors.advance(room, seq);
        }
    }
}

/// Two publishers race on one room — this node's ingest writer (1 then 3) and the broker's subscriber
/// (2, stored by another node) — while the connection drains its queue. Whatever the interleaving, the
/// hub queues each `seq` at most once, and the client sees 1, 2, 3: no gap, no repeat, in order.
#[test]
fn racing_publishers_give_each_connection_every_message_once_in_order() {
    // Whether some interleaving queued the room's messages out of order (outside the model: it
    // survives the executions).
    static REORDERED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    model(|| {
        let room = Arc::new(Room { last_seq: AtomicI64::new(0), queue: Mutex::new(VecDeque::new()) });
        let local = {
            let room = room.clone();
            thread::spawn(move || {
                room.publish(1);
                room.publish(3);
            })
        };
        let remote = {
            let room = room.clone();
            thread::spawn(move || room.publish(2))
        };
        let id = RoomId(7);
        let mut cursors = Cursors::default();
        cursors.set(id, 0);
        let (mut out, mut queued) = (Vec::new(), Vec::new());
        // The connection task reads while the publishers run...
        let first = room.queue.lock().unwrap().pop_front();
        if let Some(seq) = first {
            queued.push(seq);
            feed(&mut cursors, id, seq, &mut out);
        }
        local.join().unwrap();
        remote.join().unwrap();
        // ...and drains the rest afterwards.
        while let Some(seq) = room.queue.lock().unwrap().pop_front() {
            queued.push(seq);
            feed(&mut cursors, id, seq, &mut out);
        }
        let mut distinct = queued.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), queued.len(), "the hub queued a seq twice: {queued:?}");
        // The newest message always gets through the gate.
        assert!(queued.contains(&3), "{queued:?}");
        assert_eq!(out, [1, 2, 3], "queued {queued:?}");
        if queued.windows(2).any(|w| w[0] > w[1]) {
            REORDERED.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    });
    // The finding: the gate and the push are two steps, so the hub alone can queue 1, 3, 2 or 2, 1, 3;
    // the Feed's rule is what makes every connection's stream ordered (docs/CONFORMANCE.md).
    assert!(REORDERED.load(std::sync::atomic::Ordering::Relaxed), "loom explored a reordering");
}

/// Group commit (`core/ingest.rs`): senders queue messages; the writer takes a batch, stores it
/// (assigning `seq`s in one transaction), answers each sender, then publishes the batch in `seq` order.
/// Checked: an acknowledged message is always already stored (an acknowledgement means durable), each
/// message gets one `seq`, and publication order is `seq` order.
#[test]
fn ingest_acknowledges_only_what_is_stored_and_publishes_in_seq_order() {
    model(|| {
        struct Shared {
            pending: Mutex<VecDeque<usize>>,
            queued: Condvar,
            stored: Mutex<Vec<usize>>,
            acks: Mutex<[i64; 2]>,
            acked: Condvar,
            published: Mutex<Vec<i64>>,
        }
        let s = Arc::new(Shared {
            pending: Mutex::new(VecDeque::new()),
            queued: Condvar::new(),
            stored: Mutex::new(Vec::new()),
            acks: Mutex::new([0, 0]),
            acked: Condvar::new(),
            published: Mutex::new(Vec::new()),
        });
        let senders: Vec<_> = (0..2)
            .map(|who| {
                let s = s.clone();
                thread::spawn(move || {
                    s.pending.lock().unwrap().push_back(who);
                    s.queued.notify_one();
                    // Wait for the acknowledgement, then check it is durable.
                    let mut acks = s.acks.lock().unwrap();
                    while acks[who] == 0 {
                        acks = s.acked.wait(acks).unwrap();
                    }
                    let seq = acks[who];
                    drop(acks);
                    let stored = s.stored.lock().unwrap();
                    assert_eq!(stored.get(seq as usize - 1), Some(&who), "acknowledged but not stored");
                })
            })
            .collect();
        let writer = {
            let s = s.clone();
            thread::spawn(move || {
                let mut done = 0;
                while done < 2 {
                    let batch: Vec<usize> = {
                        let mut pending = s.pending.lock().unwrap();
                        while pending.is_empty() {
                            pending = s.queued.wait(pending).unwrap();
                        }
                        pending.drain(..).collect()
                    };
                    // One transaction: seqs are assigned and stored together.
                    let seqs: Vec<i64> = {
                        let mut stored = s.stored.lock().unwrap();
                        batch
                            .iter()
                            .map(|&who| {
                                stored.push(who);
                                stored.len() as i64
                            })
                            .collect()
                    };
                    {
                        let mut acks = s.acks.lock().unwrap();
                        for (&who, &seq) in batch.iter().zip(&seqs) {
                            acks[who] = seq;
                        }
                    }
                    s.acked.notify_all();
                    s.published.lock().unwrap().extend(&seqs);
                    done += batch.len();
                }
            })
        };
        for t in senders {
            t.join().unwrap();
        }
        writer.join().unwrap();
        assert_eq!(*s.published.lock().unwrap(), [1, 2], "published in seq order, each once");
        let mut acks = *s.acks.lock().unwrap();
        acks.sort();
        assert_eq!(acks, [1, 2], "one seq per message");
    });
}

/// Presence (`Hub` register/unregister): a user is online while any connection is. Two connections of
/// one user come and go concurrently; the "online"/"offline" announcements (made under the same lock as
/// the count, as the hub does under its state lock) alternate and end with "offline".
#[test]
fn presence_announcements_alternate_and_end_offline() {
    model(|| {
        let state = Arc::new(Mutex::new((0usize, Vec::<bool>::new())));
        let conns: Vec<_> = (0..2)
            .map(|_| {
                let state = state.clone();
                thread::spawn(move || {
                    {
                        let mut st = state.lock().unwrap();
                        st.0 += 1;
                        if st.0 == 1 {
                            st.1.push(true);
                        }
                    }
                    {
                        let mut st = state.lock().unwrap();
                        st.0 -= 1;
                        if st.0 == 0 {
                            st.1.push(false);
                        }
                    }
                })
            })
            .collect();
        for t in conns {
            t.join().unwrap();
        }
        let st = state.lock().unwrap();
        assert_eq!(st.0, 0);
        assert!(st.1.windows(2).all(|w| w[0] != w[1]), "{:?}", st.1);
        assert_eq!(st.1.first(), Some(&true));
        assert_eq!(st.1.last(), Some(&false));
    });
}
