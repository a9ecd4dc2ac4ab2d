//! The chat service: every command a user can give, whatever transport it came by.
//!
//! Transports authenticate a request into an [`Identity`], parse its arguments into domain types and
//! call one method here; they never touch the store or the broker themselves. Rules that must hold on
//! every transport (who may see a private room, what a message may contain) live here, once.
//!
//! By concern: this file holds accounts, the access rules every command goes through (`visible_room`
//! and its siblings, room references), messages, connections and the cluster resync; `rooms.rs` the
//! rooms and their settings, `moderation.rs` moderation and ownership, `invites.rs` invitations;
//! issue 14's conversations: `threads.rs` (replies, threads, the quote/summary/reactions every read
//! carries), `reactions.rs`, `pins.rs`, `notify.rs` (notification levels and mute). This file stays
//! past 600 lines because half of it is the send path and its access rules, which read best together.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::info;

use super::domain::*;
use super::error::{Error, Limit, Result};
use super::hub::{CloseReason, Hub, Registration};
use super::ingest::{Ingest, Queued, WriterHealth};
use super::limits::{Admission, Buckets, Connections, LoginThrottle, Rate, Transport};
use super::ports::broker::{BrokerEvent, DynBroker};
use super::ports::clock::{DynClock, SystemClock};
use super::ports::credentials::{PasswordHashing, TokenIssuer};
use super::ports::store::{DynStore, Session};
use super::typing::TypingTracker;

pub mod files;
mod invites;
mod moderation;
mod notify;
mod pins;
mod reactions;
mod rooms;
mod search;
mod threads;

pub use search::{SearchHit, SearchResults};

/// Limits the core enforces.
#[derive(Debug, Clone)]
pub struct ChatLimits {
    pub max_message_bytes: usize,
    /// Messages per user (every transport shares one bucket per user).
    pub messages: Rate,
    /// Login and registration attempts per client address.
    pub auth: Rate,
    /// Live connections (WebSocket, SSE, TCP) per user and in total.
    pub connections_per_user: usize,
    pub connections_total: usize,
}

/// Who is asking: a user and the session their token is bound to.
#[derive(Debug, Clone)]
pub struct Identity {
    pub user: User,
    pub session: SessionId,
    /// When the session expires (live connections close then).
    pub expires_at: Millis,
}

/// The answer to a send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    pub room: RoomId,
    pub seq: Seq,
    pub ts: Millis,
    pub client_id: Option<String>,
    pub duplicate: bool,
}

/// A message queued for storage, not yet acknowledged.
pub struct PendingSend {
    room: RoomId,
    /// For a reply: its thread's root, whose summary is announced once the reply is stored.
    thread: Option<Seq>,
    waiting: Queued,
    submitted: Instant,
}

pub struct LoginOk {
    pub token: String,
    pub expires_at: Millis,
    pub user: User,
}

pub struct Chat {
    store: DynStore,
    broker: DynBroker,
    hub: Arc<Hub>,
    ingest: Ingest,
    passwords: Arc<dyn PasswordHashing>,
    tokens: Arc<dyn TokenIssuer>,
    throttle: LoginThrottle,
    typing: TypingTracker,
    message_rate: Buckets<UserId>,
    auth_rate: Buckets<IpAddr>,
    connections: Arc<Connections>,
    /// Metric handles, resolved once (the recorder is installed before a node starts).
    received: metrics::Counter,
    ack_latency: metrics::Histogram,
    pub limits: ChatLimits,
    /// Where "now" comes from for message times, sessions and edits (`core::ports::clock`).
    clock: DynClock,
}

/// What [`Chat`] checks credentials with (the adapters of `core::ports::credentials`, and the throttle).
pub struct AuthServices {
    pub passwords: Arc<dyn PasswordHashing>,
    pub tokens: Arc<dyn TokenIssuer>,
    pub throttle: LoginThrottle,
}

impl Chat {
    pub fn new(
        store: DynStore,
        broker: DynBroker,
        hub: Arc<Hub>,
        ingest: Ingest,
        auth: AuthServices,
        limits: ChatLimits,
    ) -> Self {
        let AuthServices { passwords, tokens, throttle } = auth;
        Chat {
            store,
            broker,
            hub,
            ingest,
            passwords,
            tokens,
            throttle,
            typing: TypingTracker::default(),
            message_rate: Buckets::new(limits.messages, Limit::Messages),
            auth_rate: Buckets::new(limits.auth, Limit::Auth),
            connections: Connections::new(limits.connections_per_user, limits.connections_total),
            received: metrics::counter!("parley_messages_received_total"),
            ack_latency: metrics::histogram!("parley_ack_latency_seconds"),
            limits,
            clock: Arc::new(SystemClock),
        }
    }

