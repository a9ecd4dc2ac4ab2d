//! Test-only door from the core's unit tests to the adapters they run on (the in-memory store, the
//! in-process broker, real password hashing and tokens). The core never names an adapter module
//! itself (`tests/core_imports.rs`); this module exists only under `cfg(test)`.

pub(crate) use crate::auth::{Passwords, Tokens};
pub(crate) use crate::broker::local::LocalBroker;
pub(crate) use crate::store::memory::MemoryStore;
