//! The hub: which live connection follows which room, and fan-out.
//!
//! By concern: this file is the registry (connections, the rooms they follow, routing interest, the
//! state under the hub's one lock); [`delivery`] what a connection is handed; `queue.rs` its bounded
//! queue and close signal; `fanout.rs` delivering broker events to followers; `cluster.rs` presence across nodes. Who is online
//! is a table of its own ([`crate::core::presence`]) that the hub keeps in its state and consults.
//!
//! Why it looks like this:
//! - **One state, one lock.** Connections, room followers, presence and the routing interest change
//!   together (a follow changes followers, interest and presence reach at once), so they sit in one
//!   `State` under one `RwLock`. Fan-out holds a read lock; only joins, leaves and (un)registering take
//!   the write lock.
//! - **Never wait on a client.** Each connection has a bounded queue; fan-out never waits on it. A full
//!   queue means the client is not keeping up: it is closed with [`CloseReason::TooSlow`] and drops out
//!   of every room, and nobody else waits for it (see `queue.rs` for the two bounds).
//! - **Order.** Messages reach the hub in `seq` order per room (the ingest writer publishes in commit
//!   order); the hub drops anything at or below the last `seq` it delivered for a room, so a repeated
//!   publish can never produce a duplicate. (Only deliveries move that mark, never a store snapshot: a
//!   message committed but not yet published must still go out.)
//! - **Presence spans nodes.** A user is online while they have a connection on any node. The hub
//!   knows its own connections and, from other nodes' `Presence` deltas and `NodeAlive` snapshots, who
//!   is connected elsewhere. Heartbeats (`NodeBeat`) are constant-size: a count and an XOR digest of
//!   user ids; a hub whose picture of a node differs asks it for a snapshot (`SnapshotWanted`); it tells
//!   local connections only when the cluster-wide answer flips. A node whose heartbeats stop is dropped
//!   after the node TTL ([`Hub::expire_nodes`]), and its users go offline then.
//! - **A connect never costs O(room size).** Following and unfollowing are O(1) per room; presence is
//!   pushed only through rooms of at most [`PRESENCE_ROOM_LIMIT`] members, so a reconnect storm into a
//!   room of 10,000 is 10,000 registrations, not 10,000² presence frames.
//! - **Routing.** [`Interest`] is told when the first local follower of a room (or connection of a
//!   user) arrives and the last one leaves, so the broker subscribes this node only to what it needs.
//! - **Nothing outlives its followers.** A room entry goes with its last follower, so a node's map holds
//!   the rooms followed now, not every room it ever followed.

mod cluster;
pub mod delivery;
mod fanout;
mod queue;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use indexmap::IndexMap;
use parking_lot::RwLock;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::domain::{NodeId, Room, RoomId, Seq, SessionId, User, UserId};
use super::ports::broker::BrokerEvent;
use super::presence::{Announce, Presence};
use queue::{Bounds, Outbox};

pub use super::presence::ConnId;
pub use delivery::{CloseReason, Delivery, EVENT_OVERHEAD, HubEvent, WireSlot};
pub use queue::{ConnControl, Empty, Inbox};

/// Rooms with more members than this get no `presence` events: telling every member of a room of
/// N about each connect would cost O(N) per connect and O(N²) in a reconnect storm. Their members'
/// online state comes with the member list (`Chat::members`), asked for when shown. A user who also
/// shares a smaller room with someone is still pushed to them through that room. Documented in
/// docs/PROTOCOL.md ("Presence").
pub const PRESENCE_ROOM_LIMIT: i64 = 500;

/// The default byte bound of a connection's queue (`--send-queue-bytes`).
pub const DEFAULT_QUEUE_BYTES: usize = 2 * 1024 * 1024;

/// Told when this node starts or stops needing a room's or a user's events (first local follower
/// in, last one out): per-room routing across nodes. Called under the hub's lock, so it must only
/// record the change and return.
pub trait Interest: Send + Sync + 'static {
    fn room(&self, room: RoomId, wanted: bool);
    fn user(&self, user: UserId, wanted: bool);
}

struct ConnEntry {
    profile: User,
    session: SessionId,
    out: Outbox,
    rooms: HashSet<RoomId>,
}

#[derive(Default)]
struct RoomSubs {
    /// Insertion-ordered for fast fan-out iteration; removal is `swap_remove`, O(1) whatever the size.
    subs: IndexMap<ConnId, Outbox>,
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

/// Everything the hub knows, under its one lock.
struct State {
    conns: HashMap<ConnId, ConnEntry>,
    /// Only rooms with at least one follower here (an entry goes with its last follower).
    rooms: HashMap<RoomId, RoomSubs>,
    /// Who is online: this node's users (with their connections) and those of other nodes.
    presence: Presence,
}

impl State {
    /// The rooms any of `conns` (a user's connections here) follow.
    fn rooms_of(&self, conns: &[ConnId]) -> HashSet<RoomId> {
        conns.iter().filter_map(|id| self.conns.get(id)).flat_map(|c| c.rooms.iter().copied()).collect()
    }
}

pub struct Hub {
    state: RwLock<State>,
    next_id: AtomicU64,
    /// Each connection's queue bounds, in deliveries and in bytes.
    bounds: Bounds,
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
    pub rx: Inbox,
    pub ctl: Arc<ConnControl>,
}

impl Registration {
    /// The connection took `d` from its queue: its bytes no longer count against the bound.
    pub fn took(&self, d: &Delivery) {
        self.ctl.took(d);
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.hub.unregister(self.id);
    }
}

impl Hub {
    /// A hub whose connections queue at most `queue_len` deliveries and [`DEFAULT_QUEUE_BYTES`].
    pub fn new(queue_len: usize, node: NodeId) -> Arc<Self> {
        Self::with_bounds(queue_len, DEFAULT_QUEUE_BYTES, node)
    }

