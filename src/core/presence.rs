//! Presence as a table: who is online, here and on other nodes. Plain data: no I/O, no lock, no clock
//! of its own (the caller passes `now`). The hub keeps one inside its state, under its lock, and turns
//! what each change returns into deliveries and cluster events ([`super::hub`]).
//!
//! The rules it holds:
//! - A user is **online** while they have a connection here or, as far as this node has heard, on
//!   another node.
//! - A user's connections here are **announced** once (the first [`Presence::announce`]); their last
//!   connection going ends the announcement. The announced users make this node's heartbeat: a count
//!   and an XOR digest of their ids ([`user_digest`]), constant size whatever the node holds.
//! - Another node is known from its deltas ([`Presence::remote`]), snapshots ([`Presence::alive`]) and
//!   heartbeats ([`Presence::beat`]); a heartbeat that does not match the picture here asks for a
//!   snapshot. A node not heard from for the node TTL is forgotten with its users ([`Presence::expire`]).
//! - Events from this node itself (echoed by the broker) are ignored.
//! - Every change that flips a user's cluster-wide answer is returned as a [`Flip`] (with the rooms
//!   whose members it concerns), and only those: the hub pushes nothing else.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::domain::{NodeId, RoomId, User, UserId};
use super::ports::broker::user_digest;

/// A connection's id in the hub.
pub type ConnId = u64;

/// A user's cluster-wide answer changed: tell the members of `rooms` (except the user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flip {
    pub user: User,
    pub rooms: Vec<RoomId>,
    pub online: bool,
}

/// What [`Presence::announce`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Announce {
    /// Nothing: the user has no connection here, or was announced already.
    Already,
    /// Announced here, but the user was online elsewhere: other nodes hear of it, local rooms do not.
    Here,
    /// Announced here and the user was offline everywhere: the cluster-wide answer flipped to online.
    Online,
}

/// The last connection of a user here went (see [`Presence::disconnect`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastGone {
    /// Whether the user had been announced from here (so others must hear they left).
    pub announced: bool,
    /// Whether the user is now offline everywhere (the cluster-wide answer flipped).
    pub offline: bool,
}

#[derive(Default)]
struct Local {
    conns: Vec<ConnId>,
    announced: bool,
}

/// A user connected to other nodes: per node, the rooms whose members hear of them.
struct Remote {
    profile: User,
    nodes: HashMap<NodeId, Vec<RoomId>>,
}

/// Another node: when it was last heard from, and its users (with their digest, to compare with the
/// node's heartbeat).
struct Node {
    seen: Instant,
    users: HashSet<UserId>,
    digest: u64,
}

impl Node {
    fn new(now: Instant) -> Self {
        Node { seen: now, users: HashSet::new(), digest: 0 }
    }
}

/// The presence table of one node.
pub struct Presence {
    me: NodeId,
    local: HashMap<UserId, Local>,
    remote: HashMap<UserId, Remote>,
    nodes: HashMap<NodeId, Node>,
    /// XOR of [`user_digest`] over this node's announced users, and their count: its heartbeat.
    digest: u64,
    announced: u64,
}

impl Presence {
    /// The table of node `me` (whose own events, echoed back, are ignored).
    pub fn new(me: NodeId) -> Self {
        Presence { me, local: HashMap::new(), remote: HashMap::new(), nodes: HashMap::new(), digest: 0, announced: 0 }
    }

    /// Whether `user` is connected here or, as far as this node has heard, to another node.
    pub fn online(&self, user: UserId) -> bool {
        self.local.contains_key(&user) || self.remote.contains_key(&user)
    }

    /// Whether `user` is connected to another node (as far as this node has heard).
    pub fn elsewhere(&self, user: UserId) -> bool {
        self.remote.contains_key(&user)
    }

    /// The connections of `user` here, oldest first (empty when none).
    pub fn conns(&self, user: UserId) -> &[ConnId] {
        self.local.get(&user).map(|u| u.conns.as_slice()).unwrap_or_default()
    }

