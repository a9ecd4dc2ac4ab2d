//! A connection's bounded delivery queue and its close signal: one small allocation shared by the hub
//! (which queues and closes, through [`Outbox`]) and the connection's task (which takes, through
//! [`Inbox`], and waits).
//!
//! Why not a tokio `mpsc` channel: every open connection holds its queue for life, and a bounded tokio
//! channel costs ≈ 0.8 KB even when empty (a cache-padded `Chan`, a semaphore, a first block of 32
//! slots), plus a `CancellationToken` for closing (issue 18, memory per connection). Here an idle
//! connection's queue is a mutex, an empty `VecDeque` (no allocation), a waker slot and the close
//! reason, in the [`ConnControl`] the two sides already shared; a burst's room is given back once the
//! connection has taken it.
//!
//! What it guarantees, as the channel did:
//! - **Bounded** in deliveries (`--send-queue`) and in bytes (`--send-queue-bytes`, see
//!   [`Delivery::size`]); a push past either fails and the hub closes the connection as too slow.
//! - **One wake per batch.** A push wakes the connection's task only if it was waiting (the waker is
//!   taken), so a burst costs one wake-up, and the task takes up to a batch at once ([`Inbox::recv_many`]).
//! - **Cancel-safe.** A take moves deliveries out only when it completes: a take that loses a `select!`
//!   loses nothing.
//! - **The hub dropping a connection ends it**: once detached ([`Outbox::detach`]), the connection gets
//!   what was queued, then `0` from [`Inbox::recv_many`] (and the hub always closes with a reason first).
//!
//! One task waits on a connection (its transport's): the queue keeps one waker, the last to wait, for
//! deliveries and the close alike (so while a resuming WebSocket holds its deliveries, a push still wakes
//! it once, to find nothing to do).

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};

use parking_lot::Mutex;

use super::delivery::{CloseReason, Delivery};

/// Deliveries' room a queue keeps once emptied; a bigger burst's room is given back.
const KEPT: usize = 8;

/// A connection's bounds, as the hub applies them to each push.
#[derive(Debug, Clone, Copy)]
pub(super) struct Bounds {
    /// Deliveries queued at most (`--send-queue`).
    pub(super) deliveries: usize,
    /// Bytes queued at most (`--send-queue-bytes`), each delivery counted as its [`Delivery::size`].
    pub(super) bytes: usize,
}

/// Shared between the hub and a connection's task: the connection's queue, and how the hub tells it to
/// close.
#[derive(Debug, Default)]
pub struct ConnControl {
    queue: Mutex<Queue>,
    reason: OnceLock<CloseReason>,
    /// Bytes queued for the connection and not yet taken by it ([`Delivery::size`] of each).
    queued: AtomicUsize,
}

#[derive(Debug, Default)]
struct Queue {
    items: VecDeque<Arc<Delivery>>,
    /// The connection's task, while it waits for a delivery or its close.
    waker: Option<Waker>,
    /// The hub let go of the connection: nothing more will be queued.
    detached: bool,
}

impl Queue {
    /// Wakes the waiting task, if any, after the lock is released.
    fn wake(mut guard: parking_lot::MutexGuard<'_, Queue>) {
        let waker = guard.waker.take();
        drop(guard);
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn wait(&mut self, cx: &Context<'_>) {
        match &self.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => self.waker = Some(cx.waker().clone()),
        }
    }
}

impl ConnControl {
    /// Tells the connection to close (the first reason given stands).
    pub fn close(&self, reason: CloseReason) {
        let _ = self.reason.set(reason);
        Queue::wake(self.queue.lock());
    }

    /// Waits until the connection is told to close; why.
    pub async fn closed(&self) -> CloseReason {
        poll_fn(|cx| {
            if let Some(r) = self.reason.get() {
                return Poll::Ready(*r);
            }
            let mut q = self.queue.lock();
            // Checked again under the lock: `close` sets the reason before it takes the waker.
            if let Some(r) = self.reason.get() {
                return Poll::Ready(*r);
            }
            q.wait(cx);
            Poll::Pending
        })
        .await
    }

    pub fn reason(&self) -> Option<CloseReason> {
        self.reason.get().copied()
    }