    /// A hub whose connections queue at most `queue_len` deliveries and `queue_bytes` bytes (see
    /// [`Delivery::size`]); past either the connection is closed as too slow.
    pub fn with_bounds(queue_len: usize, queue_bytes: usize, node: NodeId) -> Arc<Self> {
        Arc::new(Hub {
            state: RwLock::new(State { conns: HashMap::new(), rooms: HashMap::new(), presence: Presence::new(node) }),
            next_id: AtomicU64::new(1),
            bounds: Bounds { deliveries: queue_len.max(1), bytes: queue_bytes.max(1) },
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
            st.presence.local().for_each(|(u, _)| interest.user(u, true));
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
        st.presence.local().map(|(uid, conns)| (uid, st.rooms_of(conns))).collect()
    }

    /// The rooms the connections of `user` here follow (`None` when the user has none here).
    pub fn rooms_of(&self, user: UserId) -> Option<HashSet<RoomId>> {
        let st = self.state.read();
        let conns = st.presence.conns(user);
        (!conns.is_empty()).then(|| st.rooms_of(conns))
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
        let ctl = Arc::new(ConnControl::default());
        if self.closing.is_cancelled() {
            ctl.close(CloseReason::ShuttingDown);
        }
        let mut st = self.state.write();
        if st.presence.connect(user, id) {
            self.interest_user(user, true);
        }
        let out = Outbox { ctl: ctl.clone() };
        st.conns.insert(id, ConnEntry { profile: profile.clone(), session, out, rooms: HashSet::new() });
        Registration { hub: self.clone(), id, rx: Inbox::new(ctl.clone()), ctl }
    }

    /// Makes connection `id` follow `rooms` (those it does not follow already). Registering first and
    /// following second means a join that happens in between is not missed.
    pub fn follow(&self, id: ConnId, rooms: &[Room]) {
        let mut st = self.state.write();
        let Some(entry) = st.conns.get_mut(&id) else { return };
        let out = entry.out.clone();
        let new: Vec<&Room> = rooms.iter().filter(|r| entry.rooms.insert(r.id)).collect();
        for r in new {
            self.add_sub(&mut st, r, id, &out);
        }
    }

    /// Adds connection `id` to `room`'s followers, telling [`Interest`] when it is the first.
    fn add_sub(&self, st: &mut State, room: &Room, id: ConnId, out: &Outbox) {
        let subs = st.rooms.entry(room.id).or_default();
        subs.saw(room);
        subs.subs.insert(id, out.clone());
        if subs.subs.len() == 1 {
            self.interest_room(room.id, true);
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

    fn unregister(&self, id: ConnId) {
        let mut st = self.state.write();
        let Some(entry) = st.conns.remove(&id) else { return };
        entry.out.detach();
        for room in &entry.rooms {
            self.drop_sub(&mut st, *room, id);
        }
        let Some(gone) = st.presence.disconnect(entry.profile.id, id) else { return };
        self.interest_user(entry.profile.id, false);
        if gone.announced {
            if gone.offline {
                let d = Delivery::new(HubEvent::Presence { user: entry.profile.clone(), online: false });
                self.best_effort(&st, entry.rooms.iter(), None, &d);
            }
            self.presence_changed(&entry.profile, &entry.rooms, false);
        }
    }

    /// Tells everyone sharing a room with connection `id`'s user that the user is online, unless they
    /// were told already (another connection of the user).
    pub fn announce_online(&self, id: ConnId) {
        let mut st = self.state.write();
        let Some(entry) = st.conns.get(&id) else { return };
        let (profile, rooms) = (entry.profile.clone(), entry.rooms.clone());
        let announce = st.presence.announce(profile.id);
        if announce == Announce::Already {
            return;
        }
        self.presence_changed(&profile, &rooms, true);
        if announce == Announce::Here {
            return; // online elsewhere already: nothing changes for others
        }
        let uid = profile.id;
        let d = Delivery::new(HubEvent::Presence { user: profile, online: true });
        self.best_effort(&st, rooms.iter(), Some(uid), &d);
    }

    /// Which of `users` have a live connection on this node or, as far as this node has heard, another.
    pub fn online(&self, users: impl IntoIterator<Item = UserId>) -> HashSet<UserId> {
        let st = self.state.read();
        users.into_iter().filter(|u| st.presence.online(*u)).collect()
    }

    /// Number of live connections (all users).
    pub fn connection_count(&self) -> usize {
        self.state.read().conns.len()
    }

    /// Closes every connection and refuses new ones (they are closed on arrival).
    pub fn close_all(&self, reason: CloseReason) {
        self.closing.cancel();
        for e in self.state.read().conns.values() {
            e.out.ctl.close(reason);
        }
    }
}
