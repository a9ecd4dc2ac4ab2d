//! How nodes tell each other what happened. Every event that must reach connections — a stored
//! message, a membership change, a session ended — goes through the broker, even on a single node,
//! so the path a message takes is the same with one node or many.
//!
//! [`local::LocalBroker`] hands events straight to this node's hub. A Redis broker (several nodes)
//! publishes them and delivers what other nodes published; it implements the same trait.

pub mod local;

use std::sync::Arc;

use async_trait::async_trait;

use crate::core::domain::{Message, Room, RoomId, Seq, SessionId, User, UserId};
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
    /// Ephemeral: `user` is typing in `room`.
    Typing { room: RoomId, user: User },
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
}

pub type DynBroker = Arc<dyn Broker>;
