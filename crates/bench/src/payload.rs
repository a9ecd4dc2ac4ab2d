//! The payload the generator sends and the allocation-free scanning of the frames it receives.
//!
//! A message body is `b|<sender>|<n>|<sent_ns>` (optionally followed by `|xxxx…` padding):
//! `sender` is the generator-wide sender index, `n` its per-sender sequence (from 1) and `sent_ns`
//! the **scheduled** send time in nanoseconds since the run's base instant (so a stalled server or
//! a generator that fell behind shows up as latency, not as fewer sends). The `client_id` of the
//! send is the same stamp without padding, so the `ack` carries it back.
//!
//! Received frames are never fully parsed on the hot path: [`classify`] looks for the `type`
//! field and then for `body` / `client_id` / `duplicate` with `memchr::memmem`.

use memchr::memmem::Finder;
use std::fmt::Write as _;
use std::sync::LazyLock;

/// Identifies one send: who sent it, its per-sender number and when it was scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub sender: u32,
    pub n: u64,
    pub sent_ns: u64,
}

impl Stamp {
    /// Appends `b|<sender>|<n>|<sent_ns>` to `out`.
    pub fn write_to(&self, out: &mut String) {
        let _ = write!(out, "b|{}|{}|{}", self.sender, self.n, self.sent_ns);
    }

    /// Parses a stamp from the start of `s` (which must begin with `b|`). Stops at `|`, `"` or
    /// the end of the input after the third number; anything else is a parse failure.
    pub fn parse(s: &[u8]) -> Option<Stamp> {
        let rest = s.strip_prefix(b"b|")?;
        let (sender, rest) = parse_u64(rest)?;
        let rest = rest.strip_prefix(b"|")?;
        let (n, rest) = parse_u64(rest)?;
        let rest = rest.strip_prefix(b"|")?;
        let (sent_ns, rest) = parse_u64(rest)?;
        match rest.first() {
            None | Some(b'|') | Some(b'"') => {}
            _ => return None,
        }
        Some(Stamp { sender: u32::try_from(sender).ok()?, n, sent_ns })
    }
}

fn parse_u64(s: &[u8]) -> Option<(u64, &[u8])> {
    let digits = s.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 19 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in &s[..digits] {
        v = v * 10 + u64::from(b - b'0');
    }
    Some((v, &s[digits..]))
}

/// Writes a complete `send` frame for `stamp` into `out` (cleared first). The body is padded with
/// `x` to at least `body_bytes` bytes.
pub fn send_frame(out: &mut String, room: u64, stamp: &Stamp, body_bytes: usize) {
    out.clear();
    let _ = write!(out, "{{\"type\":\"send\",\"room\":{room},\"body\":\"");
    let body_start = out.len();
    stamp.write_to(out);
    let len = out.len() - body_start;
    if body_bytes > len + 1 {
        out.push('|');
        for _ in 0..body_bytes - len - 1 {
            out.push('x');
        }
    }
    out.push_str("\",\"client_id\":\"");
    stamp.write_to(out);
    out.push_str("\"}");
}

/// What a received text frame is, as far as the generator cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// A `message` frame; `Some` when its body is one of our stamps (system messages and foreign
    /// bodies are `None`).
    Message(Option<Stamp>),
    /// An `ack`, with the stamp from its `client_id` and whether the server flagged a duplicate.
    Ack {
        stamp: Option<Stamp>,
        duplicate: bool,
    },
    Hello,
    History,
    Error,
    /// Any other frame type (joined, left, pong, unknown types).
    Other,
    /// Not a JSON object with a `type` string.
    Unparsable,
}

static TYPE: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"type\""));
static BODY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"body\""));
static CLIENT_ID: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"client_id\""));
static DUPLICATE: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"duplicate\""));

/// Finds `"key"` followed by optional white space and `:`, and returns what follows the colon
/// with leading white space removed.
fn field<'a>(frame: &'a [u8], key: &Finder<'_>) -> Option<&'a [u8]> {
    let mut from = 0;
    while let Some(pos) = key.find(&frame[from..]) {
        let after = from + pos + key.needle().len();
        let rest = trim_ws(&frame[after..]);
        if let Some(rest) = rest.strip_prefix(b":") {
            return Some(trim_ws(rest));
        }
        from = after;
    }
    None
}

fn trim_ws(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r')).count();
    &s[n..]
}

/// The content of a JSON string value up to its closing quote (escapes are not decoded; our
/// stamps never contain any).
fn string_value(v: &[u8]) -> Option<&[u8]> {
    let v = v.strip_prefix(b"\"")?;
    let end = memchr::memchr(b'"', v)?;
    Some(&v[..end])
}

fn stamp_in(frame: &[u8], key: &Finder<'_>) -> Option<Stamp> {
    let v = field(frame, key)?;
    let v = v.strip_prefix(b"\"")?;
    if !v.starts_with(b"b|") {
        return None;
    }
    Stamp::parse(v)
}

