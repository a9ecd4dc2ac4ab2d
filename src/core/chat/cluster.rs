//! Connections and several nodes: registering a live connection with the hub, resynchronising from the
//! store after the broker may have lost events, catching up what the broker starts routing here, and
//! this node's part in cluster presence.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::info;

use super::{Chat, Identity};
use crate::core::domain::*;
use crate::core::error::Result;
use crate::core::hub::Registration;
use crate::core::ports::broker::{BrokerEvent, BrokerSink as _, CatchUp};

impl Chat {
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

    /// Brings this node's live connections up to date from the store, after the broker may have lost
    /// events (it reconnected): sessions ended, memberships changed and messages stored meanwhile. For
    /// messages it is enough to hand each room's latest one to the hub: a connection that is behind sees
    /// a gap and fills it from the store (`core::cursor`).
    pub async fn resync(&self) -> Result<()> {
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
        catch_up: Option<Arc<CatchUp>>,
        stop: tokio_util::sync::CancellationToken,
    ) {
        let next_catch_up = async |c: &Option<Arc<CatchUp>>| match c {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::hub::{CloseReason, HubEvent};
    use crate::core::ports::store::{DynStore, Session};
    use crate::testing::MemoryStore;

    fn chat(store: DynStore) -> Chat {
        crate::core::chat::testing::chat(store)
    }

    async fn user(store: &DynStore, name: &str) -> User {
        let display = DisplayName::parse(name).unwrap();
        store.create_user(&Username::parse(name).unwrap(), &display, "unused", now_millis()).await.unwrap()
    }

    #[tokio::test]
    async fn resync_recovers_messages_memberships_and_sessions_the_broker_lost() {
        let store: DynStore = Arc::new(MemoryStore::new());
        let chat = chat(store.clone());
        let (owner, bob) = (user(&store, "owner").await, user(&store, "bob").await);
        let room = store
            .create_room(&RoomName::parse("quiet").unwrap(), Visibility::Public, owner.id, now_millis())
            .await
            .unwrap();
        store.add_member(room.id, bob.id, Role::Member, now_millis()).await.unwrap();
        let session =
            Session { id: SessionId::generate(), user: bob.id, expires_at: now_millis() + 60_000, revoked: false };
        store.create_session(&session, now_millis()).await.unwrap();
        let who = Identity { user: bob.clone(), session: session.id.clone(), expires_at: session.expires_at };
        let (mut reg, _) = chat.connect(&who).await.unwrap();

        // Each change below reaches only the store, as when the broker's events were lost.
        let msg = NewMessage::test_text(room.id, &owner, "while you were away", None);
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
        let room = store
            .create_room(&RoomName::parse("late").unwrap(), Visibility::Public, owner.id, now_millis())
            .await
            .unwrap();
        let other = store
            .create_room(&RoomName::parse("other").unwrap(), Visibility::Public, owner.id, now_millis())
            .await
            .unwrap();
        store.add_member(room.id, bob.id, Role::Member, now_millis()).await.unwrap();
        let who = Identity { user: bob.clone(), session: SessionId::generate(), expires_at: now_millis() + 60_000 };
        let (mut reg, _) = chat.connect(&who).await.unwrap();
        let msg = NewMessage::test_text(room.id, &owner, "published before the subscription", None);
        let stored = store.append(&[msg]).await.unwrap();
        store.add_member(other.id, bob.id, Role::Member, now_millis()).await.unwrap();
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
}
