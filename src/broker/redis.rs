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
//! - **A Redis Cluster** (several comma-separated seed URLs, see `crate::redis_link`): room and user
//!   channels go through sharded pub/sub (`SPUBLISH`/`SSUBSCRIBE`), so each lives on the shard owning
//!   its slot and a room's traffic loads one shard only; the cluster-wide channel stays plain pub/sub.
//!   The cluster's own parts (publisher grouping per channel, the RESP3 subscriber) are in
//!   `redis_cluster.rs`.
//! - **Redis is not the record.** After the subscriber (re)connects it bumps [`Broker::reconnects`],
//!   and the node resynchronises from the store (`Chat::resync`): messages, memberships, sessions.
//!   Between reconnects, a connection that sees a gap in a room fills it from the store.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::{Broker, BrokerEvent, BrokerSink, CatchUp, Interest, codec, redis_cluster};
use crate::core::domain::{NodeId, RoomId, UserId};
use crate::core::error::{Error, Result};
use crate::redis_link::{Conn, RedisTarget};

/// Events waiting for Redis, per node.
pub(super) const PUBLISH_QUEUE: usize = 65_536;
/// `PUBLISH`es per pipeline round trip.
const PUBLISH_BATCH: usize = 256;
pub(super) const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Channels per `SUBSCRIBE`/`UNSUBSCRIBE` command.
const SUBSCRIBE_BATCH: usize = 512;

pub(super) type Sink = Arc<OnceLock<Arc<dyn BrokerSink>>>;

/// One event waiting for Redis: its channel, whether that channel is sharded (room and user channels,
/// which use `SPUBLISH` on a cluster), and its encoding.
pub(super) struct Out {
    pub channel: String,
    pub sharded: bool,
    pub payload: Vec<u8>,
}

pub struct RedisBroker {
    node: NodeId,
    sink: Sink,
    out: mpsc::Sender<Out>,
    conn: Conn,
    reconnects: watch::Receiver<u64>,
    routes: Arc<Routes>,
    catch_up: Arc<CatchUp>,
    channels: Channels,
    stop: CancellationToken,
}

/// Channel names of one cluster (one `--redis-prefix`).
#[derive(Clone)]
pub(super) struct Channels {
    prefix: String,
}

