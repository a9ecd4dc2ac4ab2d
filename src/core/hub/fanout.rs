//! Fan-out: what the broker hands the hub, delivered to the connections it concerns. Messages and
//! updates go to a room's followers (closing whoever's queue is full), personal events to a user's
//! connections, ephemera (typing, presence) only where a queue has room to spare.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{CloseReason, ConnId, Delivery, Hub, HubEvent, State};
use crate::core::domain::{Message, Room, RoomId, SessionId, User, UserId};
use crate::core::ports::broker::{BrokerEvent, BrokerSink};

impl Hub {
    /// Delivers `d` once to every connection following any of `rooms` (except `skip_user`'s), only where
    /// the queue has room to spare: ephemeral events are the first thing a slow client loses.
    pub(super) fn best_effort<'a>(
        &self,
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
            for (cid, out) in &subs.subs {
                if !seen.insert(*cid) || skip_user.is_some_and(|u| st.conns.get(cid).is_some_and(|c| c.profile.id == u))
                {
                    continue;
                }
                if out.has_room_to_spare(self.bounds) {
                    out.push(d, self.bounds);
                } else {
                    dropped += 1;
                }
            }
        }
        if dropped > 0 {
            metrics::counter!("parley_ephemeral_dropped_total").increment(dropped);
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
            for (id, out) in &subs.subs {
                if !out.push(&d, self.bounds) {
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
            for id in st.presence.conns(user) {
                if let Some(c) = st.conns.get(id)
                    && !c.out.push(&d, self.bounds)
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
                    e.out.ctl.close(reason);
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
            let ids = st.presence.conns(user).to_vec();
            let d = Delivery::new(if joined { HubEvent::Joined(room.clone()) } else { HubEvent::Left(room.id) });
            for id in ids {
                let Some(entry) = st.conns.get_mut(&id) else { continue };
                let out = entry.out.clone();
                let changed = if joined { entry.rooms.insert(room.id) } else { entry.rooms.remove(&room.id) };
                if changed {
                    if joined {
                        self.add_sub(&mut st, room, id, &out);
                    } else {
                        self.drop_sub(&mut st, room.id, id);
                    }
                }
                if let Some(subs) = st.rooms.get(&room.id) {
                    subs.saw(room);
                }
                if !out.push(&d, self.bounds) {
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
        let own = st.presence.conns(uid).to_vec();
        let mut rooms = HashSet::new();
        for id in &own {
            if let Some(c) = st.conns.get_mut(id) {
                c.profile = user.clone();
                rooms.extend(c.rooms.iter().copied());
                // The user's own connections must learn it (they send as this user): not best effort.
                c.out.push(&d, self.bounds);
            }
        }
        self.best_effort(&st, rooms.iter(), Some(uid), &d);
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
                self.best_effort(&self.state.read(), std::iter::once(&room), Some(uid), &d);
            }
            BrokerEvent::Presence { node, user, rooms, online } => self.remote_presence(node, &user, &rooms, online),
            BrokerEvent::NodeAlive { node, users } => self.node_alive(node, &users),
            BrokerEvent::Convo(e) => self.fan_out(e.room(), Delivery::new(HubEvent::Convo(e))),
            BrokerEvent::UserConvo { user, event } => self.to_user(user, Delivery::new(HubEvent::Convo(event))),
            BrokerEvent::NodeBeat { node, users, digest } => self.node_beat(node, users, digest),
            BrokerEvent::SnapshotWanted { of } => self.snapshot_wanted(of),
        }
    }
}
