//! Parley's integration tests: one binary, real servers on port 0, real sockets.

mod harness;

mod accounts;
mod cluster;
mod convo;
mod domain;
mod durability;
mod everyday;
mod faults;
mod files;
mod frames;
mod hostile;
mod jobs;
mod lifecycle;
mod messaging;
mod ops;
mod production;
mod rooms;
mod search;
mod transports;
mod web;
mod websocket;