    /// Bytes queued for the connection and not yet taken (see [`Registration::took`](super::Registration::took)).
    pub fn queued_bytes(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// The connection took `d` from its queue: its bytes no longer count against the bound.
    pub(super) fn took(&self, d: &Delivery) {
        self.queued.fetch_sub(d.size(), Ordering::Relaxed);
    }

    /// Room for deliveries the queue holds now, allocated or not (`0` when it allocates nothing).
    pub fn queue_capacity(&self) -> usize {
        self.queue.lock().items.capacity()
    }
}

/// The hub's side of a connection's queue (one per room followed, and one in the registry).
#[derive(Debug, Clone)]
pub(super) struct Outbox {
    pub(super) ctl: Arc<ConnControl>,
}

impl Outbox {
    /// Queues `d` unless the queue is full in deliveries or would pass the byte bound; `false` if not
    /// queued (the counter is then as it was). The bytes are counted before the delivery is queued, so
    /// the connection never takes (and subtracts) what was not yet added.
    pub(super) fn push(&self, d: &Arc<Delivery>, bounds: Bounds) -> bool {
        let ctl = &self.ctl;
        let before = ctl.queued.fetch_add(d.size(), Ordering::Relaxed);
        if before + d.size() <= bounds.bytes {
            let mut q = ctl.queue.lock();
            if q.items.len() < bounds.deliveries {
                q.items.push_back(d.clone());
                Queue::wake(q);
                return true;
            }
        }
        ctl.queued.fetch_sub(d.size(), Ordering::Relaxed);
        false
    }

    /// Whether the queue is less than half full, in deliveries and in bytes: room for ephemera.
    pub(super) fn has_room_to_spare(&self, bounds: Bounds) -> bool {
        self.ctl.queued_bytes() * 2 <= bounds.bytes && self.ctl.queue.lock().items.len() * 2 < bounds.deliveries
    }

    /// The hub let go of the connection: its task gets what is queued, then the end.
    pub(super) fn detach(&self) {
        let mut q = self.ctl.queue.lock();
        q.detached = true;
        Queue::wake(q);
    }
}

/// The connection's side of its queue.
#[derive(Debug)]
pub struct Inbox {
    ctl: Arc<ConnControl>,
}

/// Nothing is queued now (from [`Inbox::try_recv`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Empty;

impl Inbox {
    pub(super) fn new(ctl: Arc<ConnControl>) -> Self {
        Inbox { ctl }
    }

    /// Waits until something is queued, then moves up to `max` deliveries into `buf`; how many. `0`
    /// means the hub let go of the connection and nothing is left. Cancel-safe.
    pub async fn recv_many(&mut self, buf: &mut Vec<Arc<Delivery>>, max: usize) -> usize {
        poll_fn(|cx| {
            let mut q = self.ctl.queue.lock();
            if !q.items.is_empty() {
                return Poll::Ready(Self::move_into(&mut q, buf, max));
            }
            if q.detached {
                return Poll::Ready(0);
            }
            q.wait(cx);
            Poll::Pending
        })
        .await
    }

    /// Moves up to `max` queued deliveries into `buf` without waiting; how many.
    pub fn take_ready(&mut self, buf: &mut Vec<Arc<Delivery>>, max: usize) -> usize {
        Self::move_into(&mut self.ctl.queue.lock(), buf, max)
    }

    /// The next delivery: waits for it; `None` once the hub let go of the connection and nothing is left.
    pub async fn recv(&mut self) -> Option<Arc<Delivery>> {
        let mut one = Vec::with_capacity(1);
        (self.recv_many(&mut one, 1).await > 0).then(|| one.remove(0))
    }

