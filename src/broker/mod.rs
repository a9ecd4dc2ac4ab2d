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
mod redis_cluster;

// The trait, its events and the catch-up set are the core's port (`core::ports::broker`); re-exported
// here so the adapters and their callers keep their paths.
pub use crate::core::hub::Interest;
pub use crate::core::ports::broker::{Broker, BrokerEvent, BrokerSink, CatchUp, DynBroker, user_digest};
