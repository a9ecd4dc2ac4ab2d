//! The hub: which live connection follows which room, and fan-out.
//!
//! One file past 600 lines on purpose: connections, room followers, local and remote presence and the
//! routing interest are one state under one lock, and every mutation keeps them consistent together
//! (a follow changes followers, interest and presence reach at once); split, those invariants would
//! be spread over modules that each see only part of the state. About a third is tests.
//!
//! Why it looks like this:
//! - **Encode once.** A delivery is an `Arc<Delivery>` shared by every recipient; transports cache their
//!   encoding of it in [`Delivery::encoded`], so a message to 1,000 members is serialised once per
//!   wire format, not 1,000 times. The hub itself never sees a wire format.
//! - **Never wait on a client.** Each connection has a bounded queue; fan-out uses `try_send`. A full
//!   queue means the client is not keeping up: it is closed with [`CloseReason::TooSlow`] and drops out
//!   of every room, and nobody else waits for it.
//! - **Order.** Messages reach the hub in `seq` order per room (the ingest writer publishes in commit
//!   order); the hub drops anything at or below the last `seq` it delivered for a room, so a repeated
//!   publish can never produce a duplicate. (Only deliveries move that mark, never a store snapshot: a
//!   message committed but not yet published must still go out.)
//! - Fan-out holds a read lock; only joins, leaves and (un)registering take the write lock.
//! - **Presence spans nodes.** A user is online while they have a connection on any node. The hub
//!   knows its own connections and, from other nodes' `Presence` deltas and `NodeAlive` snapshots, who
//!   is connected elsewhere. Heartbeats (`NodeBeat`) are constant-size: a count and an XOR digest of
//!   user ids; a hub whose picture of a node differs asks it for a snapshot (`SnapshotWanted`); it tells local connections only when the cluster-wide answer flips. A node
//!   whose heartbeats stop is dropped after the node TTL ([`Hub::expire_nodes`]), and its users go
//!   offline then.
//! - **A connect never costs O(room size).** Following and unfollowing are O(1) per room; presence is
//!   pushed only through rooms of at most [`PRESENCE_ROOM_LIMIT`] members, so a reconnect storm into a
//!   room of 10,000 is 10,000 registrations, not 10,000² presence frames.
//! - **Routing.** [`Interest`] is told when the first local follower of a room (or connection of a
//!   user) arrives and the last one leaves, so the broker subscribes this node only to what it needs.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use indexmap::IndexMap;
use parking_lot::RwLock;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::domain::{ConvoEvent, Invite, Message, NodeId, Room, RoomId, Seq, SessionId, User, UserId};
use super::ports::broker::{BrokerEvent, BrokerSink, user_digest};

pub type ConnId = u64;

/// Rooms with more members than this get no `presence` events: telling every member of a room of
/// N about each connect would cost O(N) per connect and O(N²) in a reconnect storm. Their members'
/// online state comes with the member list (`Chat::members`), asked for when shown. A user who also
/// shares a smaller room with someone is still pushed to them through that room. Documented in
/// docs/PROTOCOL.md ("Presence").
pub const PRESENCE_ROOM_LIMIT: i64 = 500;

/// Told when this node starts or stops needing a room's or a user's events (first local follower
/// in, last one out): per-room routing across nodes. Called under the hub's lock, so it must only
/// record the change and return.
pub trait Interest: Send + Sync + 'static {
    fn room(&self, room: RoomId, wanted: bool);
    fn user(&self, user: UserId, wanted: bool);
}

/// Why the server closed a connection. Transports map these to their own close codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// Logout or expiry.
    SessionEnded,
    /// The send queue overflowed.
    TooSlow,
    /// The server is stopping.
    ShuttingDown,
}

/// What the hub pushes to a connection.
#[derive(Debug)]
pub enum HubEvent {
    Message(Arc<Message>),
    /// A stored message was edited or deleted (its new state).
    Updated(Arc<Message>),
    Joined(Room),
    Left(RoomId),
    /// A room's name or topic changed.
    RoomUpdated(Room),
    /// A user who shares a room with this connection came online or went offline.
    Presence {
        user: User,
        online: bool,
    },
    /// Someone is typing in a room (ephemeral; never stored).
    Typing {
        room: RoomId,
        user: User,
    },
    /// This connection's user read `room` up to `seq` (on any device).
    Read {
        room: RoomId,
        seq: Seq,
    },
    /// A user who shares a room with this connection (or its own user) changed their display name.
    UserUpdated(User),
    /// This connection's user was invited into a room.
    Invited(Invite),
    /// Reactions, thread summaries, notification settings (issue 14).
    Convo(ConvoEvent),
}

/// One event shared by all its recipients, with a slot per wire format for its encoding.
#[derive(Debug)]
pub struct Delivery {
    pub event: HubEvent,
    encoded: [OnceLock<Bytes>; 2],
    /// When it was handed to the hub: a connection whose oldest queued delivery is too old is too slow.
    /// (Tokio's clock, so tests can move it.)
    at: tokio::time::Instant,
}

/// Which encoding cache slot a transport uses.
#[derive(Debug, Clone, Copy)]
pub enum WireSlot {
    Json = 0,
    Line = 1,
}

impl Delivery {
    pub fn new(event: HubEvent) -> Arc<Self> {
        Arc::new(Delivery { event, encoded: Default::default(), at: tokio::time::Instant::now() })
    }
    /// How long since the hub got it.
    pub fn queued_for(&self) -> Duration {
        self.at.elapsed()
    }
    /// The encoding for `slot`, computed by `encode` the first time any connection asks.
    pub fn encoded(&self, slot: WireSlot, encode: impl FnOnce(&HubEvent) -> Bytes) -> Bytes {
        self.encoded[slot as usize].get_or_init(|| encode(&self.event)).clone()
    }
}