    /// The same service reading "now" from `clock` (tests move a `ManualClock` instead of waiting).
    pub fn with_clock(mut self, clock: DynClock) -> Self {
        self.clock = clock;
        self
    }

    /// Now, by this service's clock.
    pub fn now(&self) -> Millis {
        self.clock.now_millis()
    }

    /// Counts a login or registration attempt from `peer`; refused past the per-address rate. Transports
    /// call it before [`Chat::login`] / [`Chat::register`] (the core does not know addresses otherwise).
    pub fn auth_attempt(&self, peer: IpAddr) -> Result<()> {
        self.auth_rate.take(address_key(peer), Instant::now())
    }

    /// A place for a new live connection of `who`, under the per-user and total caps. Hold it for the
    /// connection's life.
    pub fn admit(&self, who: &Identity, transport: Transport) -> Result<Admission> {
        self.connections.admit(who.user.id, transport)
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    pub fn store(&self) -> &DynStore {
        &self.store
    }

    pub fn broker(&self) -> &DynBroker {
        &self.broker
    }

    /// Whether the message writer can take messages now (`/readyz`).
    pub fn writer_health(&self) -> WriterHealth {
        self.ingest.health()
    }

    // ---- accounts ------------------------------------------------------------------------------

    pub async fn register(&self, username: Username, password: Password, display: Option<DisplayName>) -> Result<User> {
        let display = match display {
            Some(d) => d,
            None => DisplayName::parse(username.as_str())?,
        };
        // Cheap early answer; the unique index is what really guarantees it.
        if self.store.user_by_name(&username.key()).await?.is_some() {
            return Err(Error::UsernameTaken);
        }
        let hash = self.passwords.hash(password.expose().to_owned()).await?;
        let user = self.store.create_user(&username, &display, &hash).await?;
        info!(user = user.id.0, username = %user.username, "registered");
        Ok(user)
    }

    pub async fn login(&self, username: &str, password: &str) -> Result<LoginOk> {
        let key = username.to_ascii_lowercase();
        let now = Instant::now();
        self.throttle.check(&key, now)?;
        let creds = if Username::parse(username).is_ok() { self.store.credentials(&key).await? } else { None };
        let (user, hash) = match creds {
            Some(c) => (Some(c.user), Some(c.password_hash)),
            None => (None, None),
        };
        if !self.passwords.verify(password.to_owned(), hash).await? {
            self.throttle.failed(&key, now);
            return Err(Error::InvalidCredentials);
        }
        let user = user.ok_or(Error::InvalidCredentials)?;
        self.throttle.succeeded(&key);
        let session = SessionId::generate();
        let (token, expires_at) = self.tokens.issue(user.id, &session, self.now())?;
        self.store.create_session(&Session { id: session, user: user.id, expires_at, revoked: false }).await?;
        Ok(LoginOk { token, expires_at, user })
    }

    /// Checks a token and its session; the identity it names.
    pub async fn authenticate(&self, token: &str) -> Result<Identity> {
        let (user_id, session) = self.tokens.check(token)?;
        let s = self.store.session(&session).await?.ok_or(Error::Unauthorized)?;
        if s.revoked || s.user != user_id || s.expires_at <= self.now() {
            return Err(Error::Unauthorized);
        }
        let user = self.store.user(user_id).await?.ok_or(Error::Unauthorized)?;
        Ok(Identity { user, session, expires_at: s.expires_at })
    }

    /// Ends the session; every connection made with it closes.
    pub async fn logout(&self, who: &Identity) -> Result<()> {
        self.store.revoke_session(&who.session).await?;
        self.broker.publish(BrokerEvent::SessionEnded(who.session.clone())).await
    }

    pub async fn set_display_name(&self, who: &Identity, name: DisplayName) -> Result<User> {
        let user = self.store.set_display_name(who.user.id, &name).await?;
        self.broker.publish(BrokerEvent::UserUpdated(user.clone())).await?;
        Ok(user)
    }

    // ---- rooms ---------------------------------------------------------------------------------

    /// The room `r` names, before any access check. A direct conversation is named by its peer
    /// (`@username`, from `who`'s side); a name of the direct form (`dm-<id>-<id>`) never resolves, so a
    /// group room that took one before such names were refused cannot pass for a conversation.
    async fn find_room(&self, who: &Identity, r: &RoomRef) -> Result<Room> {
        match r {
            RoomRef::Id(id) => self.store.room(*id).await?,
            RoomRef::Name(n) if is_direct_name(n) => None,
            RoomRef::Name(n) => self.store.room_by_name(&n.to_ascii_lowercase()).await?,
            RoomRef::Direct(peer) => match self.store.user_by_name(&peer.to_ascii_lowercase()).await? {
                Some(p) if p.id != who.user.id => self.store.direct_room(who.user.id, p.id).await?,
                _ => None,
            },
        }
        .ok_or(Error::RoomNotFound)
    }

    /// The room `r` names and `who`'s role in it, if `who` may know it exists. A private room or a
    /// direct conversation is visible only to its members (and a private room to invitees); to anyone
    /// else it answers `RoomNotFound`, exactly as if there were no such room. A banned user is told so
    /// by a public room and sees nothing of a private one.
    pub async fn visible_room(&self, who: &Identity, r: &RoomRef) -> Result<(Room, Option<Role>)> {
        let room = self.find_room(who, r).await?;
        let role = self.store.role(room.id, who.user.id).await?;
        if role.is_some() {
            return Ok((room, role));
        }
        let hidden = room.kind == RoomKind::Direct
            || (room.visibility == Visibility::Private && !self.store.is_invited(room.id, who.user.id).await?);
        if hidden {
            return Err(Error::RoomNotFound);
        }
        if self.store.is_banned(room.id, who.user.id).await? {
            return Err(if room.visibility == Visibility::Private { Error::RoomNotFound } else { Error::Banned });
        }
        Ok((room, None))
    }

    /// Like [`Chat::visible_room`], for members only.
    pub(crate) async fn member_room(&self, who: &Identity, r: &RoomRef) -> Result<(Room, Role)> {
        match self.visible_room(who, r).await? {
            (room, Some(role)) => Ok((room, role)),
            (_, None) => Err(Error::NotAMember),
        }
    }

    /// A group room in which `who` moderates (owner or admin).
    async fn moderated_room(&self, who: &Identity, r: &RoomRef) -> Result<(Room, Role)> {
        let (room, role) = self.member_room(who, r).await?;
        group_only(&room)?;
        if !role.moderates() {
            return Err(Error::Forbidden("only the room's owner and admins may do that"));
        }
        Ok((room, role))
    }

    /// A group room `who` owns (for what only the owner may do).
    async fn owned_room(&self, who: &Identity, r: &RoomRef) -> Result<(Room, Role)> {
        let (room, role) = self.member_room(who, r).await?;
        group_only(&room)?;
        if role != Role::Owner {
            return Err(Error::Forbidden("only the room's owner may do that"));
        }
        Ok((room, role))
    }

    async fn user_named(&self, username: &str) -> Result<User> {
        self.store.user_by_name(&username.to_ascii_lowercase()).await?.ok_or(Error::UserNotFound)
    }

    async fn system(
        &self,
        room: &Room,
        who: &Identity,
        kind: MessageKind,
        target: Option<&User>,
        body: &str,
    ) -> Result<()> {
        self.ingest
            .append(NewMessage { ts: self.now(), ..NewMessage::system(room.id, kind, &who.user, target, body) })
            .await
            .map(|_| ())
    }

    // ---- messages ------------------------------------------------------------------------------

    pub async fn history(&self, who: &Identity, r: &RoomRef, q: HistoryQuery) -> Result<(Room, HistoryPage)> {
        let (room, _) = self.visible_room(who, r).await?;
        let mut page = self.store.history(room.id, q).await?;
        self.decorate(room.id, &mut page.messages).await?;
        Ok((room, page))
    }

    /// Stores a message and answers once it is durable. A repeated `client_id` answers the first ack.
    pub async fn send(
        &self,
        who: &Identity,
        r: &RoomRef,
        body: MessageBody,
        client_id: Option<ClientMsgId>,
    ) -> Result<Ack> {
        self.send_reply(who, r, body, client_id, None).await
    }

    /// [`Chat::send`], as a reply to message `reply_to` of the same room when given.
    pub async fn send_reply(
        &self,
        who: &Identity,
        r: &RoomRef,
        body: MessageBody,
        client_id: Option<ClientMsgId>,
        reply_to: Option<Seq>,
    ) -> Result<Ack> {
        let pending = self.submit_reply(who, r, body, client_id, reply_to).await?;
        self.finish_send(who, pending).await
    }

    /// The first half of [`Chat::send`]: queues the message for storage. Messages one connection
    /// submits are stored in submission order, so a transport that submits in the order it reads and
    /// awaits the acks concurrently keeps each sender's order without waiting a round trip per message.
    pub async fn submit(
        &self,
        who: &Identity,
        r: &RoomRef,
        body: MessageBody,
        client_id: Option<ClientMsgId>,
    ) -> Result<PendingSend> {
        self.submit_reply(who, r, body, client_id, None).await
    }

    /// [`Chat::submit`], as a reply to message `reply_to` of the same room when given.
    pub async fn submit_reply(
        &self,
        who: &Identity,
        r: &RoomRef,
        body: MessageBody,
        client_id: Option<ClientMsgId>,
        reply_to: Option<Seq>,
    ) -> Result<PendingSend> {
        self.submit_inner(who, r, body, client_id, reply_to, Vec::new()).await
    }

    async fn submit_inner(
        &self,
        who: &Identity,
        r: &RoomRef,
        body: MessageBody,
        client_id: Option<ClientMsgId>,
        reply_to: Option<Seq>,
        files: Vec<FileMeta>,
    ) -> Result<PendingSend> {
        // One bucket per user, whatever the transport; checked before any work is done.
        let submitted = Instant::now();
        self.message_rate.take(who.user.id, submitted)?;
        // Every send has an outcome within the send timeout, store lookups before queueing included.
        let deadline = tokio::time::Instant::from_std(submitted) + self.ingest.send_timeout();
        let (room, parent, mentions) = tokio::time::timeout_at(deadline, async {
            let (room, parent) = match (r, reply_to) {
                (RoomRef::Id(id), None) => (*id, None),
                (_, None) => (self.visible_room(who, r).await?.0.id, None),
                // A reply checks access first, so the parent's existence tells an outsider nothing.
                (_, Some(seq)) => {
                    let (room, _) = self.member_room(who, r).await?;
                    (room.id, Some(self.reply_parent(room.id, seq).await?))
                }
            };
            let mentions = self.resolve_mentions(room, who, body.as_str()).await?;
            Ok::<_, Error>((room, parent, mentions))
        })
        .await
        .map_err(|_| Error::Unavailable)??;
        self.typing.stop(room, who.user.id);
        let msg = NewMessage {
            room,
            kind: MessageKind::Text,
            sender: who.user.clone(),
            target: None,
            body: body.as_str().to_owned(),
            client_id,
            mentions,
            ts: self.now(),
            files,
            reply_to: parent.as_ref().map(|p| p.seq),
            thread: parent.as_ref().map(|p| p.thread.unwrap_or(p.seq)),
            quote: parent.as_deref().map(Quote::of),
        };
        let thread = msg.thread;
        let waiting = self.ingest.enqueue_until(msg, deadline).await?;
        self.received.increment(1);
        Ok(PendingSend { room, thread, waiting, submitted })
    }

    /// Members of `room` named by `@username` in `body`. Costs a lookup only when there is an `@`.
    /// `@room` from the room's owner or an admin names every member but the sender; from anyone else it
    /// is an ordinary word (or names a member called `room`).
    async fn resolve_mentions(&self, room: RoomId, who: &Identity, body: &str) -> Result<Vec<UserId>> {
        let names = mentioned_names(body);
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let members = self.store.members(room).await?;
        let everyone = names.iter().any(|n| n == ROOM_MENTION)
            && members.iter().any(|m| m.user.id == who.user.id && m.role.moderates());
        Ok(members
            .iter()
            .filter(|m| {
                if everyone { m.user.id != who.user.id } else { names.contains(&m.user.username.to_ascii_lowercase()) }
            })
            .map(|m| m.user.id)
            .collect())
    }

    /// The second half of [`Chat::send`]: waits until the message is durable.
    pub async fn finish_send(&self, who: &Identity, pending: PendingSend) -> Result<Ack> {
        let (m, duplicate) = match pending.waiting.wait().await? {
            Appended::Stored(m) if pending.thread.is_some() => {
                self.thread_grew(m.room, m.thread.unwrap_or(m.seq)).await;
                (m, false)
            }
            Appended::Stored(m) => (m, false),
            Appended::Duplicate(m) => (m, true),
            Appended::NotMember => {
                // Refused: say why without revealing a private room to an outsider.
                self.visible_room(who, &RoomRef::Id(pending.room)).await?;
                return Err(Error::NotAMember);
            }
        };
        self.ack_latency.record(pending.submitted.elapsed().as_secs_f64());
        Ok(Ack { room: m.room, seq: m.seq, ts: m.ts, client_id: m.client_id.clone(), duplicate })
    }

    /// Replaces the text of one of `who`'s own messages.
    pub async fn edit(&self, who: &Identity, r: &RoomRef, seq: Seq, body: MessageBody) -> Result<Arc<Message>> {
        let (room, _) = self.member_room(who, r).await?;
        let msg = self.store.message(room.id, seq).await?.ok_or(Error::MessageNotFound)?;
        if msg.kind != MessageKind::Text || msg.deleted {
            return Err(Error::MessageNotFound);
        }
        if msg.sender.as_ref().map(|u| u.id) != Some(who.user.id) {
            return Err(Error::Forbidden("you can only edit your own messages"));
        }
        // The new text's mentions replace the old ones (and with them the members' mention counts).
        let mentions = self.resolve_mentions(room.id, who, body.as_str()).await?;
        let m = self
            .store
            .edit_message(room.id, seq, body.as_str(), &mentions, self.now())
            .await?
            .ok_or(Error::MessageNotFound)?;
        let m = self.decorated(m).await?;
        self.broker.publish(BrokerEvent::Updated(m.clone())).await?;
        Ok(m)
    }

    /// Deletes a message: the author may, and so may the room's owner and admins.
    pub async fn delete(&self, who: &Identity, r: &RoomRef, seq: Seq) -> Result<Arc<Message>> {
        let (room, role) = self.member_room(who, r).await?;
        let msg = self.store.message(room.id, seq).await?.ok_or(Error::MessageNotFound)?;
        if msg.kind != MessageKind::Text || msg.deleted {
            return Err(Error::MessageNotFound);
        }
        let own = msg.sender.as_ref().map(|u| u.id) == Some(who.user.id);
        if !(own || (role.moderates() && room.kind == RoomKind::Group)) {
            return Err(Error::Forbidden("you can only delete your own messages"));
        }
        let m = self.store.delete_message(room.id, seq).await?.ok_or(Error::MessageNotFound)?;
        let m = self.decorated(m).await?;
        self.broker.publish(BrokerEvent::Updated(m.clone())).await?;
        if let Some(root) = m.thread {
            // One reply fewer.
            self.thread_grew(room.id, root).await;
        }
        Ok(m)
    }

    /// Moves `who`'s read position in a room forward; synced to their other devices.
    pub async fn mark_read(&self, who: &Identity, r: &RoomRef, seq: Seq) -> Result<(RoomId, Seq)> {
        let (room, _) = self.member_room(who, r).await?;
        let seq = self.store.mark_read(room.id, who.user.id, seq).await?;
        self.broker.publish(BrokerEvent::Read { user: who.user.id, room: room.id, seq }).await?;
        Ok((room.id, seq))
    }

    /// `who` is typing in a room: forwarded to the other members, at most once per interval. Access is
    /// checked first, every time: a refused call records nothing, and a private room answers a
    /// non-member exactly as a room that does not exist, however often it is asked.
    pub async fn typing(&self, who: &Identity, r: &RoomRef) -> Result<()> {
        let (room, _) = self.member_room(who, r).await?;
        if !self.typing.accept(room.id, who.user.id) {
            return Ok(());
        }
        self.broker.publish(BrokerEvent::Typing { room: room.id, user: who.user.clone() }).await
    }

    /// Who is typing in a room now.
    pub async fn typing_in(&self, who: &Identity, r: &RoomRef) -> Result<Vec<UserId>> {
        let (room, _) = self.member_room(who, r).await?;
        Ok(self.typing.typing_in(room.id))
    }

    /// Messages of `room` after `after`, in pages, for a connection filling a gap or resuming. `who`
    /// must still be able to see the room.
    pub async fn messages_after(&self, who: &Identity, room: RoomId, after: Seq, limit: u32) -> Result<HistoryPage> {
        let (room, _) = self.visible_room(who, &RoomRef::Id(room)).await?;
        let mut page = self.store.history(room.id, HistoryQuery::After { after, limit }).await?;
        self.decorate(room.id, &mut page.messages).await?;
        Ok(page)
    }

    // ---- connections ---------------------------------------------------------------------------

    /// Registers a live connection following all of `who`'s rooms; the rooms are returned for the
    /// transport's greeting.
    pub async fn connect(&self, who: &Identity) -> Result<(Registration, Vec<RoomView>)> {
        let reg = self.hub.register(&who.user, who.session.clone());
        let rooms = self.store.user_rooms(who.user.id).await?;
        self.hub.follow(reg.id, &rooms);
        // Read again after following: everything at or below these `last_seq`s is in the store, and
        // everything above will be delivered live (see `core::cursor`).
        let rooms = self.store.room_views(who.user.id).await?;
        self.hub.announce_online(reg.id);
        Ok((reg, rooms))
    }

    // ---- several nodes -------------------------------------------------------------------------

    /// Brings this node's live connections up to date from the store, after the broker may have lost
    /// events (it reconnected): sessions ended, memberships changed and messages stored meanwhile. For
    /// messages it is enough to hand each room's latest one to the hub: a connection that is behind sees
    /// a gap and fills it from the store (`core::cursor`).
    pub async fn resync(&self) -> Result<()> {
        use super::ports::broker::BrokerSink as _;
        let started = Instant::now();
        for session in self.hub.sessions() {
            let live = self.store.session(&session).await?.is_some_and(|s| !s.revoked && s.expires_at > self.now());
            if !live {
                self.hub.deliver(BrokerEvent::SessionEnded(session));
            }
        }
        for (user, following) in self.hub.local_memberships() {
            self.resync_memberships(user, following).await?;
        }
        let followed = self.hub.followed_rooms();
        for (room, delivered) in &followed {
            self.resync_room(*room, *delivered).await?;
        }
        info!(rooms = followed.len(), took_ms = started.elapsed().as_millis() as u64, "resynchronised from the store");
        Ok(())
    }

    /// The broker has just started routing `rooms` and `users` to this node: whatever was published for
    /// them before is read from the store (latest message per room, memberships per user), as
    /// [`Chat::resync`] does for everything.
    pub async fn catch_up(&self, rooms: &[RoomId], users: &[UserId]) -> Result<()> {
        for user in users {
            if let Some(following) = self.hub.rooms_of(*user) {
                self.resync_memberships(*user, following).await?;
            }
        }
        for room in rooms {
            if let Some(delivered) = self.hub.delivered(*room) {
                self.resync_room(*room, delivered).await?;
            }
        }
        Ok(())
    }

    /// Joins and leaves of `user` that this node's connections of them missed.
    async fn resync_memberships(&self, user: UserId, following: std::collections::HashSet<RoomId>) -> Result<()> {
        use super::ports::broker::BrokerSink as _;
        let rooms = self.store.user_rooms(user).await?;
        for room in rooms.iter().filter(|r| !following.contains(&r.id)) {
            self.hub.deliver(BrokerEvent::Joined { room: room.clone(), user });
        }
        let member_of: std::collections::HashSet<RoomId> = rooms.iter().map(|r| r.id).collect();
        for gone in following.difference(&member_of) {
            if let Some(room) = self.store.room(*gone).await? {
                self.hub.deliver(BrokerEvent::Left { room, user });
            }
        }
        Ok(())
    }

    /// Hands `room`'s latest message to the hub when it is past what was `delivered`: a connection
    /// behind it sees the gap and fills it from the store.
    async fn resync_room(&self, room: RoomId, delivered: Seq) -> Result<()> {
        use super::ports::broker::BrokerSink as _;
        let Some(r) = self.store.room(room).await? else { return Ok(()) };
        if r.last_seq > delivered
            && let Some(m) = self.store.message(room, r.last_seq).await?
        {
            self.hub.deliver(BrokerEvent::Message(m));
        }
        Ok(())
    }

    /// This node's part in cluster presence, until `stop`: publishes its users' presence changes as they
    /// happen (and snapshots other nodes ask for), a compact heartbeat every third of `ttl`, and forgets
    /// nodes not heard from for `ttl`.
    pub async fn run_presence(self: Arc<Self>, ttl: Duration, stop: tokio_util::sync::CancellationToken) {
        let mut changes = self.hub.presence_changes(4096);
        let mut beat = tokio::time::interval(ttl / 3);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let event = tokio::select! {
                _ = stop.cancelled() => return,
                Some(change) = changes.recv() => change,
                _ = beat.tick() => {
                    let gone = self.hub.expire_nodes(ttl);
                    if gone > 0 {
                        info!(nodes = gone, "nodes stopped sending heartbeats; their users are offline");
                    }
                    // Changes made before this beat go out before it, so the beat's digest matches
                    // what the others have applied when they read it.
                    while let Ok(change) = changes.try_recv() {
                        let _ = self.broker.publish(change).await;
                    }
                    self.hub.beat()
                }
            };
            // The broker queues and retries; its failures are logged there.
            let _ = self.broker.publish(event).await;
        }
    }

