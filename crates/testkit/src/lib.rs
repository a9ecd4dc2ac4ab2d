//! Parley's test toolbox, shared by `tests/it`, `crates/bench` tests and `crates/tui` tests (a
//! dev-dependency only, never published). One place for what every suite needs to talk to a node:
//! - [`flags`]: the flag list every test node gets (cheap password hashing, port 0, a data directory);
//! - [`binary`]: the `parley` binary as a child process (killed on drop) and its banner;
//! - [`node`]: REST and WebSocket clients of one node ([`node::Node`], [`ws::Ws`]);
//! - [`sse`]: an EventSource reader; [`lines`]: a TCP line-protocol client;
//! - [`wait`]: waiting on a condition with a bound;
//! - [`source`]: the source tree's Rust files, for the tests that keep its layering.
//!
//! It does not depend on the server crate: a node in the test's own process is the server's business
//! (`tests/it/harness.rs` runs one through `parley::server::run`); everything here speaks to a node
//! over real sockets.

// Test support, exempt like the tests it serves: its helpers fail a test by panicking, `unwrap()` included.
#![allow(clippy::unwrap_used)]

pub mod binary;
pub mod flags;
pub mod lines;
pub mod node;
pub mod source;
pub mod sse;
pub mod wait;
pub mod ws;

use std::time::Duration;

/// How long a test waits for anything before failing instead of hanging.
pub const DEADLINE: Duration = Duration::from_secs(15);