/// Shared between the hub and a connection's task: how the hub tells a connection to close.
#[derive(Debug, Default)]
pub struct ConnControl {
    token: CancellationToken,
    reason: OnceLock<CloseReason>,
}

impl ConnControl {
    pub fn close(&self, reason: CloseReason) {
        let _ = self.reason.set(reason);
        self.token.cancel();
    }
    pub async fn closed(&self) -> CloseReason {
        self.token.cancelled().await;
        self.reason.get().copied().unwrap_or(CloseReason::ShuttingDown)
    }
    pub fn reason(&self) -> Option<CloseReason> {
        self.reason.get().copied()
    }
}

struct ConnEntry {
    profile: User,
    session: SessionId,
    tx: mpsc::Sender<Arc<Delivery>>,
    ctl: Arc<ConnControl>,
    rooms: HashSet<RoomId>,
}

#[derive(Default)]
struct RoomSubs {
    /// Insertion-ordered for fast fan-out iteration; removal is `swap_remove`, O(1) whatever the size.
    subs: IndexMap<ConnId, mpsc::Sender<Arc<Delivery>>>,
    last_seq: AtomicI64,
    /// The room's member count as last seen (in a follow, join, leave or room update).
    members: AtomicI64,
}

impl RoomSubs {
    /// Whether presence changes are pushed to this room's followers (see [`PRESENCE_ROOM_LIMIT`]).
    fn pushes_presence(&self) -> bool {
        self.members.load(Ordering::Relaxed) <= PRESENCE_ROOM_LIMIT
    }
    fn saw(&self, room: &Room) {
        self.members.store(room.member_count, Ordering::Relaxed);
    }
}

#[derive(Default)]
struct UserConns {
    conns: Vec<ConnId>,
    /// Whether others were told this user is online (so they are told when the last connection goes).
    announced: bool,
}

/// A user connected to other nodes: per node, the rooms whose members hear of them.
struct RemoteUser {
    profile: User,
    nodes: HashMap<NodeId, Vec<RoomId>>,
}

/// Another node: when it was last heard from, and its users (with their digest, to compare with the
/// node's heartbeat).
struct RemoteNode {
    seen: Instant,
    users: HashSet<UserId>,
    digest: u64,
}

#[derive(Default)]
struct State {
    conns: HashMap<ConnId, ConnEntry>,
    rooms: HashMap<RoomId, RoomSubs>,
    users: HashMap<UserId, UserConns>,
    remote: HashMap<UserId, RemoteUser>,
    nodes: HashMap<NodeId, RemoteNode>,
    /// XOR of [`user_digest`] over this node's announced users: its heartbeat.
    digest: u64,
    announced: u64,
}

impl State {
    /// The rooms any of a user's connections here follow.
    fn rooms_of(&self, user: &UserConns) -> HashSet<RoomId> {
        user.conns.iter().filter_map(|id| self.conns.get(id)).flat_map(|c| c.rooms.iter().copied()).collect()
    }

    fn online(&self, user: UserId) -> bool {
        self.users.contains_key(&user) || self.remote.contains_key(&user)
    }

    /// Records that `user` is (or is no longer) connected to `node`; the presence event for local
    /// connections when that flips the cluster-wide answer.
    fn set_remote(&mut self, node: NodeId, user: &User, rooms: &[RoomId], online: bool) -> Option<Arc<Delivery>> {
        let uid = user.id;
        let before = self.online(uid);
        let known = self.nodes.entry(node).or_insert_with(|| RemoteNode {
            seen: Instant::now(),
            users: HashSet::new(),
            digest: 0,
        });
        if online {
            if known.users.insert(uid) {
                known.digest ^= user_digest(uid);
            }
            let r =
                self.remote.entry(uid).or_insert_with(|| RemoteUser { profile: user.clone(), nodes: HashMap::new() });
            r.profile = user.clone();
            r.nodes.insert(node, rooms.to_vec());
        } else {
            if known.users.remove(&uid) {
                known.digest ^= user_digest(uid);
            }
            if let Some(r) = self.remote.get_mut(&uid) {
                r.nodes.remove(&node);
                if r.nodes.is_empty() {
                    self.remote.remove(&uid);
                }
            }
        }
        (before != self.online(uid)).then(|| Delivery::new(HubEvent::Presence { user: user.clone(), online: !before }))
    }
}

pub struct Hub {
    state: RwLock<State>,
    next_id: AtomicU64,
    queue_len: usize,
    closing: CancellationToken,
    node: NodeId,
    /// Where this node's own presence changes go, for other nodes (see [`Hub::presence_changes`]).
    changes: OnceLock<mpsc::Sender<BrokerEvent>>,
    /// Who wants to know which rooms and users this node follows (the broker, for routing).
    interest: OnceLock<Arc<dyn Interest>>,
}

/// A registered connection. Dropping it unregisters the connection from the hub.
pub struct Registration {
    hub: Arc<Hub>,
    pub id: ConnId,
    pub rx: mpsc::Receiver<Arc<Delivery>>,
    pub ctl: Arc<ConnControl>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.hub.unregister(self.id);
    }
}

impl Hub {
    pub fn new(queue_len: usize, node: NodeId) -> Arc<Self> {
        Arc::new(Hub {
            state: RwLock::new(State::default()),
            next_id: AtomicU64::new(1),
            queue_len: queue_len.max(1),
            closing: CancellationToken::new(),
            node,
            changes: OnceLock::new(),
            interest: OnceLock::new(),
        })
    }

    pub fn node(&self) -> NodeId {
        self.node
    }

