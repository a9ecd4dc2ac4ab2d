//! Arbitrary bytes as a WebSocket text frame through `decode_client_frame` (see `../checks.rs`).
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::ws_frame(data));
