//! The connection life cycle, written once for every transport (WebSocket, SSE, TCP lines).
//!
//! A transport authenticates, takes an [`Admission`] (the connection caps), and opens a
//! [`Connection`]; from then on this module decides everything that is not wire format:
//! - **Session end.** Logout and kicks arrive from the hub ([`CloseReason::SessionEnded`]); expiry is a
//!   timer set at the session's `expires_at`, so a connection closes within moments of its token
//!   expiring, on whichever node it is. [`Connection::live`] refuses commands from an ended session.
//! - **Deliveries** come from the hub's bounded queue and pass through the [`Feed`] (dedupe, gap fill,
//!   resume). While [`Connection::hold`] is on (WebSocket `?resume=1`) they wait in the queue.
//! - **Slow clients** are bounded in deliveries (the hub queue, `--send-queue`), in bytes (the hub
//!   counts each delivery's [`Delivery::size`] as it queues it and [`Connection::take`] uncounts it;
//!   past `--send-queue-bytes` the hub closes the connection), and in time (a delivery that waited in
//!   the queue longer than the write timeout, or a write the client does not take within it). Each ends
//!   the connection as [`End::TooSlow`]. What a slow reader can pin is then at most: the queue's bytes,
//!   one batch being written ([`BATCH`] deliveries, bounded by the write timeout), and the socket's
//!   kernel send buffer (TCP lines 64 KiB; HTTP sockets the kernel's autotuned size, 4 MiB at most by default). The transport
//!   notices the end as soon as its current write returns and sends the reason with a short bound
//!   ([`CLOSE_NOTICE`]): it reaches a client that is merely slow (it reads again within the write
//!   timeout), and costs one second for one that is gone.
//! - **Keepalive.** A tick every keepalive period; a transport that can hear its client (WebSocket
//!   Pongs) reports it with [`Connection::heard`], and one silent for two periods ends as
//!   [`End::Silent`].
//! - **Shutdown drains.** On [`End::ShuttingDown`] a transport stops reading, waits (bounded) for the
//!   answers to what it already accepted, writes them and what is queued ([`Connection::drain`]), then
//!   closes.
//!
//! Transports only translate: [`Connection::wake`] says what happened, [`Connection::take`] turns
//! queued deliveries into [`Out`]s, and the transport encodes them.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::{Instant, Sleep, sleep_until};

use super::chat::{Chat, Identity};
use super::cursor::{Feed, Out};
use super::domain::{Message, Room, RoomId, RoomView, Seq, now_millis};
use super::error::{Error, Result};
use super::hub::{CloseReason, Delivery, HubEvent, Registration};
use super::limits::Admission;

/// Deliveries taken from the queue per wake, at most.
pub const BATCH: usize = 64;

/// How long a transport tries to tell a client why it is being closed, after which it just closes.
pub const CLOSE_NOTICE: Duration = Duration::from_secs(1);

/// Why a connection ends, from the server's side. Transports map each to their own close signal
/// (WebSocket close code, SSE `close` event, TCP line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Logout, expiry, or the session was revoked.
    SessionEnded,
    /// The client did not take what was sent fast enough (queue full, or too long waiting).
    TooSlow,
    /// The server is stopping.
    ShuttingDown,
    /// Nothing heard from the client for two keepalive periods.
    Silent,
}

impl End {
    /// The stable code, as used in SSE `close` events and TCP `ERR` lines.
    pub fn code(self) -> &'static str {
        match self {
            End::SessionEnded => "session_ended",
            End::TooSlow => "too_slow",
            End::ShuttingDown => "shutting_down",
            End::Silent => "keepalive_timeout",
        }
    }
}

impl From<CloseReason> for End {
    fn from(r: CloseReason) -> Self {
        match r {
            CloseReason::SessionEnded => End::SessionEnded,
            CloseReason::TooSlow => End::TooSlow,
            CloseReason::ShuttingDown => End::ShuttingDown,
        }
    }
}

/// What woke the connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Wake {
    /// Deliveries are waiting: call [`Connection::take`].
    Deliveries,
    /// Time for the transport's keepalive (a Ping, a comment line).
    Keepalive,
    /// The connection must end.
    End(End),
}

/// A reply a connection already gave its client, whose broadcast copy that connection must not get
/// again (the user's other connections still do): the acting connection hears of its own edit,
/// deletion, read position, rename or topic once, as the reply.
#[derive(Debug, Clone)]
pub enum Echo {
    Updated(Arc<Message>),
    Room(Room),
    Read(RoomId, Seq),
}

