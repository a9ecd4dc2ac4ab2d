//! Domain types, parsed once at the boundary.
//!
//! Every value that crosses into the core from a transport is turned into one of these newtypes first;
//! past that point, code can rely on the invariant each type states (a [`Username`] is always valid, a
//! [`MessageBody`] is never empty). Rules are documented for users in `docs/PROTOCOL.md` §1.
//!
//! By concern, all re-exported here (`domain::X` whatever file `X` is in): `ids.rs` identifiers,
//! `names.rs` what people type (names, bodies, references), `rooms.rs` users and rooms, `messages.rs`
//! messages and history, `convo.rs` reactions, pins, threads and notification levels.

mod convo;
mod ids;
mod messages;
mod names;
mod rooms;
#[cfg(test)]
mod tests;

pub use convo::*;
pub use ids::*;
pub use messages::*;
pub use names::*;
pub use rooms::*;
