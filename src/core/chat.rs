//! The chat service: every command a user can give, whatever transport it came by.
//!
//! Transports authenticate a request into an [`Identity`], parse its arguments into domain types and
//! call one method here; they never touch the store or the broker themselves. Rules that must hold on
//! every transport (who may see a private room, what a message may contain) live here, once.
//!
//! By concern: this file holds the service itself and the access rules every command goes through
//! (`visible_room` and its siblings, room references); `accounts.rs` registration, login and sessions;
//! `messages.rs` history, sending, edits, read marks and typing; `cluster.rs` live connections, the
//! resync and catch-up from the store and cluster presence; `rooms.rs` the rooms and their settings,
//! `moderation.rs` moderation and ownership, `invites.rs` invitations; issue 14's conversations:
//! `threads.rs` (replies, threads, the quote/summary/reactions every read carries), `reactions.rs`,
//! `pins.rs`, `notify.rs` (notification levels and mute); `files.rs` attachments, `search.rs` search.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::domain::*;
use super::error::{Error, Limit, Result};
use super::hub::{CloseReason, Hub};
use super::ingest::{Ingest, Queued, WriterHealth};
use super::limits::{Admission, Buckets, Connections, LoginThrottle, Rate, Transport};
use super::ports::broker::DynBroker;
use super::ports::clock::{DynClock, SystemClock};
use super::ports::credentials::{PasswordHashing, TokenIssuer};
use super::ports::store::DynStore;
use super::typing::TypingTracker;

mod accounts;
mod cluster;
pub mod files;
mod invites;
mod messages;
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

/// One message to send, whatever the transport: [`Chat::send`] and [`Chat::submit`] take it. Besides its
/// room and text, optionally: the sender's id for it (`client_id`: a resend answers the first ack), the
/// message of the same room it replies to, and the files it shares (unsent uploads of the sender into
/// that room, by id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendRequest {
    pub room: RoomRef,
    pub body: MessageBody,
    pub client_id: Option<ClientMsgId>,
    pub reply_to: Option<Seq>,
    pub files: Vec<String>,
}

impl SendRequest {
    /// A plain text: no `client_id`, no reply, no files.
    pub fn text(room: RoomRef, body: MessageBody) -> Self {
        SendRequest { room, body, client_id: None, reply_to: None, files: Vec::new() }
    }
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
        self.ingest.append(NewMessage::system(room.id, kind, &who.user, target, body, self.now())).await.map(|_| ())
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

    #[test]
    fn addresses_are_limited_per_host() {
        let k = |s: &str| address_key(s.parse().unwrap()).to_string();
        assert_eq!(k("192.0.2.7"), "192.0.2.7");
        assert_eq!(k("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(k("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::");
        assert_eq!(k("2001:db8:1:2::1"), k("2001:db8:1:2:ffff::9"));
    }
}
