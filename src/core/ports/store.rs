//! The store port: durable state behind one trait, so the core never sees SQL. The adapters in
//! `src/store/` (memory, SQLite, PostgreSQL) implement it; `src/store/mod.rs` re-exports these names.
//!
//! Design choices every backend keeps:
//! - **The store assigns sequence numbers**, inside the transaction that stores the message, from a
//!   per-room counter row. That is what keeps `seq` gap-free and strictly increasing however many
//!   writers there are.
//! - **Appends are batched** ([`Store::append`] takes a slice): the caller (`core::ingest`) gathers
//!   concurrent sends into one transaction, so one disk sync acknowledges many messages.
//! - **Membership is checked inside the append**, so a message from someone who just left is refused
//!   atomically rather than by a racy check beforehand.

use std::sync::Arc;

use async_trait::async_trait;

use crate::core::domain::*;
use crate::core::error::Result;
use crate::core::search::{SearchHits, SearchQuery};

/// A registered user with the password hash, for login only.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub user: User,
    pub password_hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub user: UserId,
    pub expires_at: Millis,
    pub revoked: bool,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates a user (registered at `at`, with password `hash`); `Error::UsernameTaken` when the
    /// case-folded name exists.
    async fn create_user(&self, name: &Username, display: &DisplayName, hash: &str, at: Millis) -> Result<User>;
    async fn credentials(&self, username_key: &str) -> Result<Option<Credentials>>;
    async fn user(&self, id: UserId) -> Result<Option<User>>;
    async fn user_by_name(&self, username_key: &str) -> Result<Option<User>>;
    async fn set_display_name(&self, id: UserId, name: &DisplayName) -> Result<User>;

    /// Records a session begun at `at`.
    async fn create_session(&self, session: &Session, at: Millis) -> Result<()>;
    async fn session(&self, id: &SessionId) -> Result<Option<Session>>;
    /// The session and its user, read together (a connect authenticates with this: one read, not two);
    /// `None` when the session, or its user, does not exist.
    async fn session_user(&self, id: &SessionId) -> Result<Option<(Session, User)>>;
    /// Marks the session revoked; returns whether it was live.
    async fn revoke_session(&self, id: &SessionId) -> Result<bool>;

    /// Creates a group room at `at` with `creator` as its owner; `Error::RoomNameTaken` when the name exists.
    async fn create_room(&self, name: &RoomName, visibility: Visibility, creator: UserId, at: Millis) -> Result<Room>;
    /// The one direct conversation between `a` and `b` (both members), created by the first call for the
    /// pair (at `at`); `true` when this call created it.
    async fn open_direct(&self, a: UserId, b: UserId, at: Millis) -> Result<(Room, bool)>;
    async fn room(&self, id: RoomId) -> Result<Option<Room>>;
    async fn room_by_name(&self, name_key: &str) -> Result<Option<Room>>;
    async fn public_rooms(&self) -> Result<Vec<Room>>;
    async fn user_rooms(&self, user: UserId) -> Result<Vec<Room>>;
    /// `user`'s view of each room they belong to: role, read position, unread and mention counts, the
    /// peer of a direct conversation, and the last message.
    async fn room_views(&self, user: UserId) -> Result<Vec<RoomView>>;
    /// Renames a room; `Error::RoomNameTaken` when the new name exists.
    async fn rename_room(&self, room: RoomId, name: &RoomName) -> Result<Room>;
    async fn set_topic(&self, room: RoomId, topic: &Topic) -> Result<Room>;

    async fn members(&self, room: RoomId) -> Result<Vec<Member>>;
    /// The member's role, or `None` when not a member.
    async fn role(&self, room: RoomId, user: UserId) -> Result<Option<Role>>;
    async fn is_member(&self, room: RoomId, user: UserId) -> Result<bool> {
        Ok(self.role(room, user).await?.is_some())
    }
    /// Adds a member with `role`, using up any invitation; returns false when they already were one
    /// (their role unchanged).
    /// A group room left without members gets its owner back this way: whoever joins it first becomes
    /// its owner, whatever `role` says.
    /// `at` is when they joined.
    async fn add_member(&self, room: RoomId, user: UserId, role: Role, at: Millis) -> Result<bool>;
    /// Removes a member; returns false when they were not one.
    async fn remove_member(&self, room: RoomId, user: UserId) -> Result<bool>;
    async fn set_role(&self, room: RoomId, user: UserId, role: Role) -> Result<bool>;
    /// Invites `user` (made by `by` at `at`); false when they were invited already (the first
    /// invitation stays as it was).
    async fn add_invite(&self, room: RoomId, user: UserId, by: UserId, at: Millis) -> Result<bool>;
    async fn is_invited(&self, room: RoomId, user: UserId) -> Result<bool>;
    /// `user`'s pending invitations, oldest first.
    async fn invites_of(&self, user: UserId) -> Result<Vec<Invite>>;
    /// Drops an invitation (declined); false when there was none.
    async fn remove_invite(&self, room: RoomId, user: UserId) -> Result<bool>;
    /// The room's bans, oldest first.
    async fn bans(&self, room: RoomId) -> Result<Vec<Ban>>;
    /// Makes member `to` the owner and the owner `from` an admin, in one transaction; false (and nothing
    /// changed) unless `from` is the owner and `to` a member.
    async fn transfer_owner(&self, room: RoomId, from: UserId, to: UserId) -> Result<bool>;
    async fn set_visibility(&self, room: RoomId, visibility: Visibility) -> Result<Room>;
    /// The direct conversation between `a` and `b`, if it was opened.
    async fn direct_room(&self, a: UserId, b: UserId) -> Result<Option<Room>>;
    /// Bans `user` at `at` (also removing membership and invitation); returns false when already banned.
    async fn ban(&self, room: RoomId, user: UserId, by: UserId, at: Millis) -> Result<bool>;
    async fn unban(&self, room: RoomId, user: UserId) -> Result<bool>;
    async fn is_banned(&self, room: RoomId, user: UserId) -> Result<bool>;
    /// Moves the member's read position forward to `seq` (never back); the position after.
    async fn mark_read(&self, room: RoomId, user: UserId, seq: Seq) -> Result<Seq>;

    /// Stores a batch of messages in one transaction, in order, assigning each its room's next `seq`.
    /// Text messages are refused (`Appended::NotMember`) unless the sender is a member (and any message
    /// to a room that does not exist is refused the same way, so one bad entry never fails a batch); a
    /// repeated `(room, sender, client_id)` answers `Appended::Duplicate` with the original. The result
    /// has one entry per input, in input order. When this returns, the stored messages are durable.
    /// A message's `files` are marked as shared by it (their `seq` set) in the same transaction.
    async fn append(&self, batch: &[NewMessage]) -> Result<Vec<Appended>>;
    async fn history(&self, room: RoomId, query: HistoryQuery) -> Result<HistoryPage>;
    async fn message(&self, room: RoomId, seq: Seq) -> Result<Option<Arc<Message>>>;
    /// Replaces a message's text and its mentions (the members its new text names) and sets `edited_at`;
    /// `None` when there is no such live text message.
    async fn edit_message(
        &self,
        room: RoomId,
        seq: Seq,
        body: &str,
        mentions: &[UserId],
        at: Millis,
    ) -> Result<Option<Arc<Message>>>;
    /// Erases a message's text, mentions and files, leaving a tombstone in its place; `None` when absent.
    async fn delete_message(&self, room: RoomId, seq: Seq) -> Result<Option<Arc<Message>>>;

    /// Full-text search over the live text messages of the rooms `user` is a member of *now* (the
    /// membership is checked in the same query, so a left or banned user finds nothing there), with
    /// `query`'s filters: of the newest `core::search::WINDOW` matches, best match first, then newest;
    /// `query.limit` hits from `query.offset`. The
    /// index is kept in the transaction that writes the message (append, edit, delete, purge), so what a
    /// write made durable is what search sees.
    async fn search(&self, user: UserId, query: &SearchQuery) -> Result<SearchHits>;

    /// Sets (or, with `None`, clears) how long a room keeps its messages.
    async fn set_retention(&self, room: RoomId, secs: Option<i64>) -> Result<Room>;
    /// Every room with a retention period, and that period in seconds.
    async fn retention_rooms(&self) -> Result<Vec<(RoomId, i64)>>;
    /// Deletes the room's messages stored before `cutoff` (their `ts`), and their files; how many. Later messages keep
    /// their `seq`, and the room's `last_seq` is unchanged, so new messages keep counting from it.
    /// History and resume then simply start at the oldest message kept.
    async fn purge_before(&self, room: RoomId, cutoff: Millis) -> Result<u64>;

    /// Records an uploaded file (not yet shared by a message: `seq` is `None`).
    async fn create_file(&self, file: &FileMeta) -> Result<()>;
    async fn file(&self, id: &str) -> Result<Option<FileMeta>>;
    /// Bytes of the files `user` uploaded that still exist (their storage quota).
    async fn uploaded_bytes(&self, user: UserId) -> Result<i64>;
    /// Whether any file still refers to the blob.
    async fn blob_in_use(&self, blob: &str) -> Result<bool>;
    /// Deletes files uploaded before `before` that no message shares; how many.
    async fn drop_unsent_files(&self, before: Millis) -> Result<u64>;

    /// Registers an outgoing webhook for a room.
    async fn create_webhook(&self, hook: &NewWebhook<'_>) -> Result<Webhook>;
    /// A room's webhooks, oldest first.
    async fn webhooks(&self, room: RoomId) -> Result<Vec<Webhook>>;
    /// The webhooks of any of `rooms` (one query per ingest batch).
    async fn webhooks_for(&self, rooms: &[RoomId]) -> Result<Vec<Webhook>>;
    async fn webhook(&self, id: i64) -> Result<Option<Webhook>>;
    /// Every webhook (the dispatcher's catch-up after a restart).
    async fn all_webhooks(&self) -> Result<Vec<Webhook>>;
    /// Moves a webhook's `delivered_seq` from `from` to `to`; false when it was no longer `from`
    /// (another node moved it) or the webhook is gone.
    async fn advance_webhook(&self, id: i64, from: Seq, to: Seq) -> Result<bool>;
    /// Removes a room's webhook; false when it had no such webhook.
    async fn delete_webhook(&self, room: RoomId, id: i64) -> Result<bool>;

    // ---- conversations (issue 14) --------------------------------------------------------------

    /// The live replies of `room` whose thread root is `root`, paged like history (ascending `seq`).
    async fn thread(&self, room: RoomId, root: Seq, query: HistoryQuery) -> Result<HistoryPage>;
    /// For each of `roots` that has live (not deleted) replies: its root, how many, and the newest one's
    /// time.
    async fn thread_stats(&self, room: RoomId, roots: &[Seq]) -> Result<Vec<(Seq, i64, Millis)>>;
    /// The messages of `room` with these `seq`s (absent ones left out), in any order.
    async fn messages_at(&self, room: RoomId, seqs: &[Seq]) -> Result<Vec<Arc<Message>>> {
        let mut out = Vec::with_capacity(seqs.len());
        for s in seqs {
            if let Some(m) = self.message(room, *s).await? {
                out.push(m);
            }
        }
        Ok(out)
    }
    /// The threads `user` follows in rooms they belong to (they wrote the root or a reply, or were
    /// mentioned in one), each with its live replies and those from others after the user's position.
    async fn followed_threads(&self, user: UserId) -> Result<Vec<ThreadSummary>>;
    /// Moves `user`'s read position in the thread forward to `seq` (never back); the position after.
    async fn mark_thread_read(&self, room: RoomId, root: Seq, user: UserId, seq: Seq) -> Result<Seq>;

    /// Adds `user`'s reaction (idempotent: false when it was there). Refused with
    /// `Error::TooManyReactions` when it would be the message's 21st distinct emoji; the check and the
    /// insert are one transaction, serialised per message.
    async fn add_reaction(&self, room: RoomId, seq: Seq, user: UserId, emoji: &Emoji, at: Millis) -> Result<bool>;
    /// Removes it; false when it was not there. Both record `at` as the message's last reaction change.
    async fn remove_reaction(&self, room: RoomId, seq: Seq, user: UserId, emoji: &Emoji, at: Millis) -> Result<bool>;
    /// The messages of `room` up to `through` whose reactions changed after `since`, with their current
    /// reactions (an empty list when the last one was taken back), ascending, at most `limit` (the newest).
    async fn reactions_changed(
        &self,
        room: RoomId,
        through: Seq,
        since: Millis,
        limit: u32,
    ) -> Result<Vec<(Seq, Vec<Reaction>)>>;
    /// The reactions of each of `seqs` that has any, emoji in first-reaction order.
    async fn reactions(&self, room: RoomId, seqs: &[Seq]) -> Result<Vec<(Seq, Vec<Reaction>)>>;

    /// Pins a message; false when it was pinned already.
    async fn pin(&self, room: RoomId, seq: Seq, by: UserId, at: Millis) -> Result<bool>;
    /// Unpins it; false when it was not pinned.
    async fn unpin(&self, room: RoomId, seq: Seq) -> Result<bool>;
    /// The room's pins, newest first: (seq, pinned by, at).
    async fn pins(&self, room: RoomId) -> Result<Vec<(Seq, User, Millis)>>;

    /// Changes a member's notification level and/or mute; the settings after, or `None` when `user`
    /// is not a member.
    async fn set_notify(
        &self,
        room: RoomId,
        user: UserId,
        level: Option<NotifyLevel>,
        muted: Option<bool>,
    ) -> Result<Option<(NotifyLevel, bool)>>;

    /// Cheap round trip, for readiness checks.
    async fn ping(&self) -> Result<()>;
    /// A tiny durable write (nothing visible changes), so the ingest writer can tell when a store that
    /// failed a write (disk full, …) takes writes again.
    async fn probe_write(&self) -> Result<()> {
        self.ping().await
    }
    /// Flushes and closes; called once at shutdown.
    async fn close(&self);
}

pub type DynStore = Arc<dyn Store>;