/// Classifies a received text frame without allocating.
pub fn classify(frame: &[u8]) -> Frame {
    let Some(ty) = field(frame, &TYPE).and_then(string_value) else {
        return Frame::Unparsable;
    };
    match ty {
        b"message" => Frame::Message(stamp_in(frame, &BODY)),
        b"ack" => Frame::Ack {
            stamp: stamp_in(frame, &CLIENT_ID),
            duplicate: field(frame, &DUPLICATE).is_some_and(|v| v.starts_with(b"true")),
        },
        b"hello" => Frame::Hello,
        b"history" => Frame::History,
        b"error" => Frame::Error,
        _ => Frame::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_round_trip() {
        let s = Stamp { sender: 17, n: 123_456, sent_ns: 9_876_543_210 };
        let mut out = String::new();
        s.write_to(&mut out);
        assert_eq!(out, "b|17|123456|9876543210");
        assert_eq!(Stamp::parse(out.as_bytes()), Some(s));
        assert_eq!(Stamp::parse(b"b|1|2|3|xxxx"), Some(Stamp { sender: 1, n: 2, sent_ns: 3 }));
        assert_eq!(Stamp::parse(b"b|1|2|3\",\"x"), Some(Stamp { sender: 1, n: 2, sent_ns: 3 }));
    }

    #[test]
    fn stamp_rejects_garbage() {
        for bad in [
            &b"hello"[..],
            b"b|",
            b"b|1|2",
            b"b|1|2|",
            b"b|x|2|3",
            b"b|1|2|3a",
            b"b|99999999999|2|3",
            b"b|1|2|99999999999999999999999",
        ] {
            assert_eq!(Stamp::parse(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn send_frame_is_valid_json_with_padding() {
        let s = Stamp { sender: 3, n: 9, sent_ns: 42 };
        let mut out = String::new();
        send_frame(&mut out, 7, &s, 0);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["type"], "send");
        assert_eq!(v["room"], 7);
        assert_eq!(v["body"], "b|3|9|42");
        assert_eq!(v["client_id"], "b|3|9|42");

        send_frame(&mut out, 7, &s, 100);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let body = v["body"].as_str().unwrap();
        assert_eq!(body.len(), 100);
        assert_eq!(Stamp::parse(body.as_bytes()), Some(s));
    }

    /// The hand-written `send` frames (the hot path) are what the server reads as a `send`: room, body with
    /// its padding, and the stamp as `client_id`.
    #[test]
    fn send_frames_decode_as_the_servers_inbound_frame() {
        use parley_proto::inbound::{ClientFrame, RoomRefW, decode_client_frame};
        let s = Stamp { sender: 3, n: 9, sent_ns: 42 };
        let mut out = String::new();
        for body_bytes in [0, 100, 4096] {
            send_frame(&mut out, 7, &s, body_bytes);
            match decode_client_frame(&out) {
                Ok(ClientFrame::Send { room: RoomRefW::Id(7), body, client_id, files, reply_to: None, req: None }) => {
                    assert_eq!(body.len(), body_bytes.max("b|3|9|42".len()), "{out}");
                    assert_eq!(Stamp::parse(body.as_bytes()), Some(s));
                    assert_eq!(client_id.as_deref(), Some("b|3|9|42"));
                    assert!(files.is_empty());
                }
                other => panic!("the server reads {out} as {other:?}"),
            }
        }
    }

    #[test]
    fn classifies_server_frames() {
        let msg = br#"{"type":"message","message":{"room":1,"seq":2,"kind":"text","sender":{"id":1,"username":"u","display_name":"u"},"body":"b|4|5|6","client_id":"b|4|5|6","ts":1}}"#;
        assert_eq!(classify(msg), Frame::Message(Some(Stamp { sender: 4, n: 5, sent_ns: 6 })));
        let spaced = br#"{ "type" : "message", "message": {"kind":"text", "body" : "b|4|5|6|xx", "ts":1}}"#;
        assert_eq!(classify(spaced), Frame::Message(Some(Stamp { sender: 4, n: 5, sent_ns: 6 })));
        let sys = br#"{"type":"message","message":{"room":1,"seq":1,"kind":"join","body":"","client_id":null}}"#;
        assert_eq!(classify(sys), Frame::Message(None));
        let foreign = br#"{"type":"message","message":{"kind":"text","body":"hi all"}}"#;
        assert_eq!(classify(foreign), Frame::Message(None));
        let ack = br#"{"type":"ack","room":1,"seq":2,"ts":3,"client_id":"b|4|5|6","duplicate":false}"#;
        assert_eq!(classify(ack), Frame::Ack { stamp: Some(Stamp { sender: 4, n: 5, sent_ns: 6 }), duplicate: false });
        let dup = br#"{"type":"ack","room":1,"seq":2,"ts":3,"client_id":"b|4|5|6","duplicate":true}"#;
        assert!(matches!(classify(dup), Frame::Ack { duplicate: true, .. }));
        assert_eq!(classify(br#"{"type":"hello","v":1}"#), Frame::Hello);
        assert_eq!(classify(br#"{"type":"error","code":"x"}"#), Frame::Error);
        assert_eq!(classify(br#"{"type":"history","messages":[]}"#), Frame::History);
        assert_eq!(classify(br#"{"type":"pong"}"#), Frame::Other);
        assert_eq!(classify(b"not json"), Frame::Unparsable);
        // A "type" key whose value is not a string is skipped.
        assert_eq!(classify(br#"{"type":1}"#), Frame::Unparsable);
    }
}
