//! Messages: their kinds, stored and new messages, files, quotes, mentions, history queries and pages.

use std::sync::Arc;

use super::names::is_name_char;
use super::*;
use crate::core::error::Error;

/// What a message is: people's text, or a system line the server writes into the room's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Text,
    Create,
    Join,
    Leave,
    Invite,
    Kick,
    Ban,
    Unban,
    Rename,
    Topic,
    Role,
    /// The sender (the previous owner, now an admin) handed the room to `target`.
    OwnerChanged,
    /// The sender pinned the message whose seq is the body (decimal).
    Pin,
    /// The sender unpinned the message whose seq is the body (decimal).
    Unpin,
}

impl MessageKind {
    const ALL: [(MessageKind, &'static str); 14] = [
        (MessageKind::Text, "text"),
        (MessageKind::Create, "create"),
        (MessageKind::Join, "join"),
        (MessageKind::Leave, "leave"),
        (MessageKind::Invite, "invite"),
        (MessageKind::Kick, "kick"),
        (MessageKind::Ban, "ban"),
        (MessageKind::Unban, "unban"),
        (MessageKind::Rename, "rename"),
        (MessageKind::Topic, "topic"),
        (MessageKind::Role, "role"),
        (MessageKind::OwnerChanged, "owner_changed"),
        (MessageKind::Pin, "pin"),
        (MessageKind::Unpin, "unpin"),
    ];
    pub fn as_str(self) -> &'static str {
        Self::ALL.iter().find(|(k, _)| *k == self).map_or("text", |(_, s)| s)
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().find(|(_, n)| *n == s).map(|(k, _)| *k)
    }
}

/// A stored message. Shared (`Arc`) between the store's answer, the broker and every connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub room: RoomId,
    pub seq: Seq,
    pub kind: MessageKind,
    pub sender: Option<User>,
    /// For moderation and invitations: whom the action was about.
    pub target: Option<User>,
    /// Empty once deleted (the tombstone keeps its `seq`).
    pub body: String,
    pub client_id: Option<String>,
    pub mentions: Vec<UserId>,
    pub ts: Millis,
    pub edited_at: Option<Millis>,
    pub deleted: bool,
    /// The files this message shares (empty once deleted).
    pub files: Vec<FileMeta>,
    /// For a reply: the parent's `seq` (same room).
    pub reply_to: Option<Seq>,
    /// For a reply: the thread root's `seq` (the parent's `thread` if the parent is a reply, else the
    /// parent).
    pub thread: Option<Seq>,
    /// What the core adds when it reads (never stored with the row): quote, thread summary, reactions.
    pub extras: MessageExtras,
}

/// An uploaded file: what its uploader named it and what the server learned from its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    /// Opaque, random, URL-safe.
    pub id: String,
    pub room: RoomId,
    pub uploader: UserId,
    /// The message that shares it; `None` until it is sent.
    pub seq: Option<Seq>,
    /// Content address of the bytes (SHA-256, lower-case hex).
    pub blob: String,
    /// Sanitized (see [`sanitize_file_name`]).
    pub name: String,
    pub size: i64,
    /// Sniffed from the bytes, never taken from the client.
    pub content_type: String,
    /// For inline images (PNG, JPEG, GIF, WebP).
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub created_at: Millis,
    /// A small copy the server made of an inline image (`core::thumbnail`); `None` for everything
    /// else, and for an image it could not or would not decode.
    pub thumbnail: Option<Thumbnail>,
}

/// A server-made thumbnail: its own blob, PNG (when the image has transparency) or JPEG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thumbnail {
    pub blob: String,
    pub content_type: String,
    pub width: i64,
    pub height: i64,
    pub size: i64,
}

impl FileMeta {
    /// Whether the page may show it inline (a raster image): everything else downloads as an attachment.
    pub fn inline(&self) -> bool {
        INLINE_TYPES.contains(&self.content_type.as_str())
    }

    /// Where its bytes are served (the same path on every node and for every transport).
    pub fn download_path(&self) -> String {
        format!("/api/v1/files/{}/content", self.id)
    }

    /// Where its thumbnail is served, when it has one.
    pub fn thumbnail_path(&self) -> Option<String> {
        self.thumbnail.as_ref().map(|_| format!("/api/v1/files/{}/thumbnail", self.id))
    }

    /// `name (12.3 KiB)`, for people.
    pub fn label(&self) -> String {
        let size = self.size as f64;
        let human = if size < 1024.0 {
            format!("{} B", self.size)
        } else if size < 1024.0 * 1024.0 {
            format!("{:.1} KiB", size / 1024.0)
        } else {
            format!("{:.1} MiB", size / (1024.0 * 1024.0))
        };
        format!("{} ({human})", self.name)
    }
}

/// Content types served inline; any other type (SVG and HTML included) is an attachment.
pub const INLINE_TYPES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

/// A file name safe to show and to put in a `Content-Disposition` header: the last path component,
/// without control characters, bidi overrides or other invisible format characters, at most 200 bytes;
/// `file` when nothing is left.
pub fn sanitize_file_name(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let mut out = String::new();
    for c in last.chars() {
        let bad = c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
            || matches!(c, '"' | ':' | '*' | '?' | '<' | '>' | '|');
        if bad {
            continue;
        }
        if out.len() + c.len_utf8() > 200 {
            break;
        }
        out.push(c);
    }
    let trimmed = out.trim().trim_start_matches('.').trim();
    if trimmed.is_empty() { "file".to_owned() } else { trimmed.to_owned() }
}

