//! Parley: a real-time chat server. See `ARCHITECTURE.md` for the map; `main.rs` is a thin CLI over
//! [`server::run`].

// No `unwrap()` outside tests: an `expect` naming the invariant that makes it safe, or error handling
// where input can reach it (never a panic on input). Unit tests may (`clippy.toml`).
#![deny(clippy::unwrap_used)]

pub mod alloc;
pub mod auth;
pub mod blobs;
pub mod broker;
pub mod config;
pub mod core;
pub mod healthcheck;
pub mod http;
pub mod jobs;
pub mod observe;
pub mod redis_link;
pub mod server;
pub mod store;
pub mod tcp;
#[cfg(test)]
pub(crate) mod testing;
pub mod tls;
