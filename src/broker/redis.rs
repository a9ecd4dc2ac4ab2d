//! The multi-node broker: Redis pub/sub, routed per room.
//!
//! Why it looks like this:
//! - **Local first.** `publish` hands the event to this node's hub at once, then queues it for Redis.
//!   A node's own clients never wait on Redis, and keep chatting if it goes away.
//! - **Per-room routing.** A room's events go to channel `{prefix}:r:{room}`, a user's own events
//!   (joined, left, read position) to `{prefix}:u:{user}`, and the rest (sessions ended, profile
//!   changes, presence, heartbeats) to `{prefix}:events`. A node subscribes to a room's channel only
//!   while it has a local follower of the room, and to a user's while that user has a connection here
//!   (the hub tells it through [`Interest`]), so a node does no work at all for a room nobody
//!   follows on it. Subscription changes are coalesced into a wanted set that the subscriber task
//!   brings Redis up to; when Redis confirms new subscriptions, the rooms and users are handed to
//!   [`CatchUp`] and the node reads from the store whatever was published before (`Chat::catch_up`),
//!   so no message falls into the window between following and subscribing.
//! - **One publisher, one subscriber connection per node.** The publisher task drains a bounded queue
//!   and pipelines `PUBLISH`es, in queue order, so per node the others see events in publish order (and
//!   messages of a room in `seq` order, since the ingest writer publishes in commit order). When Redis
//!   is unreachable it retries the same batch with backoff; when the queue is full, new events are
//!   dropped (and counted in the log): every lost message is recovered from the store.
//! - **Redis is not the record.** After the subscriber (re)connects it bumps [`Broker::reconnects`],
//!   and the node resynchronises from the store (`Chat::resync`): messages, memberships, sessions.
//!   Between reconnects, a connection that sees a gap in a room fills it from the store.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::{Broker, BrokerEvent, BrokerSink, CatchUp, Interest, codec};
use crate::core::domain::{NodeId, RoomId, UserId};
use crate::core::error::{Error, Result};

/// Events waiting for Redis, per node.
const PUBLISH_QUEUE: usize = 65_536;
/// `PUBLISH`es per pipeline round trip.
const PUBLISH_BATCH: usize = 256;
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Channels per `SUBSCRIBE`/`UNSUBSCRIBE` command.
const SUBSCRIBE_BATCH: usize = 512;

type Sink = Arc<OnceLock<Arc<dyn BrokerSink>>>;

pub struct RedisBroker {
    node: NodeId,
    sink: Sink,
    out: mpsc::Sender<(String, Vec<u8>)>,
    conn: ConnectionManager,
    reconnects: watch::Receiver<u64>,
    routes: Arc<Routes>,
    catch_up: Arc<CatchUp>,
    channels: Channels,
    stop: CancellationToken,
}

/// Channel names of one cluster (one `--redis-prefix`).
#[derive(Clone)]
struct Channels {
    prefix: String,
}

impl Channels {
    fn general(&self) -> String {
        format!("{}:events", self.prefix)
    }
    fn room(&self, room: RoomId) -> String {
        format!("{}:r:{}", self.prefix, room.0)
    }
    fn user(&self, user: UserId) -> String {
        format!("{}:u:{}", self.prefix, user.0)
    }
    /// The one channel `event` goes to.
    fn of(&self, event: &BrokerEvent) -> String {
        match event {
            BrokerEvent::Message(m) | BrokerEvent::Updated(m) => self.room(m.room),
            BrokerEvent::RoomUpdated(r) => self.room(r.id),
            BrokerEvent::Typing { room, .. } => self.room(*room),
            BrokerEvent::Convo(e) => self.room(e.room()),
            BrokerEvent::UserConvo { user, .. } => self.user(*user),
            BrokerEvent::Joined { user, .. }
            | BrokerEvent::Left { user, .. }
            | BrokerEvent::Read { user, .. }
            | BrokerEvent::Invited { user, .. } => self.user(*user),
            BrokerEvent::SessionEnded(_)
            | BrokerEvent::UserUpdated(_)
            | BrokerEvent::Presence { .. }
            | BrokerEvent::NodeAlive { .. }
            | BrokerEvent::NodeBeat { .. }
            | BrokerEvent::SnapshotWanted { .. } => self.general(),
        }
    }
}

/// The rooms and users this node wants events of (set by the hub through [`Interest`]).
#[derive(Default)]
struct Routes {
    wanted: parking_lot::Mutex<Wanted>,
    changed: tokio::sync::Notify,
}

