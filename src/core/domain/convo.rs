//! Issue 14's conversations: reactions and emoji, notification levels, pins, thread summaries, and the
//! events (`ConvoEvent`) that carry them.

use std::sync::Arc;

use super::*;
use crate::core::error::Error;

/// One emoji on a message and who reacted with it (in reaction order); its count is `users.len()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reaction {
    pub emoji: String,
    pub users: Vec<UserId>,
}

/// A reaction: one Unicode extended grapheme cluster, at most [`Emoji::MAX_BYTES`] bytes, not white
/// space or a control character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emoji(String);

impl Emoji {
    pub const MAX_BYTES: usize = 32;
    /// Distinct emoji one message may carry.
    pub const MAX_PER_MESSAGE: usize = 20;

    pub fn parse(s: &str) -> Result<Self, Error> {
        use unicode_segmentation::UnicodeSegmentation as _;
        let ok = !s.is_empty()
            && s.len() <= Self::MAX_BYTES
            && s.graphemes(true).count() == 1
            && !s.chars().any(|c| c.is_whitespace() || c.is_control());
        if ok { Ok(Emoji(s.to_owned())) } else { Err(Error::InvalidEmoji) }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How much of a room a member wants to be told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NotifyLevel {
    #[default]
    All,
    Mentions,
    None,
}

impl NotifyLevel {
    /// The `unread` a member at this level (and mute) is shown: the count for `all` when not muted,
    /// else 0 (mentions are counted whatever the level).
    pub fn unread_shown(self, muted: bool, unread: i64) -> i64 {
        if self == NotifyLevel::All && !muted { unread } else { 0 }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NotifyLevel::All => "all",
            NotifyLevel::Mentions => "mentions",
            NotifyLevel::None => "none",
        }
    }
    pub fn parse(s: &str) -> Result<Self, Error> {
        match s {
            "all" => Ok(NotifyLevel::All),
            "mentions" => Ok(NotifyLevel::Mentions),
            "none" => Ok(NotifyLevel::None),
            _ => Err(Error::BadRequest("notification level must be all, mentions or none".into())),
        }
    }
}

/// A pinned message of a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub message: Arc<Message>,
    pub pinned_by: User,
    pub at: Millis,
}

/// A thread a user follows, as `GET /me/threads` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadSummary {
    pub room: RoomId,
    pub root: Seq,
    pub reply_count: i64,
    pub last_reply_ts: Option<Millis>,
    /// Replies from others after the user's read position in the thread.
    pub unread: i64,
}

/// Live changes that are not new messages (no `seq` of their own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConvoEvent {
    /// A message's reactions changed (to the room).
    Reactions { room: RoomId, seq: Seq, reactions: Vec<Reaction> },
    /// A reply landed in the thread rooted at `seq` (to the room).
    ThreadUpdated { room: RoomId, seq: Seq, reply_count: i64, last_reply_ts: Option<Millis> },
    /// The user's notification settings of a room changed (to that user's connections).
    Notify { room: RoomId, level: NotifyLevel, muted: bool },
}

impl ConvoEvent {
    pub fn room(&self) -> RoomId {
        match self {
            ConvoEvent::Reactions { room, .. }
            | ConvoEvent::ThreadUpdated { room, .. }
            | ConvoEvent::Notify { room, .. } => *room,
        }
    }
}
