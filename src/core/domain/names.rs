//! What people type, parsed once at the boundary: usernames, passwords, display names, room names and
//! references, message bodies and client message ids.

use std::fmt;

use super::RoomId;
use crate::core::error::Error;

pub(super) fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

fn check_name(s: &str, min: usize, max: usize) -> bool {
    let len = s.chars().count();
    (min..=max).contains(&len)
        && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars().all(is_name_char)
}

/// A username as chosen at registration: 3–32 of `[A-Za-z0-9_-]`, starting with a letter.
/// Uniqueness ignores case; [`Username::key`] is the case-folded form the store indexes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    pub fn parse(s: &str) -> Result<Self, Error> {
        if check_name(s, 3, 32) { Ok(Username(s.to_owned())) } else { Err(Error::InvalidUsername) }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

/// A password in memory, 8–256 bytes. Never printed.
pub struct Password(String);

impl Password {
    pub fn parse(s: &str) -> Result<Self, Error> {
        if (8..=256).contains(&s.len()) { Ok(Password(s.to_owned())) } else { Err(Error::InvalidPassword) }
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(…)")
    }
}

/// A display name: 1–64 characters after trimming; no control characters, and none of the invisible
/// ones that let a name pass for another ([`is_invisible`]: bidi controls, zero-width characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

/// Characters that change how text around them is shown, or show as nothing: bidi embeddings,
/// overrides, isolates and marks (U+061C, U+200E–U+200F, U+202A–U+202E, U+2066–U+2069), zero-width
/// characters (U+200B–U+200D, U+2060–U+2064, U+FEFF), the soft hyphen U+00AD, the combining grapheme
/// joiner U+034F, and the Hangul fillers (U+115F, U+1160, U+3164, U+FFA0). Documented in PROTOCOL.md §1.
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{180E}'
        | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}'
        | '\u{3164}' | '\u{FEFF}' | '\u{FFA0}')
}

impl DisplayName {
    pub fn parse(s: &str) -> Result<Self, Error> {
        let t = s.trim();
        let len = t.chars().count();
        if (1..=64).contains(&len) && !t.chars().any(|c| c.is_control() || is_invisible(c)) {
            Ok(DisplayName(t.to_owned()))
        } else {
            Err(Error::InvalidDisplayName)
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A room name: 1–48 of `[A-Za-z0-9_-]`, starting with a letter; unique ignoring case. Never of the
/// form direct conversations were once named by (`dm-<id>-<id>`, see [`is_direct_name`]): those are
/// addressed as `@peer` ([`RoomRef::Direct`]), and a group room must not pass for one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomName(String);

/// `dm-<digits>-<digits>`, ignoring case: the names direct conversations carry, which no group room may
/// take, and which name lookups never resolve (a room that took such a name before this rule is reachable
/// by its id only).
pub fn is_direct_name(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    let Some(rest) = lower.strip_prefix("dm-") else { return false };
    let Some((a, b)) = rest.split_once('-') else { return false };
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|c| c.is_ascii_digit());
    digits(a) && digits(b)
}

impl RoomName {
    pub fn parse(s: &str) -> Result<Self, Error> {
        if check_name(s, 1, 48) && !is_direct_name(s) {
            Ok(RoomName(s.to_owned()))
        } else {
            Err(Error::InvalidRoomName)
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

/// How a client names a room in a request: by id, by name, or a direct conversation as `@peer` (the
/// other person's username). Names start with a letter, ids are digits and direct conversations `@`, so a
/// string form is never ambiguous.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomRef {
    Id(RoomId),
    Name(String),
    /// The direct conversation with this user (their username, any case).
    Direct(String),
}

impl RoomRef {
    pub fn parse(s: &str) -> RoomRef {
        if let Some(peer) = s.strip_prefix('@') {
            return RoomRef::Direct(peer.to_owned());
        }
        match s.parse::<i64>() {
            Ok(id) => RoomRef::Id(RoomId(id)),
            Err(_) => RoomRef::Name(s.to_owned()),
        }
    }
}

/// The text of a message: non-blank UTF-8 of at most the configured number of bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageBody(String);

impl MessageBody {
    pub fn parse(s: &str, max_bytes: usize) -> Result<Self, Error> {
        if s.trim().is_empty() {
            Err(Error::EmptyMessage)
        } else if s.len() > max_bytes {
            Err(Error::MessageTooLarge { max_bytes })
        } else {
            Ok(MessageBody(s.to_owned()))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The sender's idempotency key for one message: 1–64 printable ASCII characters (space included).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientMsgId(String);

impl ClientMsgId {
    pub fn parse(s: &str) -> Result<Self, Error> {
        if (1..=64).contains(&s.len()) && s.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
            Ok(ClientMsgId(s.to_owned()))
        } else {
            Err(Error::BadRequest("client_id must be 1-64 printable ASCII characters (0x20-0x7E)".into()))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
