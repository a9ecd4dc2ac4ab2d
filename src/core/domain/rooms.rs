//! Users and rooms: visibility, kinds, roles, topics, retention, webhooks, invitations, bans, members.

use std::sync::Arc;

use super::*;
use crate::core::error::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    Public,
    Private,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Private => "private",
        }
    }
    pub fn parse(s: &str) -> Result<Self, Error> {
        match s {
            "public" => Ok(Visibility::Public),
            "private" => Ok(Visibility::Private),
            _ => Err(Error::BadRequest("visibility must be 'public' or 'private'".into())),
        }
    }
}
/// A group room anyone may find (public) or only members (private); or a one-to-one conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomKind {
    Group,
    Direct,
}

impl RoomKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RoomKind::Group => "group",
            RoomKind::Direct => "direct",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "group" => Some(RoomKind::Group),
            "direct" => Some(RoomKind::Direct),
            _ => None,
        }
    }
}

/// A member's standing in a room. Ordered: `Owner > Admin > Member`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Member,
    Admin,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "member" => Some(Role::Member),
            "admin" => Some(Role::Admin),
            "owner" => Some(Role::Owner),
            _ => None,
        }
    }
    /// A role as given to `set_role`: `admin` or `member` (a room has one owner; ownership is handed
    /// over by a transfer, never by `set_role`).
    pub fn parse_assignable(s: &str) -> Result<Self, Error> {
        match s {
            "admin" => Ok(Role::Admin),
            "member" => Ok(Role::Member),
            _ => Err(Error::BadRequest("role must be 'admin' or 'member'".into())),
        }
    }

    /// May remove others' messages, kick, ban, rename and set the topic.
    pub fn moderates(self) -> bool {
        self >= Role::Admin
    }
}

/// A room topic: at most 256 characters, no control characters other than none at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic(String);

impl Topic {
    pub fn parse(s: &str) -> Result<Self, Error> {
        let t = s.trim();
        if t.chars().count() <= 256 && !t.chars().any(char::is_control) {
            Ok(Topic(t.to_owned()))
        } else {
            Err(Error::BadRequest("topic must be at most 256 characters without control characters".into()))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub display_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
    pub id: RoomId,
    pub name: String,
    pub kind: RoomKind,
    pub visibility: Visibility,
    pub topic: String,
    pub created_by: UserId,
    pub last_seq: Seq,
    pub member_count: i64,
    /// Messages older than this many seconds are purged (`None`: kept forever).
    pub retention_secs: Option<i64>,
}

/// How long a room keeps messages: 1 s to 100 years (`None` when set to keep forever).
pub fn parse_retention(secs: Option<i64>) -> Result<Option<i64>, Error> {
    const MAX: i64 = 100 * 365 * 86_400;
    match secs {
        Some(s) if !(1..=MAX).contains(&s) => {
            Err(Error::BadRequest(format!("retention_secs must be between 1 and {MAX}, or null")))
        }
        other => Ok(other),
    }
}

/// Where a webhook delivers: an `http://` or `https://` URL of at most 2048 bytes with a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl(String);

impl WebhookUrl {
    pub fn parse(s: &str) -> Result<Self, Error> {
        let s = s.trim();
        let bad = || {
            Error::BadRequest("webhook url must be an http:// or https:// URL with a host, at most 2048 bytes".into())
        };
        if s.len() > 2048 || s.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(bad());
        }
        let Some(scheme_end) = s.find("://") else { return Err(bad()) };
        if !matches!(s[..scheme_end].to_ascii_lowercase().as_str(), "http" | "https") {
            return Err(bad());
        }
        let rest = &s[scheme_end + 3..];
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let host = authority.rsplit('@').next().unwrap_or("");
        if host.is_empty() || host.starts_with(':') {
            return Err(bad());
        }
        Ok(WebhookUrl(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A room's outgoing webhook. `secret` signs deliveries (see docs/PROTOCOL.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: i64,
    pub room: RoomId,
    pub url: String,
    pub secret: String,
    pub created_by: UserId,
    pub created_at: Millis,
    /// Messages up to this `seq` have been queued for delivery. Starts at the room's `last_seq` when
    /// registered: a new webhook gets new messages only.
    pub delivered_seq: Seq,
}

/// A webhook to register ([`Webhook`] before the store gives it its id and delivery cursor).
#[derive(Debug, Clone, Copy)]
pub struct NewWebhook<'a> {
    pub room: RoomId,
    pub url: &'a WebhookUrl,
    pub secret: &'a str,
    pub created_by: UserId,
    pub created_at: Millis,
}

impl NewWebhook<'_> {
    /// The webhook as stored, with the `id` and `delivered_seq` the store gave it.
    pub fn stored(&self, id: i64, delivered_seq: Seq) -> Webhook {
        Webhook {
            id,
            room: self.room,
            url: self.url.as_str().to_owned(),
            secret: self.secret.to_owned(),
            created_by: self.created_by,
            created_at: self.created_at,
            delivered_seq,
        }
    }
}

/// One member's view of a room: their role and read position, and what they have not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomView {
    pub room: Room,
    pub role: Role,
    pub last_read: Seq,
    /// Text messages from others after `last_read`.
    pub unread: i64,
    /// Of those, the ones that mention this member.
    pub mentions: i64,
    /// For a direct conversation: the other person.
    pub peer: Option<User>,
    pub last_message: Option<Arc<Message>>,
    /// The member's notification level and mute (see `Chat::room_views` for how they shape the counts).
    pub notify: NotifyLevel,
    pub muted: bool,
}

/// An invitation into a group room, as the invitee sees it (until they accept or decline it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    pub room: Room,
    pub invited_by: User,
    pub at: Millis,
}

/// A ban, as the room's moderators see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    pub user: User,
    pub banned_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user: User,
    pub role: Role,
}
