//! The chat core: domain types, the hub and the chat service. Nothing in here knows HTTP, JSON, SQL or
//! Redis; transports call [`chat::Chat`], and storage and fan-out across nodes sit behind the
//! `store::Store` and `broker::Broker` traits.

pub mod blobs;
pub mod chat;
pub mod conn;
pub mod cursor;
pub mod domain;
pub mod error;
pub mod hub;
pub mod ingest;
pub mod limits;
pub mod search;
pub mod thumbnail;
pub mod typing;
