//! Presence across nodes: what this node tells the others (its presence changes, heartbeats,
//! snapshots) and what it hears from them, applied to the presence table
//! ([`crate::core::presence::Presence`]) whose flips are pushed to local followers.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::{Delivery, Hub, HubEvent, State};
use crate::core::domain::{NodeId, RoomId, User};
use crate::core::ports::broker::BrokerEvent;
use crate::core::presence::Flip;

impl Hub {
    /// This node's presence changes (a user's first connection here, their last one gone) and answers
    /// to snapshot requests, as events to publish to other nodes. At most `cap` wait; past that they are
    /// dropped, and the next heartbeat ([`Hub::beat`]) shows the others a different digest, so they ask
    /// for a snapshot ([`Hub::local_users`]) that repairs the picture. Call once.
    pub fn presence_changes(&self, cap: usize) -> mpsc::Receiver<BrokerEvent> {
        let (tx, rx) = mpsc::channel(cap.max(1));
        let _ = self.changes.set(tx);
        rx
    }

    pub(super) fn presence_changed(&self, user: &User, rooms: &HashSet<RoomId>, online: bool) {
        if self.changes.get().is_some() {
            let rooms = rooms.iter().copied().collect();
            self.send_change(BrokerEvent::Presence { node: self.node, user: user.clone(), rooms, online });
        }
    }

    fn send_change(&self, event: BrokerEvent) {
        if let Some(tx) = self.changes.get() {
            let _ = tx.try_send(event);
        }
    }

    /// The users connected to this node, with the rooms their connections follow: this node's heartbeat.
    pub fn local_users(&self) -> Vec<(User, Vec<RoomId>)> {
        let st = self.state.read();
        st.presence
            .announced()
            .filter_map(|(_, conns)| {
                let profile = conns.iter().find_map(|id| st.conns.get(id))?.profile.clone();
                Some((profile, st.rooms_of(conns).into_iter().collect()))
            })
            .collect()
    }

    /// This node's compact heartbeat: how many users are announced here and their digest.
    pub fn beat(&self) -> BrokerEvent {
        let (users, digest) = self.state.read().presence.heartbeat();
        BrokerEvent::NodeBeat { node: self.node, users, digest }
    }

    /// `node` says it has `users` users with `digest`: it is alive; when that is not the picture here,
    /// ask it for a snapshot.
    pub(super) fn node_beat(&self, node: NodeId, users: u64, digest: u64) {
        let differs = self.state.write().presence.beat(node, users, digest, Instant::now());
        if differs {
            metrics::counter!("parley_presence_snapshots_wanted_total").increment(1);
            self.send_change(BrokerEvent::SnapshotWanted { of: node });
        }
    }

    /// Some node asks for a snapshot of node `of`: answered if that is this node.
    pub(super) fn snapshot_wanted(&self, of: NodeId) {
        if of == self.node {
            self.send_change(BrokerEvent::NodeAlive { node: self.node, users: self.local_users() });
        }
    }

    /// Forgets nodes not heard from for `ttl`: their users go offline (where not connected elsewhere).
    pub fn expire_nodes(&self, ttl: Duration) -> usize {
        let mut st = self.state.write();
        let (gone, flips) = st.presence.expire(ttl, Instant::now());
        self.push_flips(&st, flips);
        gone
    }

    pub(super) fn remote_presence(&self, node: NodeId, user: &User, rooms: &[RoomId], online: bool) {
        let mut st = self.state.write();
        let flip = st.presence.remote(node, user, rooms, online, Instant::now());
        self.push_flips(&st, flip);
    }

    pub(super) fn node_alive(&self, node: NodeId, users: &[(User, Vec<RoomId>)]) {
        let mut st = self.state.write();
        let flips = st.presence.alive(node, users, Instant::now());
        self.push_flips(&st, flips);
    }

    /// Tells the local followers of each flip's rooms (except the user) that its user came or went.
    fn push_flips(&self, st: &State, flips: impl IntoIterator<Item = Flip>) {
        for Flip { user, rooms, online } in flips {
            let uid = user.id;
            let d = Delivery::new(HubEvent::Presence { user, online });
            self.best_effort(st, rooms.iter(), Some(uid), &d);
        }
    }
}