    /// Every user with a connection here, with their connections.
    pub fn local(&self) -> impl Iterator<Item = (UserId, &[ConnId])> {
        self.local.iter().map(|(id, u)| (*id, u.conns.as_slice()))
    }

    /// The users announced from here, with their connections: what a snapshot of this node lists.
    pub fn announced(&self) -> impl Iterator<Item = (UserId, &[ConnId])> {
        self.local.iter().filter(|(_, u)| u.announced).map(|(id, u)| (*id, u.conns.as_slice()))
    }

    /// This node's heartbeat: how many users are announced here, and their digest.
    pub fn heartbeat(&self) -> (u64, u64) {
        (self.announced, self.digest)
    }

    /// Connection `conn` of `user` arrived here; `true` when it is the user's first here.
    pub fn connect(&mut self, user: UserId, conn: ConnId) -> bool {
        let u = self.local.entry(user).or_default();
        u.conns.push(conn);
        u.conns.len() == 1
    }

    /// Connection `conn` of `user` went; `Some` when it was the user's last one here.
    pub fn disconnect(&mut self, user: UserId, conn: ConnId) -> Option<LastGone> {
        let u = self.local.get_mut(&user)?;
        u.conns.retain(|c| *c != conn);
        if !u.conns.is_empty() {
            return None;
        }
        let announced = u.announced;
        self.local.remove(&user);
        if announced {
            self.digest ^= user_digest(user);
            self.announced -= 1;
        }
        Some(LastGone { announced, offline: !self.online(user) })
    }

    /// Announces `user`'s connections here (once, whichever of them asks first).
    pub fn announce(&mut self, user: UserId) -> Announce {
        let Some(u) = self.local.get_mut(&user) else { return Announce::Already };
        if std::mem::replace(&mut u.announced, true) {
            return Announce::Already;
        }
        self.digest ^= user_digest(user);
        self.announced += 1;
        if self.remote.contains_key(&user) { Announce::Here } else { Announce::Online }
    }

    /// `node` says `user` is (or is no longer) connected there, heard by the members of `rooms`.
    pub fn remote(&mut self, node: NodeId, user: &User, rooms: &[RoomId], online: bool, now: Instant) -> Option<Flip> {
        if node == self.me {
            return None;
        }
        self.set_remote(node, user, rooms, online, now)
    }

    /// `node`'s snapshot: exactly `users` are connected there. It is alive as of `now`.
    pub fn alive(&mut self, node: NodeId, users: &[(User, Vec<RoomId>)], now: Instant) -> Vec<Flip> {
        if node == self.me {
            return Vec::new();
        }
        let before = self.nodes.get(&node).map(|n| n.users.clone()).unwrap_or_default();
        let mut flips: Vec<Flip> =
            users.iter().filter_map(|(user, rooms)| self.set_remote(node, user, rooms, true, now)).collect();
        let listed: HashSet<UserId> = users.iter().map(|(u, _)| u.id).collect();
        for uid in before.difference(&listed) {
            flips.extend(self.forget(node, *uid, now));
        }
        if let Some(n) = self.nodes.get_mut(&node) {
            n.seen = now;
        }
        flips
    }

    /// `node`'s heartbeat: it is alive as of `now`, with `users` users whose digest is `digest`.
    /// `true` when that is not the picture here (ask it for a snapshot).
    pub fn beat(&mut self, node: NodeId, users: u64, digest: u64, now: Instant) -> bool {
        if node == self.me {
            return false;
        }
        let known = self.nodes.entry(node).or_insert_with(|| Node::new(now));
        known.seen = now;
        known.users.len() as u64 != users || known.digest != digest
    }

    /// Forgets the nodes not heard from for more than `ttl` before `now`, with their users: how many
    /// nodes went, and whose answer flipped to offline.
    pub fn expire(&mut self, ttl: Duration, now: Instant) -> (usize, Vec<Flip>) {
        let gone: Vec<NodeId> =
            self.nodes.iter().filter(|(_, n)| now.saturating_duration_since(n.seen) > ttl).map(|(id, _)| *id).collect();
        let mut flips = Vec::new();
        for node in &gone {
            let users = self.nodes.get(node).map(|n| n.users.clone()).unwrap_or_default();
            for uid in users {
                flips.extend(self.forget(*node, uid, now));
            }
            self.nodes.remove(node);
        }
        (gone.len(), flips)
    }

