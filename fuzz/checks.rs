//! The checks behind the fuzz targets, shared (via `#[path]`) with the stable-toolchain test that
//! replays `fuzz/corpus/` (`tests/it/hostile.rs`), so CI runs them without nightly.

#![allow(dead_code)] // each fuzz target uses one of the checks
use parley::core::domain::{DisplayName, MessageBody, RoomName, Username};
use parley::http::wire::{FrameError, decode_client_frame};
use parley::tcp::{Line, LineReader, split_command};

/// Arbitrary bytes as a WebSocket text frame: the decoder answers Ok or a FrameError, never panics.
pub(crate) fn ws_frame(data: &[u8]) {
    // tungstenite hands over only valid UTF-8 text frames.
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(FrameError::UnknownType(t)) = decode_client_frame(text) {
        assert!(t.len() <= 64, "unknown types are echoed truncated");
    }
}

const MAX_LINE: usize = 256;

/// Arbitrary bytes, split into reads as a socket delivers them (the first byte picks the read size),
/// through the TCP line reader, the command splitter and the argument parsers. The reader never
/// holds more than one line limit plus one read, and never yields a line above the limit.
pub(crate) fn tcp_line(data: &[u8]) {
    let Some((&n, data)) = data.split_first() else { return };
    let chunk = usize::from(n % 64) + 1;
    let mut reader = LineReader::default();
    for part in data.chunks(chunk) {
        reader.push(part);
        assert!(reader.buffered() <= MAX_LINE + chunk);
        while let Some(line) = reader.next(MAX_LINE) {
            if let Line::Text(t) = line {
                assert!(t.len() <= MAX_LINE);
                command(t.trim_end());
            }
        }
        assert!(reader.buffered() <= MAX_LINE);
    }
}

/// What `tcp::command` does with a line before it reaches the chat service.
fn command(line: &str) {
    let Some((cmd, rest)) = split_command(line) else { return };
    let mut words = rest.split_whitespace();
    match cmd {
        "register" | "login" | "invite" | "msg" => {
            let _ = words.next().map(Username::parse);
        }
        "create" | "join" | "go" => {
            let _ = RoomName::parse(words.next().unwrap_or(""));
        }
        "nick" => {
            let _ = DisplayName::parse(rest);
        }
        "history" => {
            let _ = rest.parse::<u32>();
        }
        _ => {
            let _ = MessageBody::parse(rest, 4096);
        }
    }
}