impl Echo {
    fn matches(&self, e: &HubEvent) -> bool {
        match (self, e) {
            (Echo::Updated(a), HubEvent::Updated(b)) => a == b,
            (Echo::Room(a), HubEvent::RoomUpdated(b)) => a == b,
            (Echo::Read(r, s), HubEvent::Read { room, seq }) => r == room && s == seq,
            _ => false,
        }
    }
}

/// Echoes remembered at once, and for how long: the copy is normally already queued when the reply is
/// written, so these bounds only matter when it never comes.
const ECHOES: usize = 32;
const ECHO_TTL: Duration = Duration::from_secs(10);

/// Timing a connection runs with.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub keepalive: Duration,
    /// The time bound of the slow-client policy: a write, or a delivery's wait in the queue.
    pub write_timeout: Duration,
    /// Whether the transport hears its client (and calls [`Connection::heard`]); if so, silence ends it.
    pub hears_client: bool,
}

pub struct Connection {
    chat: Arc<Chat>,
    pub who: Identity,
    reg: Registration,
    pub feed: Feed,
    _admission: Admission,
    timing: Timing,
    batch: Vec<Arc<Delivery>>,
    held: bool,
    /// The connection's one timer: the next keepalive tick or the session's expiry, whichever is first
    /// (one timer rather than two: issue 18, memory per connection).
    timer: std::pin::Pin<Box<Sleep>>,
    /// When the session expires: the timer firing at or past it ends the connection.
    expires: Instant,
    last_heard: Instant,
    echoes: Vec<(Echo, Instant)>,
}

impl Connection {
    /// Registers `who`'s connection with the hub, following all their rooms; the rooms are returned for
    /// the greeting. `admission` is held until the connection is dropped.
    pub async fn open(
        chat: &Arc<Chat>,
        who: Identity,
        admission: Admission,
        timing: Timing,
    ) -> Result<(Self, Vec<RoomView>)> {
        let (reg, rooms) = chat.connect(&who).await?;
        let feed = Feed::new(&rooms);
        let now = Instant::now();
        let left = Duration::from_millis(who.expires_at.saturating_sub(now_millis()).max(0) as u64);
        // A session that never expires in practice: a year is as good as forever to a timer.
        let expires = now.checked_add(left).unwrap_or_else(|| now + Duration::from_secs(365 * 86_400));
        let first_ping = now + timing.keepalive;
        let conn = Connection {
            chat: chat.clone(),
            who,
            reg,
            feed,
            _admission: admission,
            timing,
            batch: Vec::new(),
            held: false,
            timer: Box::pin(sleep_until(first_ping.min(expires))),
            expires,
            last_heard: now,
            echoes: Vec::new(),
        };
        Ok((conn, rooms))
    }

    pub fn chat(&self) -> &Arc<Chat> {
        &self.chat
    }

    pub fn timing(&self) -> Timing {
        self.timing
    }

    /// Leaves deliveries queued (`true`) until released (`false`): a resuming client's stored messages
    /// go out before live ones. Held deliveries count against the queue bound.
    pub fn hold(&mut self, on: bool) {
        self.held = on;
    }

    pub fn held(&self) -> bool {
        self.held
    }

    /// The client was heard from (a frame, a Pong).
    pub fn heard(&mut self) {
        self.last_heard = Instant::now();
    }

    /// The client got `e` as a reply: its broadcast copy is not sent to this connection.
    pub fn expect_echo(&mut self, e: Echo) {
        self.echoes.retain(|(_, at)| at.elapsed() < ECHO_TTL);
        if self.echoes.len() < ECHOES {
            self.echoes.push((e, Instant::now()));
        }
    }

