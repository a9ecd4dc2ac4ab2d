//! Domain types, parsed once at the boundary.
//!
//! Every value that crosses into the core from a transport is turned into one of these newtypes first;
//! past that point, code can rely on the invariant each type states (a [`Username`] is always valid, a
//! [`MessageBody`] is never empty). Rules are documented for users in `docs/PROTOCOL.md` §1.
//!
//! One file past 600 lines on purpose: these small types refer to each other (a [`Message`] carries
//! [`MessageExtras`] with [`Quote`]s and [`Reaction`]s, events carry messages); a third of it is tests.

use std::fmt;
use std::sync::Arc;

use super::error::Error;

macro_rules! id_type {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub i64);
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A user's numeric id, assigned by the store.
    UserId
);
id_type!(
    /// A room's numeric id, assigned by the store.
    RoomId
);

/// One running Parley process among several sharing a store and a broker; random per start, so a
/// restarted node is a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeId(pub u64);

impl NodeId {
    pub fn generate() -> Self {
        NodeId(rand::random())
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// A message's position in its room: 1, 2, 3… with no gaps, assigned by the store.
pub type Seq = i64;

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

pub fn now_millis() -> Millis {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// A server-side session: what a token is bound to, so that logout can revoke it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionId(pub String);

impl SessionId {
    pub fn generate() -> Self {
        let bytes: [u8; 16] = rand::random();
        SessionId(hex::encode(bytes))
    }
}

fn is_name_char(c: char) -> bool {
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
    /// A system line about `sender` (and `target`), with `body` carrying the detail (a new name…).
    pub fn system(room: RoomId, kind: MessageKind, sender: &User, target: Option<&User>, body: &str) -> Self {
        NewMessage {
            room,
            kind,
            sender: sender.clone(),
            target: target.cloned(),
            body: body.to_owned(),
            client_id: None,
            mentions: Vec::new(),
            ts: now_millis(),
            files: Vec::new(),
            reply_to: None,
            thread: None,
            quote: None,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_the_documented_rules() {
        for ok in ["abc", "Alice", "bob_2", "x-y-z", &"a".repeat(32)] {
            assert!(Username::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["ab", "1abc", "_abc", "al ice", "alïce", "", &"a".repeat(33), "a;drop"] {
            assert!(Username::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Username::parse("AlIcE").unwrap().key(), "alice");
    }

    #[test]
    fn bodies_are_non_blank_and_bounded() {
        assert!(matches!(MessageBody::parse("  \n", 10), Err(Error::EmptyMessage)));
        assert!(matches!(MessageBody::parse("12345678901", 10), Err(Error::MessageTooLarge { .. })));
        assert!(MessageBody::parse("héllo", 10).is_ok());
    }

    #[test]
    fn display_names_are_trimmed_and_printable() {
        assert_eq!(DisplayName::parse("  Al  ").unwrap().as_str(), "Al");
        assert!(DisplayName::parse("   ").is_err());
        assert!(DisplayName::parse("a\u{7}b").is_err());
        assert!(DisplayName::parse(&"é".repeat(64)).is_ok());
        assert!(DisplayName::parse(&"é".repeat(65)).is_err());
        // Impersonation: bidi overrides and isolates, zero-width characters.
        for bad in ["adm\u{202E}nimda", "al\u{200B}ice", "a\u{2066}b\u{2069}", "\u{FEFF}bob", "x\u{200D}y", "\u{200F}r"]
        {
            assert!(matches!(DisplayName::parse(bad), Err(Error::InvalidDisplayName)), "{bad:?}");
        }
        assert!(DisplayName::parse("Zoë 🎉 日本").is_ok());
    }

    #[test]
    fn client_ids_are_printable_ascii_with_space() {
        assert!(ClientMsgId::parse("c 1").is_ok(), "a space is printable ASCII");
        assert!(ClientMsgId::parse("~!x").is_ok());
        for bad in ["", "a\tb", "é", "a\nb", &"x".repeat(65)] {
            assert!(ClientMsgId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn history_queries_are_validated() {
        assert_eq!(HistoryQuery::new(None, None, None).unwrap(), HistoryQuery::Latest { limit: 50 });
        assert!(HistoryQuery::new(Some(1), Some(2), None).is_err());
        assert!(HistoryQuery::new(None, None, Some(0)).is_err());
        assert!(HistoryQuery::new(None, None, Some(201)).is_err());
    }

    #[test]
    fn mentions_are_words_starting_with_at() {
        assert_eq!(mentioned_names("hi @Alice and @bob_2, not me@mail.com; @al @alice"), ["alice", "bob_2"]);
        assert!(mentioned_names("@ @1x").is_empty());
    }

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Owner.moderates() && Role::Admin.moderates() && !Role::Member.moderates());
        assert!(Role::Owner > Role::Admin);
        assert_eq!(Role::parse_assignable("admin").unwrap(), Role::Admin);
        assert!(Role::parse_assignable("owner").is_err(), "a room keeps its one owner");
        for k in ["text", "kick", "role", "topic"] {
            assert_eq!(MessageKind::parse(k).unwrap().as_str(), k);
        }
    }

    #[test]
    fn webhook_urls_are_http_or_https_with_a_host() {
        for ok in ["http://example.com/hook", "http://127.0.0.1:9000", "HTTP://h/x?y=1", "https://hooks.example.com/p"]
        {
            assert!(WebhookUrl::parse(ok).is_ok(), "{ok}");
        }
        for bad in
            ["ftp://x/", "javascript:alert(1)", "http://", "http:///x", "http://a b/", "example.com", "https:///x"]
        {
            assert!(WebhookUrl::parse(bad).is_err(), "{bad}");
        }
        assert!(parse_retention(Some(0)).is_err() && parse_retention(None).unwrap().is_none());
    }

    #[test]
    fn room_refs_are_ids_or_names() {
        assert_eq!(RoomRef::parse("12"), RoomRef::Id(RoomId(12)));
        assert_eq!(RoomRef::parse("general"), RoomRef::Name("general".into()));
        assert_eq!(RoomRef::parse("@Bob"), RoomRef::Direct("Bob".into()));
    }

    #[test]
    fn group_rooms_cannot_take_direct_names() {
        for bad in ["dm-3-4", "DM-10-2", "dm-1-1", "@bob"] {
            assert!(RoomName::parse(bad).is_err(), "{bad}");
        }
        for ok in ["dm", "dm-3", "dm-3-x", "dmx-1-2", "dm-1-2-3"] {
            assert!(RoomName::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn a_reaction_is_one_grapheme_cluster_of_at_most_32_bytes() {
        let family = "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}"; // ZWJ sequence, one cluster
        for ok in ["👍", "👍🏽", "🇫🇷", family, "a", "é", "e\u{301}", "❤️"] {
            assert!(Emoji::parse(ok).is_ok(), "{ok:?}");
        }
        let long_cluster = format!("a{}", "\u{301}".repeat(16)); // one cluster, 33 bytes
        for bad in ["", "ab", "👍👍", " ", "\n", "\u{7}", "🇫🇷🇩🇪", long_cluster.as_str()] {
            assert!(matches!(Emoji::parse(bad), Err(Error::InvalidEmoji)), "{bad:?}");
        }
    }

    #[test]
    fn quotes_take_120_characters_or_a_tombstone() {
        let mut m = Message {
            room: RoomId(1),
            seq: 5,
            kind: MessageKind::Text,
            sender: None,
            target: None,
            body: "é".repeat(200),
            client_id: None,
            mentions: vec![],
            ts: 0,
            edited_at: None,
            deleted: false,
            files: vec![],
            reply_to: None,
            thread: None,
            extras: MessageExtras::default(),
        };
        let q = Quote::of(&m);
        assert_eq!((q.seq, q.excerpt.chars().count(), q.deleted), (5, 120, false));
        m.deleted = true;
        m.body.clear();
        assert_eq!(Quote::of(&m), Quote { seq: 5, sender: None, excerpt: String::new(), deleted: true });
    }

    #[test]
    fn unread_is_shown_only_at_all_and_unmuted() {
        assert_eq!(NotifyLevel::All.unread_shown(false, 7), 7);
        for (level, muted) in [(NotifyLevel::All, true), (NotifyLevel::Mentions, false), (NotifyLevel::None, false)] {
            assert_eq!(level.unread_shown(muted, 7), 0);
        }
        assert_eq!(NotifyLevel::parse("mentions").unwrap(), NotifyLevel::Mentions);
        assert!(NotifyLevel::parse("loud").is_err());
    }
}