#[derive(Default, Clone)]
struct Wanted {
    rooms: HashSet<RoomId>,
    users: HashSet<UserId>,
}

impl Interest for Routes {
    fn room(&self, room: RoomId, wanted: bool) {
        let mut w = self.wanted.lock();
        if wanted {
            w.rooms.insert(room)
        } else {
            w.rooms.remove(&room)
        };
        self.changed.notify_one();
    }
    fn user(&self, user: UserId, wanted: bool) {
        let mut w = self.wanted.lock();
        if wanted {
            w.users.insert(user)
        } else {
            w.users.remove(&user)
        };
        self.changed.notify_one();
    }
}

impl RedisBroker {
    /// Connects to `url` and starts the publisher and subscriber tasks; channel names start with
    /// `{prefix}:`, so several clusters (or test runs) can share one Redis.
    pub async fn connect(url: &str, prefix: &str, node: NodeId) -> anyhow::Result<Self> {
        use anyhow::Context;
        let client = redis::Client::open(url).context("parsing the Redis URL")?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(1)
            .set_max_delay(MAX_BACKOFF);
        let conn = client.get_connection_manager_with_config(config).await.context("connecting to Redis")?;
        let channels = Channels { prefix: prefix.to_owned() };
        let (out, rx) = mpsc::channel(PUBLISH_QUEUE);
        let (bump, reconnects) = watch::channel(0);
        let stop = CancellationToken::new();
        let sink: Sink = Arc::default();
        let routes = Arc::new(Routes::default());
        let catch_up = Arc::new(CatchUp::default());
        tokio::spawn(publisher(conn.clone(), rx, stop.clone()));
        tokio::spawn(subscriber(Subscriber {
            client,
            channels: channels.clone(),
            node,
            sink: sink.clone(),
            bump,
            routes: routes.clone(),
            catch_up: catch_up.clone(),
            stop: stop.clone(),
        }));
        Ok(RedisBroker { node, sink, out, conn, reconnects, routes, catch_up, channels, stop })
    }
}

impl Drop for RedisBroker {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[async_trait]
impl Broker for RedisBroker {
    fn attach(&self, sink: Arc<dyn BrokerSink>) {
        let _ = self.sink.set(sink);
    }

    async fn publish(&self, event: BrokerEvent) -> Result<()> {
        let bytes = codec::encode(self.node, &event);
        let event_channel = event.clone();
        let local = !matches!(
            event,
            BrokerEvent::Presence { .. }
                | BrokerEvent::NodeAlive { .. }
                | BrokerEvent::NodeBeat { .. }
                | BrokerEvent::SnapshotWanted { .. }
        );
        if local && let Some(sink) = self.sink.get() {
            sink.deliver(event);
        }
        if self.out.try_send((self.channels.of(&event_channel), bytes)).is_err() {
            // Other nodes recover it from the store after Redis comes back.
            debug!("redis publish queue full; event dropped");
        }
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        let mut conn = self.conn.clone();
        redis::cmd("PING").query_async::<()>(&mut conn).await.map_err(|e| {
            debug!(error = %e, "redis ping failed");
            Error::Unavailable
        })
    }

    fn distributed(&self) -> bool {
        true
    }

    fn reconnects(&self) -> Option<watch::Receiver<u64>> {
        Some(self.reconnects.clone())
    }

    fn interest(&self) -> Option<Arc<dyn Interest>> {
        Some(self.routes.clone())
    }