    /// Deliveries queued now.
    pub fn len(&self) -> usize {
        self.ctl.queue.lock().items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The next delivery, if one is queued now.
    pub fn try_recv(&mut self) -> Result<Arc<Delivery>, Empty> {
        let mut q = self.ctl.queue.lock();
        let d = q.items.pop_front().ok_or(Empty)?;
        Self::give_back(&mut q);
        Ok(d)
    }

    fn move_into(q: &mut Queue, buf: &mut Vec<Arc<Delivery>>, max: usize) -> usize {
        let n = q.items.len().min(max.saturating_sub(buf.len()));
        buf.extend(q.items.drain(..n));
        Self::give_back(q);
        n
    }

    /// An emptied queue keeps room for [`KEPT`] deliveries at most: a burst's room goes back.
    fn give_back(q: &mut Queue) {
        if q.items.is_empty() && q.items.capacity() > KEPT {
            q.items = VecDeque::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::core::domain::RoomId;
    use crate::core::hub::HubEvent;

    fn pair() -> (Outbox, Inbox) {
        let ctl = Arc::new(ConnControl::default());
        (Outbox { ctl: ctl.clone() }, Inbox::new(ctl))
    }

    fn read(seq: i64) -> Arc<Delivery> {
        Delivery::new(HubEvent::Read { room: RoomId(1), seq })
    }

    fn seq(d: &Delivery) -> i64 {
        match d.event {
            HubEvent::Read { seq, .. } => seq,
            _ => unreachable!(),
        }
    }

    const WIDE: Bounds = Bounds { deliveries: 1024, bytes: usize::MAX / 2 };

    #[test]
    fn an_empty_queue_allocates_nothing_and_a_burst_gives_its_room_back() {
        let (out, mut inbox) = pair();
        assert_eq!(out.ctl.queue_capacity(), 0, "a new queue allocates nothing");
        for s in 1..=100 {
            assert!(out.push(&read(s), WIDE));
        }
        assert!(out.ctl.queue_capacity() >= 100);
        let mut buf = Vec::new();
        assert_eq!(inbox.take_ready(&mut buf, 64), 64, "a take is bounded by its batch");
        assert_eq!(inbox.take_ready(&mut buf, 100), 36);
        assert_eq!(buf.iter().map(|d| seq(d)).collect::<Vec<_>>(), (1..=100).collect::<Vec<_>>(), "in order");
        assert_eq!(out.ctl.queue_capacity(), 0, "the burst's room is given back once taken");
        // A few at a time keep their (small) room.
        out.push(&read(101), WIDE);
        assert_eq!(inbox.try_recv().map(|d| seq(&d)), Ok(101));
        assert!(out.ctl.queue_capacity() <= KEPT);
        assert_eq!(inbox.try_recv().err(), Some(Empty));
    }

    #[test]
    fn the_queue_is_bounded_in_deliveries_and_in_bytes() {
        let (out, mut inbox) = pair();
        let size = read(1).size();
        let bounds = Bounds { deliveries: 3, bytes: usize::MAX / 2 };
        assert!((1..=3).all(|s| out.push(&read(s), bounds)));
        assert!(!out.push(&read(4), bounds), "full in deliveries");
        assert_eq!(out.ctl.queued_bytes(), 3 * size, "a refused push counts nothing");
        let d = inbox.try_recv().unwrap();
        out.ctl.took(&d);
        assert!(out.push(&read(4), bounds), "a taken delivery frees its slot");

        let (out, _inbox) = pair();
        let bounds = Bounds { deliveries: 100, bytes: 2 * size };
        assert!(out.push(&read(1), bounds) && out.push(&read(2), bounds));
        assert!(!out.push(&read(3), bounds), "full in bytes");
        assert_eq!(out.ctl.queued_bytes(), 2 * size);
    }

    #[test]
    fn room_to_spare_means_less_than_half_full() {
        let (out, _inbox) = pair();
        let bounds = Bounds { deliveries: 4, bytes: usize::MAX / 2 };
        assert!(out.has_room_to_spare(bounds));
        out.push(&read(1), bounds);
        assert!(out.has_room_to_spare(bounds));
        out.push(&read(2), bounds);
        assert!(!out.has_room_to_spare(bounds), "half full");
        let size = read(1).size();
        let (out, _inbox) = pair();
        let bounds = Bounds { deliveries: 100, bytes: 3 * size };
        out.push(&read(1), bounds);
        assert!(out.has_room_to_spare(bounds));
        out.push(&read(2), bounds);
        assert!(!out.has_room_to_spare(bounds), "more than half its bytes");
    }

    #[tokio::test]
    async fn a_waiting_take_is_woken_by_a_push_and_loses_nothing_when_cancelled() {
        let (out, mut inbox) = pair();
        let mut buf = Vec::new();
        // Cancelled while waiting: nothing taken, nothing lost.
        let waited = tokio::time::timeout(Duration::from_millis(10), inbox.recv_many(&mut buf, 8)).await;
        assert!(waited.is_err() && buf.is_empty());
        let pusher = {
            let out = out.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                out.push(&read(1), WIDE);
                out.push(&read(2), WIDE);
            })
        };
        assert!(inbox.recv_many(&mut buf, 8).await >= 1);
        pusher.await.unwrap();
        inbox.take_ready(&mut buf, 8);
        assert_eq!(buf.iter().map(|d| seq(d)).collect::<Vec<_>>(), [1, 2]);
    }

    #[tokio::test]
    async fn a_detached_queue_hands_over_what_is_left_then_ends() {
        let (out, mut inbox) = pair();
        out.push(&read(1), WIDE);
        out.ctl.close(CloseReason::TooSlow);
        out.detach();
        assert_eq!(out.ctl.closed().await, CloseReason::TooSlow);
        out.ctl.close(CloseReason::ShuttingDown);
        assert_eq!(out.ctl.reason(), Some(CloseReason::TooSlow), "the first reason stands");
        assert_eq!(inbox.recv().await.map(|d| seq(&d)), Some(1));
        assert!(inbox.recv().await.is_none());
    }

    #[tokio::test]
    async fn a_waiting_task_is_woken_by_the_close_and_by_the_detach() {
        let (out, mut inbox) = pair();
        let ctl = out.ctl.clone();
        let closer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            ctl.close(CloseReason::SessionEnded);
        });
        assert_eq!(out.ctl.closed().await, CloseReason::SessionEnded);
        closer.await.unwrap();
        let detacher = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            out.detach();
        });
        let mut buf = Vec::new();
        assert_eq!(inbox.recv_many(&mut buf, 8).await, 0);
        detacher.await.unwrap();
    }
}
