//! The Parley v1 wire protocol (`docs/PROTOCOL.md`), in one crate used by the server, the terminal
//! client and the tests:
//! - [`server`]: what the server sends (REST bodies, WebSocket frames, SSE events), as it encodes them:
//!   borrowed, `Serialize` shapes, with utoipa schemas behind the `openapi` feature;
//! - [`answers`]: the REST answers that wrap those shapes (lists, the login answer);
//! - [`rest`]: what clients send as REST request bodies, one type for both sides;
//! - [`inbound`]: what clients send on a WebSocket, as the server reads it ([`inbound::decode_client_frame`]);
//! - [`client`]: a client's owned mirrors: it decodes server frames into them and encodes its frames
//!   from them (unknown fields and frame types are tolerated, as the protocol asks of clients).
//!
//! `tests/round_trip.rs` encodes a sample of every server frame with [`server`] and decodes it with
//! [`client`], and every [`client::ClientFrame`] with [`inbound`], so the two sides cannot drift apart.

#![deny(clippy::unwrap_used)]

pub mod answers;
pub mod client;
pub mod inbound;
pub mod rest;
pub mod server;

pub const PROTOCOL_VERSION: u32 = 1;
pub const SUBPROTOCOL: &str = "parley.v1";