    /// Sets who is told of the rooms and users this node starts or stops following (call once,
    /// before the first registration; it is told of everything followed already, too).
    pub fn set_interest(&self, interest: Arc<dyn Interest>) {
        if self.interest.set(interest.clone()).is_ok() {
            let st = self.state.read();
            st.rooms.iter().filter(|(_, r)| !r.subs.is_empty()).for_each(|(id, _)| interest.room(*id, true));
            st.users.keys().for_each(|u| interest.user(*u, true));
        }
    }

    fn interest_room(&self, room: RoomId, wanted: bool) {
        if let Some(i) = self.interest.get() {
            i.room(room, wanted);
        }
    }

    fn interest_user(&self, user: UserId, wanted: bool) {
        if let Some(i) = self.interest.get() {
            i.user(user, wanted);
        }
    }

    /// This node's presence changes (a user's first connection here, their last one gone) and answers
    /// to snapshot requests, as events to publish to other nodes. At most `cap` wait; past that they are
    /// dropped, and the next heartbeat ([`Hub::beat`]) shows the others a different digest, so they ask
    /// for a snapshot ([`Hub::local_users`]) that repairs the picture. Call once.
    pub fn presence_changes(&self, cap: usize) -> mpsc::Receiver<BrokerEvent> {
        let (tx, rx) = mpsc::channel(cap.max(1));
        let _ = self.changes.set(tx);
        rx
    }

    fn presence_changed(&self, user: &User, rooms: &HashSet<RoomId>, online: bool) {
        if self.changes.get().is_some() {
            let rooms = rooms.iter().copied().collect();
            self.send_change(BrokerEvent::Presence { node: self.node, user: user.clone(), rooms, online });
        }
    }

    /// The users connected to this node, with the rooms their connections follow: this node's heartbeat.
    pub fn local_users(&self) -> Vec<(User, Vec<RoomId>)> {
        let st = self.state.read();
        st.users
            .values()
            .filter(|u| u.announced)
            .filter_map(|u| {
                let profile = u.conns.iter().find_map(|id| st.conns.get(id))?.profile.clone();
                Some((profile, st.rooms_of(u).into_iter().collect()))
            })
            .collect()
    }

    /// This node's compact heartbeat: how many users are announced here and their digest.
    pub fn beat(&self) -> BrokerEvent {
        let st = self.state.read();
        BrokerEvent::NodeBeat { node: self.node, users: st.announced, digest: st.digest }
    }

    /// `node` says it has `users` users with `digest`: it is alive; when that is not the picture here,
    /// ask it for a snapshot.
    fn node_beat(&self, node: NodeId, users: u64, digest: u64) {
        if node == self.node {
            return;
        }
        let mut st = self.state.write();
        let known = st.nodes.entry(node).or_insert_with(|| RemoteNode {
            seen: Instant::now(),
            users: HashSet::new(),
            digest: 0,
        });
        known.seen = Instant::now();
        if known.users.len() as u64 != users || known.digest != digest {
            drop(st);
            metrics::counter!("parley_presence_snapshots_wanted_total").increment(1);
            self.send_change(BrokerEvent::SnapshotWanted { of: node });
        }
    }

    fn send_change(&self, event: BrokerEvent) {
        if let Some(tx) = self.changes.get() {
            let _ = tx.try_send(event);
        }
    }

    /// Forgets nodes not heard from for `ttl`: their users go offline (where not connected elsewhere).
    pub fn expire_nodes(&self, ttl: Duration) -> usize {
        let mut st = self.state.write();
        let gone: Vec<NodeId> = st.nodes.iter().filter(|(_, n)| n.seen.elapsed() > ttl).map(|(id, _)| *id).collect();
        for node in &gone {
            let users = st.nodes.get(node).map(|n| n.users.clone()).unwrap_or_default();
            for uid in users {
                Self::forget_remote(&mut st, *node, uid);
            }
            st.nodes.remove(node);
        }
        gone.len()
    }

    /// `uid` is no longer on `node` (it said so, or it went silent): tells whom it concerns if that
    /// takes the user offline.
    fn forget_remote(st: &mut State, node: NodeId, uid: UserId) {
        let Some((profile, rooms)) =
            st.remote.get(&uid).map(|r| (r.profile.clone(), r.nodes.get(&node).cloned().unwrap_or_default()))
        else {
            return;
        };
        if let Some(d) = st.set_remote(node, &profile, &rooms, false) {
            Self::best_effort(st, rooms.iter(), Some(uid), &d);
        }
    }

    fn remote_presence(&self, node: NodeId, user: &User, rooms: &[RoomId], online: bool) {
        if node == self.node {
            return;
        }
        let mut st = self.state.write();
        if let Some(d) = st.set_remote(node, user, rooms, online) {
            Self::best_effort(&st, rooms.iter(), Some(user.id), &d);
        }
    }

    fn node_alive(&self, node: NodeId, users: &[(User, Vec<RoomId>)]) {
        if node == self.node {
            return;
        }
        let mut st = self.state.write();
        let before = st.nodes.get(&node).map(|n| n.users.clone()).unwrap_or_default();
        for (user, rooms) in users {
            if let Some(d) = st.set_remote(node, user, rooms, true) {
                Self::best_effort(&st, rooms.iter(), Some(user.id), &d);
            }
        }
        let now: HashSet<UserId> = users.iter().map(|(u, _)| u.id).collect();
        for uid in before.difference(&now) {
            Self::forget_remote(&mut st, node, *uid);
        }
        if let Some(n) = st.nodes.get_mut(&node) {
            n.seen = Instant::now();
        }
    }

