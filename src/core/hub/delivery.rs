//! What the hub hands a connection, and the connection's bounded queue.
//!
//! - **Encode once.** A delivery is an `Arc<Delivery>` shared by every recipient; transports cache their
//!   encoding of it in [`Delivery::encoded`], so a message to 1,000 members is serialised once per
//!   wire format, not 1,000 times. The hub itself never sees a wire format.
//! - **Bounded twice.** A connection's queue (`queue.rs`) is bounded in deliveries (`--send-queue`)
//!   and in bytes (`--send-queue-bytes`): each delivery carries a size estimated once when it is made
//!   ([`Delivery::size`]), the hub adds it to the connection's counter
//!   ([`ConnControl::queued_bytes`](super::ConnControl::queued_bytes)) when it queues it — one relaxed
//!   atomic add per recipient — and the connection subtracts it when it takes the delivery
//!   (`Registration::took`).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;

use crate::core::domain::{ConvoEvent, Invite, Message, Room, RoomId, Seq, User};

/// Why the server closed a connection. Transports map these to their own close codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// Logout or expiry.
    SessionEnded,
    /// The send queue overflowed (in deliveries or in bytes), or the client did not keep up in time.
    TooSlow,
    /// The server is stopping.
    ShuttingDown,
}

/// What the hub pushes to a connection.
#[derive(Debug)]
pub enum HubEvent {
    Message(Arc<Message>),
    /// A stored message was edited or deleted (its new state).
    Updated(Arc<Message>),
    Joined(Room),
    Left(RoomId),
    /// A room's name or topic changed.
    RoomUpdated(Room),
    /// A user who shares a room with this connection came online or went offline.
    Presence {
        user: User,
        online: bool,
    },
    /// Someone is typing in a room (ephemeral; never stored).
    Typing {
        room: RoomId,
        user: User,
    },
    /// This connection's user read `room` up to `seq` (on any device).
    Read {
        room: RoomId,
        seq: Seq,
    },
    /// A user who shares a room with this connection (or its own user) changed their display name.
    UserUpdated(User),
    /// This connection's user was invited into a room.
    Invited(Invite),
    /// Reactions, thread summaries, notification settings (issue 14).
    Convo(ConvoEvent),
}

/// One event shared by all its recipients, with a slot per wire format for its encoding.
#[derive(Debug)]
pub struct Delivery {
    pub event: HubEvent,
    encoded: [OnceLock<Bytes>; 2],
    /// When it was handed to the hub: a connection whose oldest queued delivery is too old is too slow.
    /// (Tokio's clock, so tests can move it.)
    at: tokio::time::Instant,
    /// What it counts against a connection's byte bound ([`HubEvent::size_estimate`]).
    size: usize,
}

/// Which encoding cache slot a transport uses.
#[derive(Debug, Clone, Copy)]
pub enum WireSlot {
    Json = 0,
    Line = 1,
}

/// What every event is counted as beyond its variable parts: the JSON envelope (type, ids, sender,
/// timestamps), about what a short message encodes to.
pub const EVENT_OVERHEAD: usize = 192;

impl HubEvent {
    /// A cheap estimate of the event's encoded size, in bytes, computed once per delivery whatever the
    /// number of recipients: [`EVENT_OVERHEAD`] plus the variable-length text it carries (a message's
    /// body, its files, mentions and quote; a room's name and topic; a user's names). Within a small
    /// factor of the JSON the WebSocket and SSE send and above the TCP line, which is what the byte
    /// bound needs: big messages count big, small events small.
    pub fn size_estimate(&self) -> usize {
        let user = |u: &User| u.username.len() + u.display_name.len();
        let room = |r: &Room| r.name.len() + r.topic.len();
        let message = |m: &Message| {
            m.body.len()
                + m.sender.as_ref().map_or(0, user)
                + m.target.as_ref().map_or(0, user)
                + m.client_id.as_ref().map_or(0, String::len)
                + m.mentions.len() * 12
                + m.files.len() * 160
                + m.extras.quote.as_ref().map_or(0, |q| 64 + q.excerpt.len())
                + m.extras.reactions.len() * 48
        };
        EVENT_OVERHEAD
            + match self {
                HubEvent::Message(m) | HubEvent::Updated(m) => message(m),
                HubEvent::Joined(r) | HubEvent::RoomUpdated(r) => room(r),
                HubEvent::Presence { user: u, .. } | HubEvent::Typing { user: u, .. } | HubEvent::UserUpdated(u) => {
                    user(u)
                }
                HubEvent::Left(_) | HubEvent::Read { .. } => 0,
                HubEvent::Invited(_) | HubEvent::Convo(_) => 64,
            }
    }
}

impl Delivery {
    pub fn new(event: HubEvent) -> Arc<Self> {
        let size = event.size_estimate();
        Arc::new(Delivery { event, encoded: Default::default(), at: tokio::time::Instant::now(), size })
    }
    /// What it counts against a connection's byte bound, in bytes.
    pub fn size(&self) -> usize {
        self.size
    }
    /// How long since the hub got it.
    pub fn queued_for(&self) -> Duration {
        self.at.elapsed()
    }
    /// The encoding for `slot`, computed by `encode` the first time any connection asks.
    pub fn encoded(&self, slot: WireSlot, encode: impl FnOnce(&HubEvent) -> Bytes) -> Bytes {
        self.encoded[slot as usize].get_or_init(|| encode(&self.event)).clone()
    }
}
