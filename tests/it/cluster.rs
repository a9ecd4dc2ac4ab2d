//! Several nodes on one PostgreSQL and one Redis: ordering across nodes, a node killed, Redis
//! restarted mid-stream, logout and presence across nodes.
//!
//! These need `PARLEY_TEST_POSTGRES_URL` and `PARLEY_TEST_REDIS_URL` (`.ci/run` sets both and fails
//! when either service is unreachable); without them each test says it was skipped and passes.
//!
//! The core cases (cross-node order, a node killed and its clients resuming elsewhere, presence,
//! logout, joining mid-stream) run twice: on the single Redis of `PARLEY_TEST_REDIS_URL`, and on a
//! private 3-master Redis Cluster each test starts (`parley::redis_link::testing::RedisCluster`;
//! sharded pub/sub), whose tests end in `_on_a_redis_cluster`. One more kills the master of a room's
//! shard while messages flow.

use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::Connection;

use crate::harness::*;
use parley::redis_link::testing::RedisCluster;

const PG_VAR: &str = "PARLEY_TEST_POSTGRES_URL";
const REDIS_VAR: &str = "PARLEY_TEST_REDIS_URL";

/// A fresh PostgreSQL schema and Redis prefix shared by the nodes of one test.
struct Cluster {
    pg: String,
    schema: String,
    database_url: String,
    redis_url: String,
    prefix: String,
    /// The private Redis Cluster, when the test runs on one (stopped when the test ends).
    redis_cluster: Option<RedisCluster>,
}

impl Cluster {
    /// `None` (after saying so) when the services are not configured; panics when they are configured
    /// but unreachable, so a CI run cannot pass by skipping.
    async fn new(test: &str) -> Option<Cluster> {
        let (Ok(pg), Ok(redis_url)) = (std::env::var(PG_VAR), std::env::var(REDIS_VAR)) else {
            eprintln!("SKIPPED {test}: set {PG_VAR} and {REDIS_VAR} to run it");
            return None;
        };
        let schema = format!("parley_it_{}", hex::encode(rand::random::<[u8; 6]>()));
        let opts = sqlx::postgres::PgConnectOptions::from_str(&pg).expect("a PostgreSQL URL");
        let mut admin = sqlx::PgConnection::connect_with(&opts)
            .await
            .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at {pg} ({PG_VAR}): {e}"));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&mut admin).await.unwrap();
        let _ = admin.close().await;
        let sep = if pg.contains('?') { '&' } else { '?' };
        let database_url = format!("{pg}{sep}options[search_path]={schema}");
        let client = redis::Client::open(redis_url.as_str()).expect("a Redis URL");
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .unwrap_or_else(|e| panic!("cannot reach Redis at {redis_url} ({REDIS_VAR}): {e}"));
        redis::cmd("PING").query_async::<()>(&mut conn).await.unwrap();
        let prefix = schema.clone();
        Some(Cluster { pg, schema, database_url, redis_url, prefix, redis_cluster: None })
    }

    /// The same on a private Redis Cluster of 3 masters with `replicas` replicas each.
    async fn on_redis_cluster(test: &str, replicas: usize) -> Option<Cluster> {
        let mut c = Cluster::new(test).await?;
        let rc = tokio::task::spawn_blocking(move || RedisCluster::start(3, replicas)).await.unwrap();
        c.redis_url = rc.url();
        c.redis_cluster = Some(rc);
        Some(c)
    }

    /// Runs the test on a single Redis or, with `on_cluster`, on a 3-master Redis Cluster.
    async fn either(test: &str, on_cluster: bool) -> Option<Cluster> {
        if on_cluster { Cluster::on_redis_cluster(test, 0).await } else { Cluster::new(test).await }
    }

    fn flags<'a>(&'a self, redis_url: &'a str) -> Vec<&'a str> {
        vec![
            "--database-url",
            &self.database_url,
            "--redis-url",
            redis_url,
            "--redis-prefix",
            &self.prefix,
            "--node-ttl-secs",
            "2",
            "--jwt-secret",
            "a-secret-every-node-of-this-cluster-shares",
        ]
    }

    async fn node(&self) -> TestApp {
        spawn_app_with(&self.flags(&self.redis_url)).await
    }

    async fn node_on(&self, redis_url: &str) -> TestApp {
        spawn_app_with(&self.flags(redis_url)).await
    }

    fn node_process(&self) -> TestApp {
        spawn_binary(&self.flags(&self.redis_url))
    }