    /// The rooms followed here, each with the last `seq` delivered (for resynchronising).
    pub fn followed_rooms(&self) -> Vec<(RoomId, Seq)> {
        let st = self.state.read();
        st.rooms
            .iter()
            .filter(|(_, r)| !r.subs.is_empty())
            .map(|(id, r)| (*id, r.last_seq.load(Ordering::Acquire)))
            .collect()
    }

    /// Each locally connected user with the rooms their connections follow.
    pub fn local_memberships(&self) -> Vec<(UserId, HashSet<RoomId>)> {
        let st = self.state.read();
        st.users.iter().map(|(uid, u)| (*uid, st.rooms_of(u))).collect()
    }

    /// The rooms the connections of `user` here follow (`None` when the user has none here).
    pub fn rooms_of(&self, user: UserId) -> Option<HashSet<RoomId>> {
        let st = self.state.read();
        st.users.get(&user).map(|u| st.rooms_of(u))
    }

    /// The last `seq` delivered in `room` here (`None` when nobody here follows it).
    pub fn delivered(&self, room: RoomId) -> Option<Seq> {
        self.state.read().rooms.get(&room).map(|r| r.last_seq.load(Ordering::Acquire))
    }

    /// The sessions with a live connection here.
    pub fn sessions(&self) -> Vec<SessionId> {
        let st = self.state.read();
        let set: HashSet<&SessionId> = st.conns.values().map(|c| &c.session).collect();
        set.into_iter().cloned().collect()
    }

    /// Registers a connection of `user` under `session`, following no room yet (see [`Hub::follow`]).
    /// The hub may close it (through `ctl`) at any time; events arrive on `rx`.
    pub fn register(self: &Arc<Self>, profile: &User, session: SessionId) -> Registration {
        let user = profile.id;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(self.queue_len);
        let ctl = Arc::new(ConnControl::default());
        if self.closing.is_cancelled() {
            ctl.close(CloseReason::ShuttingDown);
        }
        let mut st = self.state.write();
        let uc = st.users.entry(user).or_default();
        uc.conns.push(id);
        if uc.conns.len() == 1 {
            self.interest_user(user, true);
        }
        st.conns
            .insert(id, ConnEntry { profile: profile.clone(), session, tx, ctl: ctl.clone(), rooms: HashSet::new() });
        Registration { hub: self.clone(), id, rx, ctl }
    }

    /// Makes connection `id` follow `rooms` (those it does not follow already). Registering first and
    /// following second means a join that happens in between is not missed.
    pub fn follow(&self, id: ConnId, rooms: &[Room]) {
        let mut st = self.state.write();
        let Some(entry) = st.conns.get_mut(&id) else { return };
        let tx = entry.tx.clone();
        let new: Vec<&Room> = rooms.iter().filter(|r| entry.rooms.insert(r.id)).collect();
        for r in new {
            let subs = st.rooms.entry(r.id).or_default();
            subs.saw(r);
            subs.subs.insert(id, tx.clone());
            if subs.subs.len() == 1 {
                self.interest_room(r.id, true);
            }
        }
    }

    fn unregister(&self, id: ConnId) {
        let mut st = self.state.write();
        let Some(entry) = st.conns.remove(&id) else { return };
        for room in &entry.rooms {
            self.drop_sub(&mut st, *room, id);
        }
        let Some(uc) = st.users.get_mut(&entry.profile.id) else { return };
        uc.conns.retain(|c| *c != id);
        if uc.conns.is_empty() {
            let announced = uc.announced;
            st.users.remove(&entry.profile.id);
            self.interest_user(entry.profile.id, false);
            if announced {
                st.digest ^= user_digest(entry.profile.id);
                st.announced -= 1;
                if !st.online(entry.profile.id) {
                    let d = Delivery::new(HubEvent::Presence { user: entry.profile.clone(), online: false });
                    Self::best_effort(&st, entry.rooms.iter(), None, &d);
                }
                self.presence_changed(&entry.profile, &entry.rooms, false);
            }
        }
    }

    /// Removes connection `id` from `room`'s followers, forgetting the room when it was the last.
    fn drop_sub(&self, st: &mut State, room: RoomId, id: ConnId) {
        let Some(subs) = st.rooms.get_mut(&room) else { return };
        if subs.subs.swap_remove(&id).is_some() && subs.subs.is_empty() {
            st.rooms.remove(&room);
            self.interest_room(room, false);
        }
    }

    /// Tells everyone sharing a room with connection `id`'s user that the user is online, unless they
    /// were told already (another connection of the user).
    pub fn announce_online(&self, id: ConnId) {
        let mut st = self.state.write();
        let Some(entry) = st.conns.get(&id) else { return };
        let (user, profile, rooms) = (entry.profile.id, entry.profile.clone(), entry.rooms.clone());
        let Some(uc) = st.users.get_mut(&user) else { return };
        if std::mem::replace(&mut uc.announced, true) {
            return;
        }
        st.digest ^= user_digest(user);
        st.announced += 1;
        self.presence_changed(&profile, &rooms, true);
        if st.remote.contains_key(&user) {
            return; // online elsewhere already: nothing changes for others
        }
        let d = Delivery::new(HubEvent::Presence { user: profile, online: true });
        Self::best_effort(&st, rooms.iter(), Some(user), &d);
    }

    /// Which of `users` have a live connection on this node or, as far as this node has heard, another.
    pub fn online(&self, users: impl IntoIterator<Item = UserId>) -> HashSet<UserId> {
        let st = self.state.read();
        users.into_iter().filter(|u| st.online(*u)).collect()
    }

