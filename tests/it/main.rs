//! Parley's integration tests: one binary, real servers on port 0, real sockets.

mod harness;

mod accounts;
mod cluster;
mod convo;
mod domain;
mod durability;
mod everyday;
mod hostile;
mod jobs;
mod messaging;
mod production;
mod rooms;
mod transports;
mod web;
mod websocket;
