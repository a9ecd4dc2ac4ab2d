//! How nodes tell each other what happened. Every event that must reach connections — a stored
//! message, a membership change, a session ended — goes through the broker, even on a single node,
//! so the path a message takes is the same with one node or many.
//!
//! [`local::LocalBroker`] hands events straight to this node's hub. [`redis::RedisBroker`] (several
//! nodes) delivers to this node's hub at once and publishes to the others over Redis pub/sub. Redis is
//! a fast path, never the record: what a node misses while Redis is away it recovers from the store
//! (see `Chat::resync`), and a connection that sees a gap fills it from the store (`core::cursor`).

mod codec;
pub mod local;
pub mod redis;

use std::sync::Arc;

use async_trait::async_trait;

use crate::core::domain::{ConvoEvent, Invite, Message, NodeId, Room, RoomId, Seq, SessionId, User, UserId};
use crate::core::error::Result;

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
    /// `node` is alive, and these are its connected users: a heartbeat that also repairs any presence
    /// change that was lost. A node not heard from for the node TTL is taken as gone.
    NodeAlive { node: NodeId, users: Vec<(User, Vec<RoomId>)> },
    /// A change to a room that is not a new message (reactions, a thread's summary): to its members.
    Convo(ConvoEvent),
    /// A change only `user` hears of (their notification settings of a room): to their connections.
    UserConvo { user: UserId, event: ConvoEvent },
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
}

pub type DynBroker = Arc<dyn Broker>;