    /// Delivers `d` once to every connection following any of `rooms` (except `skip_user`'s), only where
    /// the queue has room to spare: ephemeral events are the first thing a slow client loses.
    fn best_effort<'a>(
        st: &State,
        rooms: impl Iterator<Item = &'a RoomId>,
        skip_user: Option<UserId>,
        d: &Arc<Delivery>,
    ) {
        let presence_only = matches!(d.event, HubEvent::Presence { .. });
        let mut seen = HashSet::new();
        let mut dropped = 0u64;
        for room in rooms {
            let Some(subs) = st.rooms.get(room) else { continue };
            if presence_only && !subs.pushes_presence() {
                continue;
            }
            for (cid, tx) in &subs.subs {
                if !seen.insert(*cid) || skip_user.is_some_and(|u| st.conns.get(cid).is_some_and(|c| c.profile.id == u))
                {
                    continue;
                }
                if tx.capacity() * 2 > tx.max_capacity() {
                    let _ = tx.try_send(d.clone());
                } else {
                    dropped += 1;
                }
            }
        }
        if dropped > 0 {
            metrics::counter!("parley_ephemeral_dropped_total").increment(dropped);
        }
    }

    /// Number of live connections (all users).
    pub fn connection_count(&self) -> usize {
        self.state.read().conns.len()
    }

    /// Closes every connection and refuses new ones (they are closed on arrival).
    pub fn close_all(&self, reason: CloseReason) {
        self.closing.cancel();
        for e in self.state.read().conns.values() {
            e.ctl.close(reason);
        }
    }

    fn fan_out_message(&self, msg: Arc<Message>) {
        {
            let st = self.state.read();
            let Some(room) = st.rooms.get(&msg.room) else { return };
            // Only ever move forward: a seq at or below the last delivered one is a repeat.
            if room.last_seq.fetch_max(msg.seq, Ordering::AcqRel) >= msg.seq {
                return;
            }
        }
        self.fan_out(msg.room, Delivery::new(HubEvent::Message(msg)));
    }

    /// Delivers `d` to every follower of `room`; those whose queue is full are closed as too slow.
    fn fan_out(&self, room: RoomId, d: Arc<Delivery>) {
        let mut slow = Vec::new();
        {
            let st = self.state.read();
            let Some(subs) = st.rooms.get(&room) else { return };
            for (id, tx) in &subs.subs {
                if tx.try_send(d.clone()).is_err() {
                    slow.push(*id);
                }
            }
        }
        self.close_conns(&slow, CloseReason::TooSlow);
    }

    /// Delivers `d` to every connection of `user`.
    fn to_user(&self, user: UserId, d: Arc<Delivery>) {
        let mut slow = Vec::new();
        {
            let st = self.state.read();
            for id in st.users.get(&user).map(|u| u.conns.as_slice()).unwrap_or_default() {
                if let Some(c) = st.conns.get(id)
                    && c.tx.try_send(d.clone()).is_err()
                {
                    slow.push(*id);
                }
            }
        }
        self.close_conns(&slow, CloseReason::TooSlow);
    }

    fn close_conns(&self, ids: &[ConnId], reason: CloseReason) {
        if ids.is_empty() {
            return;
        }
        if reason == CloseReason::TooSlow {
            metrics::counter!("parley_slow_client_disconnects_total").increment(ids.len() as u64);
        }
        {
            let st = self.state.read();
            for id in ids {
                if let Some(e) = st.conns.get(id) {
                    e.ctl.close(reason);
                }
            }
        }
        // Drop them from every room now, so later fan-outs skip them even before their tasks end.
        for id in ids {
            self.unregister(*id);
        }
    }

    fn membership(&self, room: &Room, user: UserId, joined: bool) {
        let mut slow = Vec::new();
        {
            let mut st = self.state.write();
            let ids = st.users.get(&user).map(|u| u.conns.clone()).unwrap_or_default();
            let d = Delivery::new(if joined { HubEvent::Joined(room.clone()) } else { HubEvent::Left(room.id) });
            for id in ids {
                let Some(entry) = st.conns.get_mut(&id) else { continue };
                let tx = entry.tx.clone();
                let changed = if joined { entry.rooms.insert(room.id) } else { entry.rooms.remove(&room.id) };
                if changed {
                    if joined {
                        let subs = st.rooms.entry(room.id).or_default();
                        subs.subs.insert(id, tx.clone());
                        if subs.subs.len() == 1 {
                            self.interest_room(room.id, true);
                        }
                    } else {
                        self.drop_sub(&mut st, room.id, id);
                    }
                }
                if let Some(subs) = st.rooms.get(&room.id) {
                    subs.saw(room);
                }
                if tx.try_send(d.clone()).is_err() {
                    slow.push(id);
                }
            }
        }
        self.close_conns(&slow, CloseReason::TooSlow);
    }

    fn user_updated(&self, user: User) {
        let uid = user.id;
        let d = Delivery::new(HubEvent::UserUpdated(user.clone()));
        let mut st = self.state.write();
        let own = st.users.get(&uid).map(|u| u.conns.clone()).unwrap_or_default();
        let mut rooms = HashSet::new();
        for id in &own {
            if let Some(c) = st.conns.get_mut(id) {
                c.profile = user.clone();
                rooms.extend(c.rooms.iter().copied());
                // The user's own connections must learn it (they send as this user): not best effort.
                let _ = c.tx.try_send(d.clone());
            }
        }
        Self::best_effort(&st, rooms.iter(), Some(uid), &d);
    }

    fn end_session(&self, session: &SessionId) {
        let ids: Vec<ConnId> =
            self.state.read().conns.iter().filter(|(_, e)| e.session == *session).map(|(id, _)| *id).collect();
        self.close_conns(&ids, CloseReason::SessionEnded);
    }
}