/// The derived parts of a [`Message`], filled in by the core from the current state of the room
/// (`core::chat::threads::decorate`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageExtras {
    /// For a reply: its parent as it is now.
    pub quote: Option<Quote>,
    /// For a root: its live (not deleted) replies, and the newest one's time.
    pub reply_count: i64,
    pub last_reply_ts: Option<Millis>,
    /// In first-reaction order.
    pub reactions: Vec<Reaction>,
}

/// A compact quote of a reply's parent; a tombstone once the parent is deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    pub seq: Seq,
    pub sender: Option<User>,
    /// The first [`Quote::EXCERPT_CHARS`] characters of the parent's text; empty once deleted.
    pub excerpt: String,
    pub deleted: bool,
}

impl Quote {
    pub const EXCERPT_CHARS: usize = 120;

    pub fn of(parent: &Message) -> Quote {
        Quote {
            seq: parent.seq,
            sender: parent.sender.clone(),
            excerpt: if parent.deleted {
                String::new()
            } else {
                parent.body.chars().take(Self::EXCERPT_CHARS).collect()
            },
            deleted: parent.deleted,
        }
    }
}

/// A message on its way into the store, before it has a sequence number.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub room: RoomId,
    pub kind: MessageKind,
    pub sender: User,
    pub target: Option<User>,
    pub body: String,
    pub client_id: Option<ClientMsgId>,
    /// Members this text mentions (`@username`), resolved before storing.
    pub mentions: Vec<UserId>,
    pub ts: Millis,
    /// Files this message shares: uploaded by its sender into its room and not yet sent.
    pub files: Vec<FileMeta>,
    /// For a reply: the parent's `seq` and the thread root's, and the parent quoted as it is now (not
    /// stored: handed on with the stored message for its live delivery).
    pub reply_to: Option<Seq>,
    pub thread: Option<Seq>,
    pub quote: Option<Quote>,
}

impl NewMessage {
    /// A system line about `sender` (and `target`) at `ts`, with `body` carrying the detail (a new name…).
    pub fn system(
        room: RoomId,
        kind: MessageKind,
        sender: &User,
        target: Option<&User>,
        body: &str,
        ts: Millis,
    ) -> Self {
        NewMessage {
            room,
            kind,
            sender: sender.clone(),
            target: target.cloned(),
            body: body.to_owned(),
            client_id: None,
            mentions: Vec::new(),
            ts,
            files: Vec::new(),
            reply_to: None,
            thread: None,
            quote: None,
        }
    }
}

#[cfg(test)]
impl NewMessage {
    /// A text from `sender` in `room` with an optional `client_id`, stamped now: the test suites' shorthand.
    pub(crate) fn test_text(room: RoomId, sender: &User, body: &str, client_id: Option<&str>) -> Self {
        NewMessage {
            client_id: client_id.map(|c| ClientMsgId::parse(c).unwrap()),
            ..NewMessage::system(room, MessageKind::Text, sender, None, body, now_millis())
        }
    }
}

/// The mention that names every member of a room (from its owner and admins).
pub const ROOM_MENTION: &str = "room";

/// The `@username` words of a text, lower-cased, each once.
pub fn mentioned_names(body: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, _) in body.match_indices('@') {
        // A mention starts a word: not `me@example.com`.
        if body[..i].chars().next_back().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            continue;
        }
        let name: String = body[i + 1..].chars().take_while(|&c| is_name_char(c)).collect();
        let key = name.to_ascii_lowercase();
        if Username::parse(&name).is_ok() && !out.contains(&key) {
            out.push(key);
        }
    }
    out
}

/// What the store answered for one appended message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// Stored now, with its new sequence number.
    Stored(Arc<Message>),
    /// The same sender already stored this `client_id` in this room: the original, stored nothing new.
    Duplicate(Arc<Message>),
    /// A text message from someone who is not (or no longer) a member.
    NotMember,
}

/// Which page of history to read. Pages are always returned in ascending `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryQuery {
    /// The newest `limit` messages.
    Latest { limit: u32 },
    /// The newest `limit` messages with `seq < before`.
    Before { before: Seq, limit: u32 },
    /// The oldest `limit` messages with `seq > after`.
    After { after: Seq, limit: u32 },
}

impl HistoryQuery {
    pub const DEFAULT_LIMIT: u32 = 50;
    pub const MAX_LIMIT: u32 = 200;

    pub fn new(before: Option<Seq>, after: Option<Seq>, limit: Option<u32>) -> Result<Self, Error> {
        let limit = limit.unwrap_or(Self::DEFAULT_LIMIT);
        if !(1..=Self::MAX_LIMIT).contains(&limit) {
            return Err(Error::BadRequest(format!("limit must be between 1 and {}", Self::MAX_LIMIT)));
        }
        match (before, after) {
            (Some(_), Some(_)) => Err(Error::BadRequest("give either before or after, not both".into())),
            (Some(before), None) => Ok(HistoryQuery::Before { before, limit }),
            (None, Some(after)) => Ok(HistoryQuery::After { after, limit }),
            (None, None) => Ok(HistoryQuery::Latest { limit }),
        }
    }
    pub fn limit(&self) -> u32 {
        match *self {
            HistoryQuery::Latest { limit } | HistoryQuery::Before { limit, .. } | HistoryQuery::After { limit, .. } => {
                limit
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    pub messages: Vec<Arc<Message>>,
    pub has_more: bool,
}
