//! Arbitrary bytes through the TCP line reader and command parser (see `../checks.rs`).
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::tcp_line(data));
