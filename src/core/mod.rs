//! The chat core: domain types, the hub and the chat service. Nothing in here knows HTTP, JSON, SQL or
//! Redis; transports call [`chat::Chat`], and what lies outside (storage, fan-out across nodes,
//! password hashing and tokens, time) sits behind the traits in [`ports`], which adapters implement.
//! Nothing here imports an adapter (`src/store`, `src/broker`, `src/auth.rs`, …): unit tests reach the
//! in-memory adapters only through the test-only `crate::testing`, and `tests/core_imports.rs`
//! enforces both.

pub mod blobs;
pub mod chat;
pub mod conn;
pub mod cursor;
pub mod domain;
pub mod error;
pub mod hub;
pub mod ingest;
pub mod limits;
pub mod ports;
pub mod presence;
pub mod search;
pub mod thumbnail;
pub mod typing;