impl BrokerSink for Hub {
    fn deliver(&self, event: BrokerEvent) {
        match event {
            BrokerEvent::Message(m) => self.fan_out_message(m),
            BrokerEvent::Joined { room, user } => self.membership(&room, user, true),
            BrokerEvent::Left { room, user } => self.membership(&room, user, false),
            BrokerEvent::SessionEnded(s) => self.end_session(&s),
            BrokerEvent::Updated(m) => self.fan_out(m.room, Delivery::new(HubEvent::Updated(m))),
            BrokerEvent::RoomUpdated(r) => {
                if let Some(subs) = self.state.read().rooms.get(&r.id) {
                    subs.saw(&r);
                }
                self.fan_out(r.id, Delivery::new(HubEvent::RoomUpdated(r)))
            }
            BrokerEvent::Read { user, room, seq } => self.to_user(user, Delivery::new(HubEvent::Read { room, seq })),
            BrokerEvent::Invited { user, invite } => self.to_user(user, Delivery::new(HubEvent::Invited(invite))),
            BrokerEvent::UserUpdated(user) => self.user_updated(user),
            BrokerEvent::Typing { room, user } => {
                let uid = user.id;
                let d = Delivery::new(HubEvent::Typing { room, user });
                Self::best_effort(&self.state.read(), std::iter::once(&room), Some(uid), &d);
            }
            BrokerEvent::Presence { node, user, rooms, online } => self.remote_presence(node, &user, &rooms, online),
            BrokerEvent::NodeAlive { node, users } => self.node_alive(node, &users),
            BrokerEvent::Convo(e) => self.fan_out(e.room(), Delivery::new(HubEvent::Convo(e))),
            BrokerEvent::UserConvo { user, event } => self.to_user(user, Delivery::new(HubEvent::Convo(event))),
            BrokerEvent::NodeBeat { node, users, digest } => self.node_beat(node, users, digest),
            BrokerEvent::SnapshotWanted { of } => {
                if of == self.node {
                    self.send_change(BrokerEvent::NodeAlive { node: self.node, users: self.local_users() });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::domain::{MessageKind, RoomKind, Visibility};

    fn room(id: i64) -> Room {
        Room {
            id: RoomId(id),
            name: format!("r{id}"),
            kind: RoomKind::Group,
            visibility: Visibility::Public,
            topic: String::new(),
            created_by: UserId(1),
            last_seq: 0,
            member_count: 1,
            retention_secs: None,
        }
    }

    fn user(id: i64) -> User {
        User { id: UserId(id), username: format!("u{id}"), display_name: format!("U{id}") }
    }

    fn msg(room: i64, seq: i64) -> Arc<Message> {
        Arc::new(Message {
            room: RoomId(room),
            seq,
            kind: MessageKind::Text,
            sender: None,
            target: None,
            body: format!("{seq}"),
            client_id: None,
            mentions: vec![],
            files: vec![],
            ts: 0,
            edited_at: None,
            deleted: false,
            reply_to: None,
            thread: None,
            extras: Default::default(),
        })
    }

    fn seq_of(d: &Delivery) -> i64 {
        match &d.event {
            HubEvent::Message(m) => m.seq,
            other => panic!("not a message: {other:?}"),
        }
    }

    fn presence_of(rx: &mut mpsc::Receiver<Arc<Delivery>>) -> Vec<(i64, bool)> {
        let mut out = Vec::new();
        while let Ok(d) = rx.try_recv() {
            if let HubEvent::Presence { user, online } = &d.event {
                out.push((user.id.0, *online));
            }
        }
        out
    }

    #[tokio::test]
    async fn presence_is_cluster_wide_and_a_silent_node_expires() {
        let (one, two) = (Hub::new(16, NodeId(1)), Hub::new(16, NodeId(2)));
        let mut from_two = two.presence_changes(16);
        let watcher = one.register(&user(1), SessionId("w".into()));
        one.follow(watcher.id, &[room(7)]);
        one.announce_online(watcher.id);
        let mut w = watcher;

        // User 2 connects to node two: node one's watcher hears it once, from node two's change event.
        let r2 = two.register(&user(2), SessionId("s2".into()));
        two.follow(r2.id, &[room(7)]);
        two.announce_online(r2.id);
        let change = from_two.try_recv().unwrap();
        one.deliver(change.clone());
        one.deliver(change);
        assert_eq!(presence_of(&mut w.rx), vec![(2, true)]);
        assert!(one.online([UserId(2)]).contains(&UserId(2)));

        // User 2 also connects to node one and leaves it: still online (on node two), so no event.
        let local = one.register(&user(2), SessionId("s3".into()));
        one.follow(local.id, &[room(7)]);
        one.announce_online(local.id);
        drop(local);
        assert_eq!(presence_of(&mut w.rx), vec![]);

        // Node two's heartbeat lists user 2; then node two goes silent and expires.
        one.deliver(BrokerEvent::NodeAlive { node: NodeId(2), users: two.local_users() });
        assert_eq!(one.expire_nodes(Duration::from_secs(60)), 0);
        assert_eq!(presence_of(&mut w.rx), vec![]);
        assert_eq!(one.expire_nodes(Duration::ZERO), 1);
        assert_eq!(presence_of(&mut w.rx), vec![(2, false)]);
        assert!(one.online([UserId(2)]).is_empty());

        // A heartbeat brings it back; one without the user takes it away again.
        one.deliver(BrokerEvent::NodeAlive { node: NodeId(2), users: two.local_users() });
        one.deliver(BrokerEvent::NodeAlive { node: NodeId(2), users: vec![] });
        assert_eq!(presence_of(&mut w.rx), vec![(2, true), (2, false)]);

        // A node ignores its own events.
        one.deliver(BrokerEvent::NodeAlive { node: NodeId(1), users: two.local_users() });
        assert_eq!(presence_of(&mut w.rx), vec![]);
    }

    fn big_room(id: i64, members: i64) -> Room {
        Room { member_count: members, ..room(id) }
    }

    /// Frames queued to all connections by one more user connecting into a room of `size` members
    /// (all connected), and by that user leaving again.
    fn frames_per_connect(size: i64) -> (usize, usize) {
        let hub = Hub::new(4, NodeId(1));
        let r = big_room(1, size + 1);
        let mut members: Vec<Registration> = (0..size)
            .map(|i| {
                let reg = hub.register(&user(100 + i), SessionId(format!("s{i}")));
                hub.follow(reg.id, std::slice::from_ref(&r));
                hub.announce_online(reg.id);
                reg
            })
            .collect();
        let drain = |members: &mut Vec<Registration>| {
            members.iter_mut().map(|m| std::iter::from_fn(|| m.rx.try_recv().ok()).count()).sum::<usize>()
        };
        drain(&mut members);
        let newcomer = hub.register(&user(1), SessionId("new".into()));
        hub.follow(newcomer.id, std::slice::from_ref(&r));
        hub.announce_online(newcomer.id);
        let on = drain(&mut members);
        drop(newcomer);
        (on, drain(&mut members))
    }

    #[test]
    fn a_connect_into_a_big_room_queues_no_frames_per_member() {
        // Small rooms: every member hears of it (exact presence).
        assert_eq!(frames_per_connect(10), (10, 10));
        assert_eq!(
            frames_per_connect(PRESENCE_ROOM_LIMIT - 1),
            ((PRESENCE_ROOM_LIMIT - 1) as usize, (PRESENCE_ROOM_LIMIT - 1) as usize)
        );
        // Past the limit the work per connect does not grow with the room.
        for size in [PRESENCE_ROOM_LIMIT, 2_000, 10_000] {
            assert_eq!(frames_per_connect(size), (0, 0), "room of {size}");
        }
    }

    #[test]
    fn a_room_that_grows_past_the_limit_stops_pushing_presence() {
        let hub = Hub::new(8, NodeId(1));
        let mut a = hub.register(&user(1), SessionId("a".into()));
        hub.follow(a.id, &[big_room(1, 2)]);
        hub.announce_online(a.id);
        let b = hub.register(&user(2), SessionId("b".into()));
        hub.follow(b.id, &[big_room(1, 2)]);
        hub.announce_online(b.id);
        assert_eq!(presence_of(&mut a.rx), vec![(2, true)]);
        hub.deliver(BrokerEvent::RoomUpdated(big_room(1, PRESENCE_ROOM_LIMIT + 1)));
        drop(b);
        assert_eq!(presence_of(&mut a.rx), vec![]);
        // The online state is still answered on request.
        assert!(hub.online([UserId(1), UserId(2)]) == HashSet::from([UserId(1)]));
    }

    #[derive(Default)]
    struct Seen(parking_lot::Mutex<Vec<(char, i64, bool)>>);
    impl Interest for Seen {
        fn room(&self, room: RoomId, wanted: bool) {
            self.0.lock().push(('r', room.0, wanted));
        }
        fn user(&self, user: UserId, wanted: bool) {
            self.0.lock().push(('u', user.0, wanted));
        }
    }

    #[test]
    fn interest_follows_the_first_and_last_local_follower() {
        let hub = Hub::new(8, NodeId(1));
        let seen = Arc::new(Seen::default());
        hub.set_interest(seen.clone());
        let a = hub.register(&user(1), SessionId("a".into()));
        hub.follow(a.id, &[room(1), room(2)]);
        let b = hub.register(&user(1), SessionId("b".into()));
        hub.follow(b.id, &[room(1)]);
        hub.deliver(BrokerEvent::Left { room: room(2), user: UserId(1) });
        hub.deliver(BrokerEvent::Joined { room: room(3), user: UserId(1) });
        drop(a);
        let mut got = std::mem::take(&mut *seen.0.lock());
        got.sort();
        assert_eq!(got, vec![('r', 1, true), ('r', 2, false), ('r', 2, true), ('r', 3, true), ('u', 1, true)]);
        drop(b);
        let mut got = std::mem::take(&mut *seen.0.lock());
        got.sort();
        assert_eq!(got, vec![('r', 1, false), ('r', 3, false), ('u', 1, false)]);
    }

    /// Heartbeats are a count and a digest; a node whose picture differs (it just started, or a delta
    /// was lost) asks for a snapshot and is repaired by it; a matching beat asks for nothing.
    #[tokio::test]
    async fn a_beat_that_does_not_match_asks_for_a_snapshot_that_repairs_presence() {
        let (one, two) = (Hub::new(16, NodeId(1)), Hub::new(16, NodeId(2)));
        let (mut from_one, mut from_two) = (one.presence_changes(16), two.presence_changes(16));
        let mut w = one.register(&user(1), SessionId("w".into()));
        one.follow(w.id, &[room(7)]);
        one.announce_online(w.id);
        while from_one.try_recv().is_ok() {}
        let regs: Vec<Registration> = (2..=4)
            .map(|i| {
                let r = two.register(&user(i), SessionId(format!("s{i}")));
                two.follow(r.id, &[room(7)]);
                two.announce_online(r.id);
                r
            })
            .collect();
        while from_two.try_recv().is_ok() {} // the deltas are lost
        let beat = two.beat();
        assert!(matches!(beat, BrokerEvent::NodeBeat { users: 3, .. }), "{beat:?}");
        one.deliver(beat);
        let want = from_one.try_recv().unwrap();
        assert!(matches!(want, BrokerEvent::SnapshotWanted { of: NodeId(2) }), "{want:?}");
        one.deliver(want.clone()); // not for node one: ignored
        assert!(from_one.try_recv().is_err());
        two.deliver(want);
        let snapshot = from_two.try_recv().unwrap();
        assert!(matches!(&snapshot, BrokerEvent::NodeAlive { users, .. } if users.len() == 3), "{snapshot:?}");
        one.deliver(snapshot);
        let mut got = presence_of(&mut w.rx);
        got.sort();
        assert_eq!(got, vec![(2, true), (3, true), (4, true)]);
        one.deliver(two.beat());
        assert!(from_one.try_recv().is_err(), "the pictures match: no snapshot");
        // A user leaves node two and that delta is delivered: still in step.
        drop(regs);
        while let Ok(change) = from_two.try_recv() {
            one.deliver(change);
        }
        one.deliver(two.beat());
        assert!(from_one.try_recv().is_err());
        assert!(one.online([UserId(2), UserId(3), UserId(4)]).is_empty());
    }

    #[tokio::test]
    async fn fan_out_reaches_followers_once_in_order() {
        let hub = Hub::new(16, NodeId(1));
        let mut a = hub.register(&user(1), SessionId("s1".into()));
        hub.follow(a.id, &[room(1)]);
        let mut b = hub.register(&user(2), SessionId("s2".into()));
        hub.follow(b.id, &[room(1), room(2), room(1)]);
        for s in [1, 2, 2, 1, 3] {
            hub.deliver(BrokerEvent::Message(msg(1, s)));
        }
        hub.deliver(BrokerEvent::Message(msg(2, 1)));
        for rx in [&mut a.rx, &mut b.rx] {
            assert_eq!(
                [
                    seq_of(&rx.recv().await.unwrap()),
                    seq_of(&rx.recv().await.unwrap()),
                    seq_of(&rx.recv().await.unwrap())
                ],
                [1, 2, 3]
            );
        }
        assert_eq!(seq_of(&b.rx.recv().await.unwrap()), 1);
        assert!(a.rx.try_recv().is_err(), "a does not follow room 2");
    }

    #[test]
    fn slow_client_disconnects_are_counted() {
        use metrics_util::debugging::{DebugValue, DebuggingRecorder};
        let recorder = DebuggingRecorder::new();
        let snapshot = recorder.snapshotter();
        let hub = Hub::new(2, NodeId(1));
        let slow = hub.register(&user(1), SessionId("s1".into()));
        hub.follow(slow.id, &[room(1)]);
        metrics::with_local_recorder(&recorder, || {
            for s in 1..=4 {
                hub.deliver(BrokerEvent::Message(msg(1, s)));
            }
        });
        assert_eq!(slow.ctl.reason(), Some(CloseReason::TooSlow));
        let counted = snapshot
            .snapshot()
            .into_vec()
            .into_iter()
            .find(|(k, ..)| k.key().name() == "parley_slow_client_disconnects_total")
            .map(|(.., v)| v);
        assert!(matches!(counted, Some(DebugValue::Counter(1))), "{counted:?}");
    }

    #[tokio::test]
    async fn a_full_queue_closes_only_that_connection() {
        let hub = Hub::new(2, NodeId(1));
        let slow = hub.register(&user(1), SessionId("s1".into()));
        hub.follow(slow.id, &[room(1)]);
        let mut fast = hub.register(&user(2), SessionId("s2".into()));
        hub.follow(fast.id, &[room(1)]);
        for s in 1..=5 {
            hub.deliver(BrokerEvent::Message(msg(1, s)));
            assert_eq!(seq_of(&fast.rx.recv().await.unwrap()), s);
        }
        assert_eq!(slow.ctl.reason(), Some(CloseReason::TooSlow));
        assert_eq!(fast.ctl.reason(), None);
        assert_eq!(hub.connection_count(), 1, "the slow connection left the hub");
    }

    #[tokio::test]
    async fn joins_leaves_and_session_end_reach_every_connection_of_the_user() {
        let hub = Hub::new(8, NodeId(1));
        let mut c1 = hub.register(&user(1), SessionId("s1".into()));
        let mut c2 = hub.register(&user(1), SessionId("s2".into()));
        hub.deliver(BrokerEvent::Joined { room: room(7), user: UserId(1) });
        hub.deliver(BrokerEvent::Message(msg(7, 1)));
        for c in [&mut c1, &mut c2] {
            assert!(matches!(c.rx.recv().await.unwrap().event, HubEvent::Joined(_)));
            assert_eq!(seq_of(&c.rx.recv().await.unwrap()), 1);
        }
        hub.deliver(BrokerEvent::Left { room: room(7), user: UserId(1) });
        hub.deliver(BrokerEvent::Message(msg(7, 2)));
        assert!(matches!(c1.rx.recv().await.unwrap().event, HubEvent::Left(RoomId(7))));
        assert!(c1.rx.try_recv().is_err(), "no messages after leaving");
        hub.deliver(BrokerEvent::SessionEnded(SessionId("s2".into())));
        assert_eq!(c2.ctl.closed().await, CloseReason::SessionEnded);
        assert_eq!(c1.ctl.reason(), None, "other sessions stay");
    }

    #[test]
    fn deliveries_encode_once_per_slot() {
        let d = Delivery::new(HubEvent::Left(RoomId(1)));
        let mut calls = 0;
        for _ in 0..3 {
            d.encoded(WireSlot::Json, |_| {
                calls += 1;
                Bytes::from_static(b"x")
            });
        }
        assert_eq!(calls, 1);
    }
}