    /// Resynchronises (see [`Chat::resync`]) each time `reconnects` changes, and catches up (see
    /// [`Chat::catch_up`]) what the broker starts routing here, until `stop`.
    pub async fn run_resync(
        self: Arc<Self>,
        mut reconnects: tokio::sync::watch::Receiver<u64>,
        catch_up: Option<Arc<super::ports::broker::CatchUp>>,
        stop: tokio_util::sync::CancellationToken,
    ) {
        let next_catch_up = async |c: &Option<Arc<super::ports::broker::CatchUp>>| match c {
            Some(c) => c.next().await,
            None => std::future::pending().await,
        };
        loop {
            let result = tokio::select! {
                _ = stop.cancelled() => return,
                r = reconnects.changed() => {
                    if r.is_err() { return }
                    self.resync().await
                }
                (rooms, users) = next_catch_up(&catch_up) => self.catch_up(&rooms, &users).await,
            };
            if let Err(e) = result {
                tracing::warn!(error = format!("{:#}", anyhow::Error::new(e)), "resynchronising from the store failed");
            }
        }
    }

    /// Closes every connection and stops taking messages: the first step of shutdown. Messages queued
    /// before this are still stored (see `Ingest::close`).
    pub fn close(&self) {
        self.hub.close_all(CloseReason::ShuttingDown);
        self.ingest.close();
    }