    fn catch_up(&self) -> Option<Arc<CatchUp>> {
        Some(self.catch_up.clone())
    }
}

/// Sleeps for `d` unless stopped first; false when stopped.
async fn pause(stop: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = stop.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}

async fn publisher(mut conn: ConnectionManager, mut rx: mpsc::Receiver<(String, Vec<u8>)>, stop: CancellationToken) {
    let mut batch = Vec::with_capacity(PUBLISH_BATCH);
    while rx.recv_many(&mut batch, PUBLISH_BATCH).await > 0 {
        let mut pipe = redis::pipe();
        for (channel, payload) in &batch {
            pipe.cmd("PUBLISH").arg(channel).arg(payload.as_slice()).ignore();
        }
        let mut backoff = Duration::from_millis(50);
        let mut failing = false;
        loop {
            match pipe.query_async::<()>(&mut conn).await {
                Ok(()) => break,
                Err(e) => {
                    if !failing {
                        warn!(error = %e, events = batch.len(), "publishing to Redis failed; retrying");
                        failing = true;
                    }
                    if !pause(&stop, backoff).await {
                        return;
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        if failing {
            info!("publishing to Redis again");
        }
        batch.clear();
    }
}

struct Subscriber {
    client: redis::Client,
    channels: Channels,
    node: NodeId,
    sink: Sink,
    bump: watch::Sender<u64>,
    routes: Arc<Routes>,
    catch_up: Arc<CatchUp>,
    stop: CancellationToken,
}

/// Subscribes to or unsubscribes from `channels`, in batches.
async fn change(sink: &mut redis::aio::PubSubSink, channels: Vec<String>, on: bool) -> redis::RedisResult<()> {
    for chunk in channels.chunks(SUBSCRIBE_BATCH) {
        if on {
            sink.subscribe(chunk).await?;
        } else {
            sink.unsubscribe(chunk).await?;
        }
    }
    Ok(())
}

/// Brings the subscriptions from `have` to what `routes` wants; the newly subscribed rooms and users go
/// to catch up.
async fn reroute(
    s: &Subscriber,
    sink: &mut redis::aio::PubSubSink,
    have: &mut Wanted,
    catch_up: bool,
) -> redis::RedisResult<()> {
    let want = s.routes.wanted.lock().clone();
    let new_rooms: Vec<RoomId> = want.rooms.difference(&have.rooms).copied().collect();
    let new_users: Vec<UserId> = want.users.difference(&have.users).copied().collect();
    let old: Vec<String> = (have.rooms.difference(&want.rooms).map(|r| s.channels.room(*r)))
        .chain(have.users.difference(&want.users).map(|u| s.channels.user(*u)))
        .collect();
    let new: Vec<String> =
        (new_rooms.iter().map(|r| s.channels.room(*r))).chain(new_users.iter().map(|u| s.channels.user(*u))).collect();
    if !old.is_empty() {
        change(sink, old, false).await?;
        have.rooms.retain(|r| want.rooms.contains(r));
        have.users.retain(|u| want.users.contains(u));
    }
    if !new.is_empty() {
        change(sink, new, true).await?;
        have.rooms.extend(new_rooms.iter().copied());
        have.users.extend(new_users.iter().copied());
        if catch_up {
            s.catch_up.add(new_rooms, new_users);
        }
    }
    Ok(())
}

async fn subscriber(s: Subscriber) {
    let mut backoff = Duration::from_millis(50);
    let mut connected_before = false;
    loop {
        let mut have = Wanted::default();
        let subscribed = async {
            let (mut sink, stream) = s.client.get_async_pubsub().await?.split();
            sink.subscribe(s.channels.general()).await?;
            // Everything wanted now; the full resync below covers what was missed before.
            reroute(&s, &mut sink, &mut have, false).await?;
            Ok::<_, redis::RedisError>((sink, stream))
        };
        let ps = tokio::select! {
            _ = s.stop.cancelled() => return,
            r = subscribed => r,
        };
        match ps {
            Ok((mut sink, mut stream)) => {
                backoff = Duration::from_millis(50);
                if connected_before {
                    info!("Redis subscription restored; resynchronising from the store");
                }
                connected_before = true;
                // After subscribing, so that whatever the resync misses arrives through the channel.
                s.bump.send_modify(|n| *n += 1);
                loop {
                    let msg = tokio::select! {
                        _ = s.stop.cancelled() => return,
                        _ = s.routes.changed.notified() => {
                            if let Err(e) = reroute(&s, &mut sink, &mut have, true).await {
                                debug!(error = %e, "changing Redis subscriptions failed");
                                break;
                            }
                            continue;
                        }
                        m = stream.next() => m,
                    };
                    let Some(msg) = msg else { break };
                    match codec::decode(msg.get_payload_bytes()) {
                        Ok((from, _)) if from == s.node => {}
                        Ok((_, event)) => {
                            if let Some(sink) = s.sink.get() {
                                metrics::counter!("parley_broker_received_total").increment(1);
                                sink.deliver(event);
                            }
                        }
                        Err(why) => warn!(%why, "ignoring an event this node cannot read"),
                    }
                }
                warn!("lost the Redis subscription; reconnecting");
            }
            Err(e) => debug!(error = %e, "subscribing to Redis failed"),
        }
        if !pause(&s.stop, backoff).await {
            return;
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::domain::{Message, MessageKind};

    #[derive(Default)]
    struct Seen(parking_lot::Mutex<Vec<(i64, i64)>>);
    impl BrokerSink for Seen {
        fn deliver(&self, event: BrokerEvent) {
            if let BrokerEvent::Message(m) = event {
                self.0.lock().push((m.room.0, m.seq));
            }
        }
    }

    fn msg(room: i64, seq: i64) -> BrokerEvent {
        BrokerEvent::Message(Arc::new(Message {
            room: RoomId(room),
            seq,
            kind: MessageKind::Text,
            sender: None,
            target: None,
            body: String::new(),
            client_id: None,
            mentions: vec![],
            ts: 0,
            edited_at: None,
            deleted: false,
            files: vec![],
            reply_to: None,
            thread: None,
            extras: Default::default(),
        }))
    }

    async fn until(what: &str, mut ok: impl FnMut() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !ok() {
            assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits (bounded) until `catch_up` has named `room`.
    async fn caught_up(catch_up: &CatchUp, room: RoomId) {
        tokio::time::timeout(Duration::from_secs(10), async { while !catch_up.next().await.0.contains(&room) {} })
            .await
            .expect("the catch-up signal");
    }

    /// Node B's broker receives nothing of a room it has no follower of; once it has one, Redis confirms
    /// the subscription (the documented window: one round trip), B is told to catch up from the store,
    /// and everything published after that reaches it.
    #[tokio::test]
    async fn a_node_receives_a_rooms_events_only_while_it_follows_the_room() {
        let Ok(url) = std::env::var("PARLEY_TEST_REDIS_URL") else {
            eprintln!("SKIPPED: set PARLEY_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379) to run it");
            return;
        };
        let prefix = format!("parley-test-{}", hex::encode(rand::random::<[u8; 6]>()));
        let a = RedisBroker::connect(&url, &prefix, NodeId(1)).await.unwrap();
        let b = RedisBroker::connect(&url, &prefix, NodeId(2)).await.unwrap();
        let seen = Arc::new(Seen::default());
        a.attach(Arc::new(Seen::default()));
        b.attach(seen.clone());
        // Room 2 is followed on B from the start: the marker that B's subscriber is live.
        b.interest().unwrap().room(RoomId(2), true);
        let catch_up = b.catch_up().unwrap();
        let mut marker = 0;
        until("b to follow room 2", || {
            marker += 1;
            let _ = a.out.try_send((a.channels.of(&msg(2, marker)), codec::encode(NodeId(1), &msg(2, marker))));
            !seen.0.lock().is_empty()
        })
        .await;
        for seq in 1..=50 {
            a.publish(msg(1, seq)).await.unwrap();
        }
        // Behind room 1's 50 events, one more of room 2: once it is in, the 50 were passed over.
        let before = seen.0.lock().len();
        a.publish(msg(2, 1_000)).await.unwrap();
        until("the marker", || seen.0.lock().len() > before).await;
        assert!(seen.0.lock().iter().all(|(room, _)| *room == 2), "{:?}", seen.0.lock());

        // A client on B follows room 1: after the catch-up signal nothing published is missed.
        b.interest().unwrap().room(RoomId(1), true);
        caught_up(&catch_up, RoomId(1)).await;
        for seq in 51..=60 {
            a.publish(msg(1, seq)).await.unwrap();
        }
        until("room 1's events on b", || seen.0.lock().iter().filter(|(r, _)| *r == 1).count() == 10).await;
        let got: Vec<i64> = seen.0.lock().iter().filter(|(r, _)| *r == 1).map(|(_, s)| *s).collect();
        assert_eq!(got, (51..=60).collect::<Vec<_>>());

        // And after the last follower leaves, nothing again.
        b.interest().unwrap().room(RoomId(1), false);
        b.interest().unwrap().room(RoomId(2), false);
        b.interest().unwrap().room(RoomId(3), true);
        caught_up(&catch_up, RoomId(3)).await; // the unsubscriptions before it are done too
        seen.0.lock().clear();
        for seq in 61..=70 {
            a.publish(msg(1, seq)).await.unwrap();
        }
        a.publish(msg(3, 1)).await.unwrap();
        until("room 3's event", || !seen.0.lock().is_empty()).await;
        assert_eq!(*seen.0.lock(), vec![(3, 1)]);
    }
}