    fn is_echo(&mut self, e: &HubEvent) -> bool {
        match self.echoes.iter().position(|(x, _)| x.matches(e)) {
            Some(i) => {
                self.echoes.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// Whether the session may still act; commands read after it ended are refused with this error.
    pub fn live(&self) -> Result<()> {
        if self.reg.ctl.reason() == Some(CloseReason::SessionEnded) || self.who.expires_at <= now_millis() {
            return Err(Error::Unauthorized);
        }
        Ok(())
    }

    /// Waits for the next thing the connection must act on. Cancel-safe: nothing is lost when another
    /// branch of the transport's `select!` wins.
    pub async fn wake(&mut self) -> Wake {
        if !self.batch.is_empty() && !self.held {
            return Wake::Deliveries;
        }
        // The session's end wins over deliveries (the timer's branch comes after them, for keepalive).
        if Instant::now() >= self.expires {
            return Wake::End(End::SessionEnded);
        }
        tokio::select! {
            // An end wins over everything else that is ready.
            biased;
            reason = self.reg.ctl.closed() => Wake::End(reason.into()),
            n = self.reg.rx.recv_many(&mut self.batch, BATCH), if !self.held => {
                if n == 0 {
                    // The hub dropped this connection; it always says why first.
                    Wake::End(self.reg.ctl.reason().map_or(End::TooSlow, End::from))
                } else {
                    Wake::Deliveries
                }
            }
            // The session's expiry, or else the keepalive tick (the next one a period after this one).
            () = &mut self.timer => {
                if self.timer.deadline() >= self.expires {
                    Wake::End(End::SessionEnded)
                } else {
                    let next = (Instant::now() + self.timing.keepalive).min(self.expires);
                    self.timer.as_mut().reset(next);
                    if self.timing.hears_client && self.last_heard.elapsed() > self.timing.keepalive * 2 {
                        Wake::End(End::Silent)
                    } else {
                        Wake::Keepalive
                    }
                }
            }
        }
    }

    /// Also takes (without waiting) what else is queued, up to `max` deliveries in all: for a transport
    /// that gathers deliveries before writing (WebSocket coalescing).
    pub fn gather(&mut self, max: usize) {
        self.reg.rx.take_ready(&mut self.batch, max);
    }

    /// Turns the deliveries taken by [`Connection::wake`] into what to send, through the feed. Ends the
    /// connection as too slow when the oldest of them waited longer than the write timeout.
    pub async fn take(&mut self, out: &mut Vec<Out>) -> std::result::Result<(), End> {
        if self.batch.first().is_some_and(|d| d.queued_for() > self.timing.write_timeout) {
            self.batch.clear();
            metrics::counter!("parley_slow_client_disconnects_total").increment(1);
            return Err(End::TooSlow);
        }
        let batch = std::mem::take(&mut self.batch);
        for d in batch {
            self.reg.took(&d);
            if let HubEvent::UserUpdated(u) = &d.event
                && u.id == self.who.user.id
            {
                self.who.user = u.clone(); // later sends carry the new name
            }
            if !self.echoes.is_empty() && self.is_echo(&d.event) {
                continue;
            }
            self.feed.deliver(&self.chat, &self.who, d, out).await;
        }
        Ok(())
    }

    /// At shutdown: what is still queued, through the feed, without waiting for more.
    pub async fn drain(&mut self, out: &mut Vec<Out>) {
        self.held = false;
        self.gather(usize::MAX);
        self.take_unbounded(out).await;
    }

    async fn take_unbounded(&mut self, out: &mut Vec<Out>) {
        let batch = std::mem::take(&mut self.batch);
        for d in batch {
            self.reg.took(&d);
            self.feed.deliver(&self.chat, &self.who, d, out).await;
        }
    }

    /// Everything in `room` after `after` (a client's resume), then live from there; where the client
    /// now stands.
    pub async fn resume(&mut self, room: RoomId, after: Seq, out: &mut Vec<Out>) -> Result<Seq> {
        self.feed.resume(&self.chat, &self.who, room, after, out).await
    }

    /// Bytes queued for this connection and not yet taken (see [`Delivery::size`]).
    pub fn queued_bytes(&self) -> usize {
        self.reg.ctl.queued_bytes()
    }

    /// Records that the connection ends as too slow (a write the client did not take in time).
    pub fn too_slow(&self) -> End {
        metrics::counter!("parley_slow_client_disconnects_total").increment(1);
        End::TooSlow
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::domain::{DisplayName, SessionId, Username};
    use crate::core::limits::Transport;
    use crate::core::ports::broker::{BrokerEvent, BrokerSink};
    use crate::core::ports::store::DynStore;
    use crate::testing::MemoryStore;

    async fn setup(life_ms: i64, timing: Timing) -> (Arc<Chat>, Connection) {
        let store: DynStore = Arc::new(MemoryStore::new());
        let chat = Arc::new(crate::core::chat::testing::chat(store.clone()));
        let name = Username::parse("carl").unwrap();
        let user =
            store.create_user(&name, &DisplayName::parse("carl").unwrap(), "unused", now_millis()).await.unwrap();
        let who = Identity { user, session: SessionId::generate(), expires_at: now_millis() + life_ms };
        let admission = chat.admit(&who, Transport::Ws).unwrap();
        let (conn, _) = Connection::open(&chat, who, admission, timing).await.unwrap();
        (chat, conn)
    }

    const TIMING: Timing =
        Timing { keepalive: Duration::from_secs(1), write_timeout: Duration::from_secs(5), hears_client: false };

    #[tokio::test(start_paused = true)]
    async fn expiry_ends_the_connection_at_the_sessions_end() {
        let (_chat, mut conn) = setup(2_500, TIMING).await;
        let started = Instant::now();
        assert_eq!(conn.wake().await, Wake::Keepalive);
        assert_eq!(conn.wake().await, Wake::Keepalive);
        assert_eq!(conn.wake().await, Wake::End(End::SessionEnded));
        assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_client_ends_after_two_keepalive_periods_unless_heard() {
        let (_chat, mut conn) = setup(60_000, Timing { hears_client: true, ..TIMING }).await;
        assert_eq!(conn.wake().await, Wake::Keepalive);
        conn.heard();
        assert_eq!(conn.wake().await, Wake::Keepalive);
        assert_eq!(conn.wake().await, Wake::Keepalive);
        assert_eq!(conn.wake().await, Wake::End(End::Silent));
    }

    #[tokio::test(start_paused = true)]
    async fn a_delivery_queued_longer_than_the_write_timeout_makes_the_client_too_slow() {
        let (chat, mut conn) = setup(60_000, TIMING).await;
        let me = conn.who.user.id;
        conn.hold(true);
        chat.hub().deliver(BrokerEvent::Read { user: me, room: RoomId(1), seq: 1 });
        tokio::time::advance(Duration::from_secs(6)).await;
        conn.hold(false);
        assert_eq!(conn.wake().await, Wake::Deliveries);
        let mut out = Vec::new();
        assert_eq!(conn.take(&mut out).await.err(), Some(End::TooSlow));
    }

    #[tokio::test(start_paused = true)]
    async fn queued_bytes_count_until_the_connection_takes_them() {
        let (chat, mut conn) = setup(60_000, TIMING).await;
        let me = conn.who.user.id;
        conn.hold(true);
        for seq in 1..=3 {
            chat.hub().deliver(BrokerEvent::Read { user: me, room: RoomId(1), seq });
        }
        let one = crate::core::hub::Delivery::new(HubEvent::Read { room: RoomId(1), seq: 1 }).size();
        assert_eq!(conn.queued_bytes(), 3 * one, "held deliveries count against the byte bound");
        conn.hold(false);
        assert_eq!(conn.wake().await, Wake::Deliveries);
        let mut out = Vec::new();
        conn.take(&mut out).await.unwrap();
        assert_eq!(out.len(), 3);
        assert_eq!(conn.queued_bytes(), 0, "taken deliveries no longer count");
    }

    #[tokio::test(start_paused = true)]
    async fn the_acting_connection_gets_no_copy_of_its_own_reply() {
        let (chat, mut conn) = setup(60_000, TIMING).await;
        let me = conn.who.user.id;
        conn.expect_echo(Echo::Read(RoomId(1), 3));
        chat.hub().deliver(BrokerEvent::Read { user: me, room: RoomId(1), seq: 3 });
        chat.hub().deliver(BrokerEvent::Read { user: me, room: RoomId(1), seq: 4 });
        assert_eq!(conn.wake().await, Wake::Deliveries);
        let mut out = Vec::new();
        conn.take(&mut out).await.unwrap();
        let seqs: Vec<Seq> = out
            .iter()
            .filter_map(|o| match o {
                Out::Shared(d) => match d.event {
                    HubEvent::Read { seq, .. } => Some(seq),
                    _ => None,
                },
                Out::Stored(_) => None,
            })
            .collect();
        assert_eq!(seqs, [4], "the echo is dropped once, later reads go through");
    }

    #[test]
    fn end_codes_are_stable() {
        assert_eq!(End::from(CloseReason::SessionEnded).code(), "session_ended");
        assert_eq!(End::from(CloseReason::TooSlow).code(), "too_slow");
        assert_eq!(End::from(CloseReason::ShuttingDown).code(), "shutting_down");
        assert_eq!(End::Silent.code(), "keepalive_timeout");
    }
}