    async fn drop_schema(self) {
        let opts = sqlx::postgres::PgConnectOptions::from_str(&self.pg).unwrap();
        let mut admin = sqlx::PgConnection::connect_with(&opts).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema)))
            .execute(&mut admin)
            .await
            .unwrap();
        if self.redis_cluster.is_some() {
            return; // the private cluster goes with it
        }
        // The nodes' job queue keeps its keys under the same prefix.
        let client = redis::Client::open(self.redis_url.as_str()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let keys: Vec<String> =
            redis::cmd("KEYS").arg(format!("{}:*", self.prefix)).query_async(&mut conn).await.unwrap();
        if !keys.is_empty() {
            redis::cmd("DEL").arg(keys).query_async::<()>(&mut conn).await.unwrap();
        }
    }
}

/// Sends `n` messages numbered from `from` on `ws`, in windows, reading acknowledgements; returns
/// their `seq`s.
async fn send_acked(ws: &mut Ws, room: i64, tag: &str, from: usize, n: usize) -> Vec<i64> {
    let mut acked = Vec::with_capacity(n);
    for window in (from..from + n).collect::<Vec<_>>().chunks(25) {
        for i in window {
            ws.send(
                json!({"type": "send", "room": room, "body": format!("{tag}{i}"), "client_id": format!("{tag}{i}")}),
            )
            .await;
        }
        let mut got = 0;
        while got < window.len() {
            let v = ws.next_json().await;
            if v["type"] == "ack" {
                acked.push(v["seq"].as_i64().unwrap());
                got += 1;
            }
        }
    }
    acked
}

/// Reads text messages until one with `seq >= until` arrives; returns (seq, body) of each.
async fn read_until(ws: &mut Ws, until: i64) -> Vec<(i64, String)> {
    let mut got = Vec::new();
    loop {
        let m = ws.next_text().await;
        let seq = m["seq"].as_i64().unwrap();
        got.push((seq, m["body"].as_str().unwrap().to_owned()));
        if seq >= until {
            return got;
        }
    }
}

#[tokio::test]
async fn three_nodes_deliver_one_order_to_everyone_with_senders_on_every_node() {
    one_order_everywhere(false).await;
}

#[tokio::test]
async fn three_nodes_deliver_one_order_to_everyone_with_senders_on_every_node_on_a_redis_cluster() {
    one_order_everywhere(true).await;
}

async fn one_order_everywhere(on_cluster: bool) {
    let Some(cluster) = Cluster::either("three_nodes_deliver_one_order", on_cluster).await else { return };
    let nodes = [cluster.node().await, cluster.node().await, cluster.node().await];
    let tokens = [nodes[0].user("ana").await, nodes[1].user("ben").await, nodes[2].user("cid").await];
    let room = nodes[0].room(&tokens[0], "across", "public").await;
    nodes[1].join(&tokens[1], "across").await;
    nodes[2].join(&tokens[2], "across").await;
    let base = nodes[0].get(Some(&tokens[0]), "/api/v1/rooms/across").await.1["last_seq"].as_i64().unwrap();

    // Each user listens on their node with one socket and sends from another, all at once.
    let mut listeners = Vec::new();
    for (node, token) in nodes.iter().zip(&tokens) {
        listeners.push(node.ws(token).await);
    }
    const PER_SENDER: usize = 150;
    let mut senders = Vec::new();
    for (i, (node, token)) in nodes.iter().zip(&tokens).enumerate() {
        let mut ws = node.ws(token).await;
        senders.push(tokio::spawn(async move { send_acked(&mut ws, room, &format!("n{i}-"), 0, PER_SENDER).await }));
    }
    let mut acked = HashSet::new();
    for s in senders {
        acked.extend(s.await.unwrap());
    }
    let last = base + 3 * PER_SENDER as i64;
    assert_eq!(acked, (base + 1..=last).collect::<HashSet<_>>(), "acknowledged seqs are gap-free");

    let mut seen = Vec::new();
    for ws in &mut listeners {
        seen.push(read_until(ws, last).await);
    }
    let seqs: Vec<i64> = seen[0].iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, (base + 1..=last).collect::<Vec<_>>(), "every message once, in seq order");
    assert_eq!(seen[0], seen[1], "node 2 saw the same order");
    assert_eq!(seen[0], seen[2], "node 3 saw the same order");
    for n in nodes {
        n.stop().await;
    }
    cluster.drop_schema().await;
}

#[tokio::test]
async fn logout_on_one_node_closes_the_sessions_sockets_on_another() {
    logout_across_nodes(false).await;
}

#[tokio::test]
async fn logout_on_one_node_closes_the_sessions_sockets_on_another_on_a_redis_cluster() {
    logout_across_nodes(true).await;
}

