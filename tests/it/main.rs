//! Parley's integration tests: one binary, real servers on port 0, real sockets.

mod harness;

mod accounts;
mod durability;
mod everyday;
mod hostile;
mod messaging;
mod rooms;
mod transports;
mod websocket;
