//! The broker port: how nodes tell each other what happened. Every event that must reach connections
//! goes through a [`Broker`], even on a single node; the hub is its [`BrokerSink`]. The adapters in
//! `src/broker/` (in-process, Redis) implement it; `src/broker/mod.rs` re-exports these names.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;

use crate::core::domain::{ConvoEvent, Invite, Message, NodeId, Room, RoomId, Seq, SessionId, User, UserId};
use crate::core::error::Result;
use crate::core::hub::Interest;

#[derive(Debug, Clone)]
pub enum BrokerEvent {
    /// A message was stored (it has its `seq`).
    Message(Arc<Message>),
    /// `user` became a member of `room` (on every connection of theirs).
    Joined { room: Room, user: UserId },
    /// `user` is no longer a member of `room`.
    Left { room: Room, user: UserId },
    /// The session ended: close its connections.
    SessionEnded(SessionId),
    /// A stored message was edited or deleted.
    Updated(Arc<Message>),
    /// A room's name or topic changed.
    RoomUpdated(Room),
    /// `user` read `room` up to `seq`: sync their other devices.
    Read { user: UserId, room: RoomId, seq: Seq },
    /// A user's profile (display name) changed.
    UserUpdated(User),
    /// `user` was invited into a room: tell their connections.
    Invited { user: UserId, invite: Invite },
    /// Ephemeral: `user` is typing in `room`.
    Typing { room: RoomId, user: User },
    /// `user` got their first (`online`) or lost their last connection on `node`; `rooms` are the
    /// rooms whose members should hear of it.
    Presence { node: NodeId, user: User, rooms: Vec<RoomId>, online: bool },
    /// `node`'s connected users, each with the rooms whose members should hear of them: a presence
    /// snapshot, sent when another node asks for it ([`BrokerEvent::SnapshotWanted`]). It replaces
    /// what the receivers knew of `node`'s users.
    NodeAlive { node: NodeId, users: Vec<(User, Vec<RoomId>)> },
    /// `node` is alive with `users` connected users whose ids hash (XOR of [`user_digest`]) to
    /// `digest`: the compact heartbeat, constant size whatever the node holds. A receiver whose own
    /// picture of `node` differs asks for a snapshot. A node not heard from for the node TTL is gone.
    NodeBeat { node: NodeId, users: u64, digest: u64 },
    /// Some node's picture of node `of` is off: `of` answers with a [`BrokerEvent::NodeAlive`].
    SnapshotWanted { of: NodeId },
    /// A change to a room that is not a new message (reactions, a thread's summary): to its members.
    Convo(ConvoEvent),
    /// A change only `user` hears of (their notification settings of a room): to their connections.
    UserConvo { user: UserId, event: ConvoEvent },
}

/// One user's share of a [`BrokerEvent::NodeBeat`] digest (a 64-bit mix of the id, XORed over a
/// node's users, so adding and removing a user are O(1) and order does not matter).
pub fn user_digest(user: UserId) -> u64 {
    // splitmix64's finaliser.
    let mut z = (user.0 as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Where a broker delivers events: the hub.
pub trait BrokerSink: Send + Sync + 'static {
    fn deliver(&self, event: BrokerEvent);
}

#[async_trait]
pub trait Broker: Send + Sync + 'static {
    /// Sets the sink; called once, before the first publish.
    fn attach(&self, sink: Arc<dyn BrokerSink>);
    /// Publishes to every node, this one included. Events from one publisher arrive in publish order.
    async fn publish(&self, event: BrokerEvent) -> Result<()>;
    /// Cheap round trip, for readiness checks.
    async fn ping(&self) -> Result<()>;
    /// Whether other nodes exist beyond this one (then presence heartbeats are worth sending).
    fn distributed(&self) -> bool {
        false
    }
    /// Bumped each time the broker (re)connects to the others; after a bump, events published while
    /// it was away may be lost, and the node resynchronises from the store. `None`: never loses any.
    fn reconnects(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }
    /// Who the hub tells which rooms and users this node follows, when the broker routes per room
    /// (it then receives only those rooms' and users' events). `None`: it receives everything.
    fn interest(&self) -> Option<Arc<dyn Interest>> {
        None
    }
    /// Rooms and users this node has just started receiving; what was published for them before is
    /// read from the store (`Chat::catch_up`). `None` when the broker never starts late.
    fn catch_up(&self) -> Option<Arc<CatchUp>> {
        None
    }
}

/// Rooms and users whose events this node has just started receiving (a subscription confirmed):
/// anything published for them before then is caught up from the store. A set, so it never grows past
/// what the node follows, and repeated subscriptions coalesce.
#[derive(Default)]
pub struct CatchUp {
    pending: parking_lot::Mutex<(HashSet<RoomId>, HashSet<UserId>)>,
    ready: tokio::sync::Notify,
}

impl CatchUp {
    pub fn add(&self, rooms: impl IntoIterator<Item = RoomId>, users: impl IntoIterator<Item = UserId>) {
        let mut p = self.pending.lock();
        p.0.extend(rooms);
        p.1.extend(users);
        if !p.0.is_empty() || !p.1.is_empty() {
            self.ready.notify_one();
        }
    }

    /// Waits for rooms or users to catch up, and takes them all.
    pub async fn next(&self) -> (Vec<RoomId>, Vec<UserId>) {
        loop {
            {
                let mut p = self.pending.lock();
                if !p.0.is_empty() || !p.1.is_empty() {
                    let (r, u) = std::mem::take(&mut *p);
                    return (r.into_iter().collect(), u.into_iter().collect());
                }
            }
            self.ready.notified().await;
        }
    }
}

pub type DynBroker = Arc<dyn Broker>;