async fn logout_across_nodes(on_cluster: bool) {
    let Some(cluster) = Cluster::either("logout_across_nodes", on_cluster).await else { return };
    let (a, b) = (cluster.node().await, cluster.node().await);
    let token = a.user("lou").await;
    let mut on_b = b.ws(&token).await;
    let (status, _) = a.post(Some(&token), "/api/v1/logout", json!({})).await;
    assert_eq!(status, 204);
    assert_eq!(on_b.closed().await, Some(4001), "closed as 'session ended' on the other node");
    let (status, _) = b.get(Some(&token), "/api/v1/me").await;
    assert_eq!(status, 401, "and the token is refused there");
    a.stop().await;
    b.stop().await;
    cluster.drop_schema().await;
}

#[tokio::test]
async fn a_killed_nodes_users_go_offline_and_its_clients_recover_on_another_node() {
    killed_node(false).await;
}

#[tokio::test]
async fn a_killed_nodes_users_go_offline_and_its_clients_recover_on_another_node_on_a_redis_cluster() {
    killed_node(true).await;
}

async fn killed_node(on_cluster: bool) {
    let Some(cluster) = Cluster::either("killed_node", on_cluster).await else { return };
    let a = cluster.node().await;
    let mut b = cluster.node_process();
    let (sender, reader) = (a.user("sam").await, a.user("rae").await);
    let room = a.room(&sender, "sturdy", "public").await;
    a.join(&reader, "sturdy").await;
    let base = a.get(Some(&reader), "/api/v1/rooms/sturdy").await.1["last_seq"].as_i64().unwrap();

    // sam watches on node A; rae connects to node B, and A hears she is online.
    let mut watch = a.ws(&sender).await;
    let mut rae = b.ws(&reader).await;
    let p = next_presence(&mut watch, "rae").await;
    assert_eq!(p["online"], true, "{p}");
    let (_, members) = a.get(Some(&sender), "/api/v1/rooms/sturdy/members").await;
    assert!(member_online(&members, "rae"), "A lists rae online: {members}");

    // sam sends throughout; rae reads part of it on B, then B dies.
    const N: usize = 300;
    let mut ws = a.ws(&sender).await;
    let first = send_acked(&mut ws, room, "k", 0, N / 3).await;
    let got_before = read_until(&mut rae, *first.last().unwrap()).await;
    let sending = tokio::spawn(async move { send_acked(&mut ws, room, "k", N / 3, N - N / 3).await });
    b.kill();

    // A notices B's heartbeats stopped: rae goes offline within the node TTL.
    let p = next_presence(&mut watch, "rae").await;
    assert_eq!(p["online"], false, "{p}");

    // rae reconnects to A and resumes from the last message she holds.
    let mut rae = a.ws_resuming(&reader).await;
    let held = got_before.last().unwrap().0;
    rae.send(json!({"type": "resume", "rooms": [{"room": room, "after": held}]})).await;
    let acked_rest = sending.await.unwrap();
    let last = *acked_rest.last().unwrap();
    let mut seqs: Vec<i64> = got_before.iter().map(|(s, _)| *s).collect();
    seqs.extend(read_until(&mut rae, last).await.into_iter().map(|(s, _)| s));
    assert_eq!(seqs, (base + 1..=base + N as i64).collect::<Vec<_>>(), "every acknowledged message once, in order");
    a.stop().await;
    cluster.drop_schema().await;
}

#[tokio::test]
async fn redis_restarted_mid_stream_loses_no_acknowledged_message() {
    let Some(cluster) = Cluster::new("redis_restart").await else { return };
    let mut redis = PrivateRedis::start().await;
    let url = redis.url();
    let (a, b) = (cluster.node_on(&url).await, cluster.node_on(&url).await);
    let (sender, reader) = (a.user("ivy").await, a.user("jon").await);
    let room = a.room(&sender, "stormy", "public").await;
    a.join(&reader, "stormy").await;
    let base = a.get(Some(&reader), "/api/v1/rooms/stormy").await.1["last_seq"].as_i64().unwrap();
    let mut jon = b.ws(&reader).await;
    let mut ivy = a.ws(&sender).await;

    // Before: delivered through Redis. During: Redis is gone, sends are still acknowledged (the store
    // is the record). After: B recovers what it missed and live delivery resumes.
    let mut acked = send_acked(&mut ivy, room, "r", 0, 100).await;
    read_until(&mut jon, *acked.last().unwrap()).await;
    redis.kill();
    acked.extend(send_acked(&mut ivy, room, "r", 100, 100).await);
    redis.restart().await;
    acked.extend(send_acked(&mut ivy, room, "r", 200, 100).await);
    let last = *acked.last().unwrap();
    let mut seqs: Vec<i64> = (base + 1..=base + 100).collect();
    seqs.extend(read_until(&mut jon, last).await.into_iter().map(|(s, _)| s));
    assert_eq!(acked, (base + 1..=base + 300).collect::<Vec<_>>());
    assert_eq!(seqs, acked, "B delivered every acknowledged message once, in order");
    a.stop().await;
    b.stop().await;
    cluster.drop_schema().await;
}