    pub fn token_ttl(&self) -> Duration {
        self.tokens.ttl()
    }
}

/// The key an address is limited under: IPv4 as is, IPv6 by its /64 (one host usually holds a whole
/// /64, so single addresses would be free to rotate).
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

fn group_only(room: &Room) -> Result<()> {
    match room.kind {
        RoomKind::Group => Ok(()),
        RoomKind::Direct => Err(Error::Forbidden("not possible in a direct conversation")),
    }
}

/// Test support shared by the core's unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::core::ports::broker::BrokerSink;
    use crate::testing::{LocalBroker, Passwords, Tokens};

    /// A chat service over `store` with an in-process broker and small limits, for unit tests.
    pub(crate) fn chat(store: DynStore) -> Chat {
        let broker: DynBroker = Arc::new(LocalBroker::new());
        let hub = Hub::new(64, NodeId(1));
        broker.attach(hub.clone() as Arc<dyn BrokerSink>);
        let (ingest, _writer) = Ingest::start(store.clone(), broker.clone(), 16, 16);
        let auth = AuthServices {
            passwords: Arc::new(Passwords::new(1024, 1).unwrap()),
            tokens: Arc::new(Tokens::new(b"0123456789abcdef0123456789abcdef", Duration::from_secs(60))),
            throttle: LoginThrottle::new(5),
        };
        let limits = ChatLimits {
            max_message_bytes: 4096,
            messages: Rate { per_sec: 100.0, burst: 100.0 },
            auth: Rate { per_sec: 1.0, burst: 10.0 },
            connections_per_user: 8,
            connections_total: 64,
        };
        Chat::new(store, broker, hub, ingest, auth, limits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::hub::HubEvent;
    use crate::testing::MemoryStore;

    fn chat(store: DynStore) -> Chat {
        super::testing::chat(store)
    }

    async fn user(store: &DynStore, name: &str) -> User {
        let display = DisplayName::parse(name).unwrap();
        store.create_user(&Username::parse(name).unwrap(), &display, "unused").await.unwrap()
    }

    #[tokio::test]
    async fn resync_recovers_messages_memberships_and_sessions_the_broker_lost() {
        let store: DynStore = Arc::new(MemoryStore::new());
        let chat = chat(store.clone());
        let (owner, bob) = (user(&store, "owner").await, user(&store, "bob").await);
        let room = store.create_room(&RoomName::parse("quiet").unwrap(), Visibility::Public, owner.id).await.unwrap();
        store.add_member(room.id, bob.id, Role::Member).await.unwrap();
        let session =
            Session { id: SessionId::generate(), user: bob.id, expires_at: now_millis() + 60_000, revoked: false };
        store.create_session(&session).await.unwrap();
        let who = Identity { user: bob.clone(), session: session.id.clone(), expires_at: session.expires_at };
        let (mut reg, _) = chat.connect(&who).await.unwrap();

        // Each change below reaches only the store, as when the broker's events were lost.
        let msg = NewMessage {
            room: room.id,
            kind: MessageKind::Text,
            sender: owner.clone(),
            target: None,
            body: "while you were away".into(),
            client_id: None,
            mentions: vec![],
            files: vec![],
            ts: now_millis(),
            reply_to: None,
            thread: None,
            quote: None,
        };
        let stored = store.append(&[msg.clone(), msg]).await.unwrap();
        assert!(reg.rx.try_recv().is_err(), "nothing arrived live");
        chat.resync().await.unwrap();
        let d = reg.rx.try_recv().expect("the room's latest message is handed to the connection");
        let Appended::Stored(latest) = &stored[1] else { panic!("stored") };
        assert!(matches!(&d.event, HubEvent::Message(m) if m.seq == latest.seq));
        assert!(reg.rx.try_recv().is_err(), "the connection's feed fills the gap before it, not the hub");

        store.remove_member(room.id, bob.id).await.unwrap();
        chat.resync().await.unwrap();
        assert!(matches!(reg.rx.try_recv().map(|d| matches!(d.event, HubEvent::Left(r) if r == room.id)), Ok(true)));

        store.revoke_session(&session.id).await.unwrap();
        chat.resync().await.unwrap();
        assert_eq!(reg.ctl.reason(), Some(CloseReason::SessionEnded));
    }

    /// What the broker starts routing to a node late (a room's first follower, a user's first
    /// connection) is caught up from the store: the room's latest message, the user's memberships.
    #[tokio::test]
    async fn catch_up_hands_the_hub_what_it_missed() {
        let store: DynStore = Arc::new(MemoryStore::new());
        let chat = chat(store.clone());
        let (owner, bob) = (user(&store, "owner").await, user(&store, "bob").await);
        let room = store.create_room(&RoomName::parse("late").unwrap(), Visibility::Public, owner.id).await.unwrap();
        let other = store.create_room(&RoomName::parse("other").unwrap(), Visibility::Public, owner.id).await.unwrap();
        store.add_member(room.id, bob.id, Role::Member).await.unwrap();
        let who = Identity { user: bob.clone(), session: SessionId::generate(), expires_at: now_millis() + 60_000 };
        let (mut reg, _) = chat.connect(&who).await.unwrap();
        let msg = NewMessage {
            room: room.id,
            kind: MessageKind::Text,
            sender: owner.clone(),
            target: None,
            body: "published before the subscription".into(),
            client_id: None,
            mentions: vec![],
            ts: now_millis(),
            files: vec![],
            reply_to: None,
            thread: None,
            quote: None,
        };
        let stored = store.append(&[msg]).await.unwrap();
        store.add_member(other.id, bob.id, Role::Member).await.unwrap();
        assert!(reg.rx.try_recv().is_err(), "nothing arrived live");
        chat.catch_up(&[room.id, RoomId(999)], &[bob.id, UserId(999)]).await.unwrap();
        let Appended::Stored(latest) = &stored[0] else { panic!("stored") };
        let mut got = vec![];
        while let Ok(d) = reg.rx.try_recv() {
            got.push(match &d.event {
                HubEvent::Joined(r) => format!("joined {}", r.name),
                HubEvent::Message(m) => format!("message {}", m.seq),
                other => format!("{other:?}"),
            });
        }
        assert_eq!(got, vec!["joined other".to_owned(), format!("message {}", latest.seq)]);
    }

    #[test]
    fn addresses_are_limited_per_host() {
        let k = |s: &str| address_key(s.parse().unwrap()).to_string();
        assert_eq!(k("192.0.2.7"), "192.0.2.7");
        assert_eq!(k("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(k("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::");
        assert_eq!(k("2001:db8:1:2::1"), k("2001:db8:1:2:ffff::9"));
    }
}