impl Channels {
    pub(super) fn general(&self) -> String {
        format!("{}:events", self.prefix)
    }
    pub(super) fn room(&self, room: RoomId) -> String {
        format!("{}:r:{}", self.prefix, room.0)
    }
    pub(super) fn user(&self, user: UserId) -> String {
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
    /// `event` ready for the publisher.
    fn out(&self, event: &BrokerEvent, payload: Vec<u8>) -> Out {
        let channel = self.of(event);
        let sharded = channel != self.general();
        Out { channel, sharded, payload }
    }
}

/// The rooms and users this node wants events of (set by the hub through [`Interest`]).
#[derive(Default)]
pub(super) struct Routes {
    wanted: parking_lot::Mutex<Wanted>,
    pub(super) changed: tokio::sync::Notify,
}

#[derive(Default, Clone)]
pub(super) struct Wanted {
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
    /// Connects to `url` (one Redis, or several comma-separated seeds of a Redis Cluster) and starts
    /// the publisher and subscriber tasks; channel names start with `{prefix}:`, so several clusters
    /// (or test runs) can share one Redis.
    pub async fn connect(url: &str, prefix: &str, node: NodeId) -> anyhow::Result<Self> {
        use anyhow::Context;
        let target = RedisTarget::parse(url)?;
        let client = match &target {
            RedisTarget::Single(url) => {
                SubClient::Single(redis::Client::open(url.as_str()).context("parsing the Redis URL")?)
            }
            RedisTarget::Cluster(seeds) => {
                RedisTarget::cluster_client(seeds).context("parsing the Redis Cluster seed URLs")?;
                SubClient::Cluster(seeds.clone())
            }
        };
        let conn = target.connect().await?;
        let channels = Channels { prefix: prefix.to_owned() };
        let (out, rx) = mpsc::channel(PUBLISH_QUEUE);
        let (bump, reconnects) = watch::channel(0);
        let stop = CancellationToken::new();
        let sink: Sink = Arc::default();
        let routes = Arc::new(Routes::default());
        let catch_up = Arc::new(CatchUp::default());
        tokio::spawn(publisher(conn.clone(), rx, stop.clone()));
        let sub = Subscriber {
            channels: channels.clone(),
            node,
            sink: sink.clone(),
            bump,
            routes: routes.clone(),
            catch_up: catch_up.clone(),
            stop: stop.clone(),
        };
        match client {
            SubClient::Single(client) => tokio::spawn(subscriber(sub, client)),
            SubClient::Cluster(seeds) => tokio::spawn(redis_cluster::subscriber(sub, seeds)),
        };
        Ok(RedisBroker { node, sink, out, conn, reconnects, routes, catch_up, channels, stop })
    }
}

/// What the subscriber task connects with.
enum SubClient {
    Single(redis::Client),
    Cluster(Vec<String>),
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
        let out = self.channels.out(&event, codec::encode(self.node, &event));
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
        if self.out.try_send(out).is_err() {
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
pub(super) async fn pause(stop: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = stop.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}

async fn publisher(conn: Conn, mut rx: mpsc::Receiver<Out>, stop: CancellationToken) {
    let mut batch = Vec::with_capacity(PUBLISH_BATCH);
    while rx.recv_many(&mut batch, PUBLISH_BATCH).await > 0 {
        // On a cluster, one pipeline per channel (a pipeline must stay on one slot); what one
        // attempt publishes is not published again.
        let mut pending = match &conn {
            Conn::Single(_) => {
                let mut pipe = redis::pipe();
                for out in &batch {
                    pipe.cmd("PUBLISH").arg(&out.channel).arg(out.payload.as_slice()).ignore();
                }
                vec![pipe]
            }
            Conn::Cluster(_) => redis_cluster::pipelines(&batch),
        };
        let mut backoff = Duration::from_millis(50);
        let mut failing = false;
        loop {
            match redis_cluster::run_all(&conn, &mut pending).await {
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

pub(super) struct Subscriber {
    pub(super) channels: Channels,
    pub(super) node: NodeId,
    pub(super) sink: Sink,
    pub(super) bump: watch::Sender<u64>,
    pub(super) routes: Arc<Routes>,
    pub(super) catch_up: Arc<CatchUp>,
    pub(super) stop: CancellationToken,
}

impl Subscriber {
    /// Hands one received payload to the hub (unless this node sent it).
    pub(super) fn received(&self, payload: &[u8]) {
        match codec::decode(payload) {
            Ok((from, _)) if from == self.node => {}
            Ok((_, event)) => {
                if let Some(sink) = self.sink.get() {
                    metrics::counter!("parley_broker_received_total").increment(1);
                    sink.deliver(event);
                }
            }
            Err(why) => warn!(%why, "ignoring an event this node cannot read"),
        }
    }
}

/// The subscribing side of a connection: a single Redis's pub/sub sink, or a cluster connection
/// (room and user channels sharded).
pub(super) enum SubSink<'a> {
    Single(&'a mut redis::aio::PubSubSink),
    Cluster(&'a mut redis::cluster_async::ClusterConnection),
}

/// Subscribes to or unsubscribes from `channels` (room and user channels), in batches.
async fn change(sink: &mut SubSink<'_>, channels: Vec<String>, on: bool) -> redis::RedisResult<()> {
    match sink {
        SubSink::Single(sink) => {
            for chunk in channels.chunks(SUBSCRIBE_BATCH) {
                if on {
                    sink.subscribe(chunk).await?;
                } else {
                    sink.unsubscribe(chunk).await?;
                }
            }
            Ok(())
        }
        SubSink::Cluster(conn) => redis_cluster::change(conn, channels, on).await,
    }
}

/// Brings the subscriptions from `have` to what `routes` wants; the newly subscribed rooms and users go
/// to catch up.
pub(super) async fn reroute(
    s: &Subscriber,
    sink: &mut SubSink<'_>,
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

async fn subscriber(s: Subscriber, client: redis::Client) {
    let mut backoff = Duration::from_millis(50);
    let mut connected_before = false;
    loop {
        let mut have = Wanted::default();
        let subscribed = async {
            let (mut sink, stream) = client.get_async_pubsub().await?.split();
            sink.subscribe(s.channels.general()).await?;
            // Everything wanted now; the full resync below covers what was missed before.
            reroute(&s, &mut SubSink::Single(&mut sink), &mut have, false).await?;
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
                            if let Err(e) = reroute(&s, &mut SubSink::Single(&mut sink), &mut have, true).await {
                                debug!(error = %e, "changing Redis subscriptions failed");
                                break;
                            }
                            continue;
                        }
                        m = stream.next() => m,
                    };
                    let Some(msg) = msg else { break };
                    s.received(msg.get_payload_bytes());
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
        routing(&url).await;
    }

    /// The same on a 3-master Redis Cluster (sharded pub/sub). Needs `redis-server` and `redis-cli`;
    /// runs where PARLEY_TEST_REDIS_URL is set (Redis is installed there).
    #[tokio::test]
    async fn a_node_receives_a_rooms_events_only_while_it_follows_the_room_on_a_redis_cluster() {
        if std::env::var("PARLEY_TEST_REDIS_URL").is_err() {
            eprintln!("SKIPPED: set PARLEY_TEST_REDIS_URL to run it (it starts its own Redis Cluster)");
            return;
        }
        let cluster =
            tokio::task::spawn_blocking(|| crate::redis_link::testing::RedisCluster::start(3, 0)).await.unwrap();
        routing(&cluster.url()).await;
    }

    async fn routing(url: &str) {
        let url = url.to_owned();
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
            let _ = a.out.try_send(a.channels.out(&msg(2, marker), codec::encode(NodeId(1), &msg(2, marker))));
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
        // One subscription from start to end: no reconnect (each would cost a full resync).
        assert_eq!(*b.reconnects().unwrap().borrow(), 1, "B's subscriber never reconnected");
    }
}