async fn next_presence(ws: &mut Ws, username: &str) -> Value {
    loop {
        let p = ws.next_of("presence").await;
        if p["user"]["username"] == username {
            return p;
        }
    }
}

fn member_online(members: &Value, username: &str) -> bool {
    let list = members["members"].as_array().cloned().unwrap_or_default();
    list.iter().any(|m| m["username"] == username && m["online"] == true)
}

/// A Redis server of the test's own, on a port below the ephemeral range, that can be killed and
/// started again on the same port.
struct PrivateRedis {
    port: u16,
    process: Option<Process>,
}

impl PrivateRedis {
    async fn start() -> Self {
        for _ in 0..20 {
            let port = 20_000 + rand::random::<u16>() % 12_000;
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
                continue;
            }
            let mut r = PrivateRedis { port, process: None };
            r.restart().await;
            return r;
        }
        panic!("no free port for a private Redis");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn kill(&mut self) {
        self.process.take();
    }

    async fn restart(&mut self) {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server (Debian package redis-server) for this test");
        self.process = Some(Process(child));
        // Wait for the port to accept: there is no other event to wait on.
        let port = self.port;
        wait::until_some(&format!("the private Redis to start on port {port}"), DEADLINE, || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()
        })
        .await;
    }
}

/// A file uploaded through one node downloads from another: its bytes are in PostgreSQL (the blob store
/// `auto` picks with a PostgreSQL database), not on the first node's disk.
#[tokio::test]
async fn a_file_uploaded_on_one_node_downloads_from_another() {
    let Some(cluster) = Cluster::new("a_file_uploaded_on_one_node_downloads_from_another").await else { return };
    let a = cluster.node().await;
    let b = cluster.node().await;
    let alice = a.user("alice").await;
    a.room(&alice, "shared", "private").await;
    let bytes: Vec<u8> = (0..600_000u32).map(|i| (i % 253) as u8).collect();
    let (s, f) = crate::files::upload(&a, &alice, "shared", "data.bin", bytes.clone()).await;
    assert_eq!(s, 201, "{f}");
    let id = f["id"].as_str().unwrap().to_owned();
    let (s, ack) =
        a.post(Some(&alice), "/api/v1/rooms/shared/messages", json!({"body": "the data", "files": [id]})).await;
    assert_eq!(s, 201, "{ack}");
    assert!(!a.dir.path().join("blobs").exists(), "nothing kept on the node's disk");

    let got = b.http.get(b.url(&format!("/api/v1/files/{id}/content"))).bearer_auth(&alice).send().await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.unwrap().to_vec(), bytes);
    let part = b
        .http
        .get(b.url(&format!("/api/v1/files/{id}/content")))
        .bearer_auth(&alice)
        .header("range", "bytes=262000-262999")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.bytes().await.unwrap().to_vec(), bytes[262_000..263_000]);
    // An outsider on the other node learns nothing.
    let eve = b.user("eve").await;
    let (s, e) = b.get(Some(&eve), &format!("/api/v1/files/{id}")).await;
    assert_eq!((s, &e["error"]["code"]), (404, &json!("room_not_found")));
}

/// Per-room routing: node B subscribes to a room's channel only when a client there follows it. A
/// client on B joining a room whose traffic so far went only to node A gets every message from its join
/// on, in order and without a gap, though its node subscribes while messages are flowing. (That the
/// catch-up closes the window when nothing follows is `chat::tests::catch_up_hands_the_hub_what_it_missed`.)
#[tokio::test]
async fn a_client_joining_on_another_node_mid_stream_misses_nothing() {
    joining_mid_stream(false).await;
}

#[tokio::test]
async fn a_client_joining_on_another_node_mid_stream_misses_nothing_on_a_redis_cluster() {
    joining_mid_stream(true).await;
}