    /// `uid` is no longer on `node` (it said so, or it went silent).
    fn forget(&mut self, node: NodeId, uid: UserId, now: Instant) -> Option<Flip> {
        let (profile, rooms) =
            self.remote.get(&uid).map(|r| (r.profile.clone(), r.nodes.get(&node).cloned().unwrap_or_default()))?;
        self.set_remote(node, &profile, &rooms, false, now)
    }

    /// Records that `user` is (or is no longer) connected to `node`; the flip when that changes the
    /// cluster-wide answer.
    fn set_remote(&mut self, node: NodeId, user: &User, rooms: &[RoomId], online: bool, now: Instant) -> Option<Flip> {
        let uid = user.id;
        let before = self.online(uid);
        let known = self.nodes.entry(node).or_insert_with(|| Node::new(now));
        if online {
            if known.users.insert(uid) {
                known.digest ^= user_digest(uid);
            }
            let r = self.remote.entry(uid).or_insert_with(|| Remote { profile: user.clone(), nodes: HashMap::new() });
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
        let after = self.online(uid);
        (before != after).then(|| Flip { user: user.clone(), rooms: rooms.to_vec(), online: after })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: i64) -> User {
        User { id: UserId(id), username: format!("u{id}"), display_name: format!("U{id}") }
    }

    fn flip(id: i64, rooms: &[i64], online: bool) -> Flip {
        Flip { user: user(id), rooms: rooms.iter().map(|r| RoomId(*r)).collect(), online }
    }

    const ME: NodeId = NodeId(1);
    const OTHER: NodeId = NodeId(2);
    const THIRD: NodeId = NodeId(3);

    #[test]
    fn a_local_user_is_online_from_the_first_connection_to_the_last() {
        let mut p = Presence::new(ME);
        assert!(!p.online(UserId(7)));
        assert!(p.connect(UserId(7), 1));
        assert!(p.online(UserId(7)), "online once connected, announced or not");
        assert_eq!(p.announce(UserId(7)), Announce::Online);
        assert_eq!(p.heartbeat(), (1, user_digest(UserId(7))));
        assert_eq!(p.disconnect(UserId(7), 1), Some(LastGone { announced: true, offline: true }));
        assert!(!p.online(UserId(7)));
        assert_eq!(p.heartbeat(), (0, 0));
        assert_eq!(p.disconnect(UserId(7), 1), None, "unknown: nothing");
    }

    #[test]
    fn several_connections_of_one_user_announce_once_and_leave_once() {
        let mut p = Presence::new(ME);
        assert!(p.connect(UserId(7), 1));
        assert!(!p.connect(UserId(7), 2), "not the first");
        assert_eq!(p.announce(UserId(7)), Announce::Online);
        assert_eq!(p.announce(UserId(7)), Announce::Already, "the second connection's announcement");
        assert_eq!(p.conns(UserId(7)), &[1, 2]);
        assert_eq!(p.disconnect(UserId(7), 1), None, "still one connection");
        assert!(p.online(UserId(7)));
        assert_eq!(p.heartbeat().0, 1);
        assert_eq!(p.disconnect(UserId(7), 2), Some(LastGone { announced: true, offline: true }));
        assert_eq!(p.heartbeat(), (0, 0));
        assert!(p.conns(UserId(7)).is_empty());
        // Never announced: its going concerns nobody else.
        p.connect(UserId(8), 3);
        assert_eq!(p.announce(UserId(9)), Announce::Already, "not connected here");
        assert_eq!(p.disconnect(UserId(8), 3), Some(LastGone { announced: false, offline: true }));
        assert_eq!(p.heartbeat(), (0, 0));
    }

    #[test]
    fn a_user_on_several_nodes_is_online_until_the_last_one_goes() {
        let now = Instant::now();
        let mut p = Presence::new(ME);
        assert_eq!(p.remote(OTHER, &user(7), &[RoomId(1)], true, now), Some(flip(7, &[1], true)));
        assert_eq!(p.remote(OTHER, &user(7), &[RoomId(1)], true, now), None, "a repeat changes nothing");
        assert_eq!(p.remote(THIRD, &user(7), &[RoomId(2)], true, now), None, "online already");
        assert!(p.elsewhere(UserId(7)));
        // Connected here too: announced here, but nobody's answer changes.
        p.connect(UserId(7), 1);
        assert_eq!(p.announce(UserId(7)), Announce::Here);
        assert_eq!(p.remote(OTHER, &user(7), &[RoomId(1)], false, now), None);
        assert_eq!(p.disconnect(UserId(7), 1), Some(LastGone { announced: true, offline: false }));
        assert_eq!(p.remote(THIRD, &user(7), &[RoomId(2)], false, now), Some(flip(7, &[2], false)));
        assert!(!p.online(UserId(7)));
        // This node's own events, echoed back, are ignored.
        assert_eq!(p.remote(ME, &user(8), &[], true, now), None);
        assert!(!p.online(UserId(8)));
    }

    #[test]
    fn a_snapshot_replaces_the_picture_of_a_node() {
        let now = Instant::now();
        let mut p = Presence::new(ME);
        p.remote(OTHER, &user(7), &[RoomId(1)], true, now);
        let flips = p.alive(OTHER, &[(user(8), vec![RoomId(2)])], now);
        assert_eq!(flips, vec![flip(8, &[2], true), flip(7, &[1], false)]);
        assert!(p.online(UserId(8)) && !p.online(UserId(7)));
        assert!(p.alive(ME, &[(user(9), vec![])], now).is_empty(), "its own snapshot: ignored");
        assert!(!p.online(UserId(9)));
    }

    #[test]
    fn a_heartbeat_that_does_not_match_asks_for_a_snapshot() {
        let now = Instant::now();
        let mut p = Presence::new(ME);
        let digest = user_digest(UserId(7)) ^ user_digest(UserId(8));
        assert!(p.beat(OTHER, 2, digest, now), "a node not known yet");
        p.alive(OTHER, &[(user(7), vec![]), (user(8), vec![])], now);
        assert!(!p.beat(OTHER, 2, digest, now), "the same picture");
        assert!(p.beat(OTHER, 2, user_digest(UserId(7)) ^ user_digest(UserId(9)), now), "same count, other users");
        assert!(!p.beat(ME, 5, 5, now), "its own beat");
    }

    #[test]
    fn a_silent_node_expires_with_its_users() {
        let t0 = Instant::now();
        let ttl = Duration::from_secs(30);
        let mut p = Presence::new(ME);
        p.remote(OTHER, &user(7), &[RoomId(1)], true, t0);
        p.remote(THIRD, &user(8), &[RoomId(2)], true, t0);
        p.remote(THIRD, &user(7), &[RoomId(3)], true, t0);
        // Node three keeps beating; node two goes silent.
        let later = t0 + Duration::from_secs(20);
        p.beat(THIRD, 2, user_digest(UserId(7)) ^ user_digest(UserId(8)), later);
        assert_eq!(p.expire(ttl, t0 + ttl), (0, vec![]), "at the TTL, not past it");
        let (gone, flips) = p.expire(ttl, t0 + ttl + Duration::from_secs(1));
        assert_eq!(gone, 1);
        assert!(flips.is_empty(), "user 7 is still on node three: {flips:?}");
        assert!(p.online(UserId(7)));
        let (gone, mut flips) = p.expire(ttl, later + ttl + Duration::from_secs(1));
        assert_eq!(gone, 1);
        flips.sort_by_key(|f| f.user.id);
        assert_eq!(flips, vec![flip(7, &[3], false), flip(8, &[2], false)]);
        assert!(!p.online(UserId(7)) && !p.online(UserId(8)));
        // A beat brings a node back, with nobody until its snapshot.
        assert!(p.beat(OTHER, 1, user_digest(UserId(7)), later + ttl * 2));
        assert!(!p.online(UserId(7)));
    }
}