async fn joining_mid_stream(on_cluster: bool) {
    let Some(cluster) = Cluster::either("joining_on_another_node_mid_stream", on_cluster).await else { return };
    let (a, b) = (cluster.node().await, cluster.node().await);
    let (sam, joy) = (a.user("sam").await, b.user("joy").await);
    let room = a.room(&sam, "routed", "public").await;
    let mut joy_ws = b.ws(&joy).await;
    let mut sender = a.ws(&sam).await;
    let sending = tokio::spawn(async move { send_acked(&mut sender, room, "m", 0, 300).await });
    // Join while the messages flow (as soon as some have been stored).
    let until = tokio::time::Instant::now() + Duration::from_secs(20);
    while a.get(Some(&sam), "/api/v1/rooms/routed").await.1["last_seq"].as_i64().unwrap() < 50 {
        assert!(tokio::time::Instant::now() < until, "messages are being stored");
        tokio::task::yield_now().await;
    }
    b.join(&joy, "routed").await;
    let last = *sending.await.unwrap().iter().max().unwrap();
    let joined = joy_ws.next_of("joined").await;
    assert_eq!(joined["room"]["id"], room);
    // Every kind of message: joy's own join is one of them.
    let mut seqs = Vec::new();
    while seqs.last() != Some(&last) {
        seqs.push(joy_ws.next_of("message").await["message"]["seq"].as_i64().unwrap());
    }
    let first = seqs[0];
    assert_eq!(seqs, (first..=last).collect::<Vec<_>>(), "every message from the join on, in order, once");
    a.stop().await;
    b.stop().await;
    cluster.drop_schema().await;
}

/// The master of the shard holding a room's channel is killed (SIGKILL) while messages flow, on a
/// Redis Cluster of 3 masters with a replica each: every acknowledged message is in PostgreSQL, so
/// none is lost; the reader on the other node gets each once, in order, and live delivery comes back
/// once the replica has been promoted (the subscriber reconnects, resubscribes and resyncs).
#[tokio::test]
async fn a_shard_master_killed_mid_stream_loses_no_acknowledged_message() {
    let Some(mut cluster) = Cluster::on_redis_cluster("shard_master_killed", 1).await else { return };
    let (a, b) = (cluster.node().await, cluster.node().await);
    let (sender, reader) = (a.user("ivy").await, a.user("jon").await);
    let room = a.room(&sender, "sharded", "public").await;
    a.join(&reader, "sharded").await;
    let base = a.get(Some(&reader), "/api/v1/rooms/sharded").await.1["last_seq"].as_i64().unwrap();
    let mut jon = b.ws(&reader).await;
    let mut ivy = a.ws(&sender).await;

    // Live through the room's shard first.
    let mut acked = send_acked(&mut ivy, room, "s", 0, 50).await;
    let mut seqs: Vec<i64> = read_until(&mut jon, *acked.last().unwrap()).await.into_iter().map(|(s, _)| s).collect();
    let channel = format!("{}:r:{room}", cluster.prefix);
    let redis = cluster.redis_cluster.as_mut().unwrap();
    let victim = redis.master_of(&channel);

    // Kill the room's master while sends are in flight; sends keep being acknowledged.
    let sending = tokio::spawn(async move {
        let more = send_acked(&mut ivy, room, "s", 50, 250).await;
        (ivy, more)
    });
    let first_after = read_until(&mut jon, *acked.last().unwrap() + 25).await;
    seqs.extend(first_after.iter().map(|(s, _)| *s));
    redis.kill(victim);
    let (mut ivy, more) = sending.await.unwrap();
    acked.extend(more);
    let ch = channel.clone();
    let redis = cluster.redis_cluster.take().unwrap();
    let redis = tokio::task::spawn_blocking(move || {
        redis.wait_failover(&ch);
        redis
    })
    .await
    .unwrap();
    assert_ne!(redis.master_of(&channel), victim, "a replica took over the room's slot");
    // After the failover: more messages, delivered live again.
    acked.extend(send_acked(&mut ivy, room, "s", 300, 50).await);
    let last = *acked.last().unwrap();
    seqs.extend(read_until(&mut jon, last).await.into_iter().map(|(s, _)| s));
    assert_eq!(acked, (base + 1..=base + 350).collect::<Vec<_>>(), "every send acknowledged, gap-free");
    assert_eq!(seqs, acked, "B delivered every acknowledged message once, in order");

    // And B receives the room live through the new master: a message sent now arrives without any
    // further gap fill being needed (it is the next one).
    acked.extend(send_acked(&mut ivy, room, "s", 350, 1).await);
    assert_eq!(jon.next_text().await["seq"].as_i64().unwrap(), base + 351);
    a.stop().await;
    b.stop().await;
    cluster.redis_cluster = Some(redis);
    cluster.drop_schema().await;
}
