//! The Redis queue: shared by every node, so a job enqueued on one may run on another.
//!
//! Keys (all under a prefix, default `parley:jobs`):
//! - `{p}:ready` LIST: producers LPUSH, workers BLMOVE from the right into their node's processing list,
//!   atomically, so a job is never only in a worker's memory;
//! - `{p}:processing:{node}` LIST: reserved jobs; ack = LREM; retry/bury = LREM + ZADD/LPUSH in one
//!   MULTI;
//! - `{p}:delayed` ZSET scored by due time (ms): retries; workers move due ones to `ready` (Lua, atomic);
//! - `{p}:dead` LIST: the dead-letter list, newest first, trimmed to [`DEAD_LIMIT`];
//! - `{p}:nodes` ZSET: node id → last heartbeat (ms). A node silent for longer than the staleness limit
//!   is dead: any node moves its processing list back to `ready` (Lua, atomic) — at-least-once.
//!   A live node also puts back entries of its own processing list that no worker holds (a reply lost
//!   on the way, an outcome that could not be recorded) once seen so on two consecutive checks.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use parking_lot::Mutex;
use redis::aio::MultiplexedConnection;
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, Client, Script};

use super::{DEAD_LIMIT, Depth, Job, JobQueue, Reserved};
use crate::core::domain::now_millis;
use crate::redis_link::{CLUSTER_TIMEOUT, Conn, RedisTarget};

/// The longest a `BLMOVE` blocks (see `reserve`).
const MAX_BLOCK: Duration = Duration::from_secs(1);

/// Where blocking connections come from.
enum Blocking {
    Single(Client),
    /// A client whose response timeout leaves room for the longest block.
    Cluster(Box<ClusterClient>),
}

/// A connection a worker blocks on.
enum BlockingConn {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

const PROMOTE: &str = r"
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 100)
for _, job in ipairs(due) do
  redis.call('ZREM', KEYS[1], job)
  redis.call('LPUSH', KEYS[2], job)
end
local next = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if next[2] then return tonumber(next[2]) end
return -1
";

const REQUEUE: &str = r"
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 1 then redis.call('RPUSH', KEYS[2], ARGV[1]) return 1 end
return 0
";

const RECOVER: &str = r"
local n = 0
while redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'RIGHT') do n = n + 1 end
redis.call('ZREM', KEYS[3], ARGV[1])
return n
";

pub struct RedisQueue {
    client: Blocking,
    conn: Conn,
    /// Connections for BLMOVE, one per waiting worker: a blocking command holds its connection.
    blocking: Mutex<Vec<BlockingConn>>,
    prefix: String,
    node: String,
    promote: Script,
    recover: Script,
    requeue: Script,
    /// Raw jobs this node's workers hold, and own processing entries no worker held at the last check.
    inflight: Mutex<HashSet<String>>,
    suspects: Mutex<HashSet<String>>,
}

impl RedisQueue {
    /// Connects to `url` (one Redis, or several comma-separated seeds of a Redis Cluster); `prefix`
    /// separates queues sharing one Redis (tests use a unique one each).
    pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let target = RedisTarget::parse(url)?;
        let (client, prefix) = match &target {
            RedisTarget::Single(url) => {
                (Blocking::Single(Client::open(url.as_str()).context("parsing the Redis URL")?), prefix.to_owned())
            }
            RedisTarget::Cluster(seeds) => {
                let client = RedisTarget::cluster_builder(seeds)
                    .response_timeout(MAX_BLOCK + CLUSTER_TIMEOUT)
                    .build()
                    .context("parsing the Redis Cluster seed URLs")?;
                (Blocking::Cluster(Box::new(client)), format!("{{{prefix}}}"))
            }
        };
        let conn = target.connect().await?;
        let node = format!("{}-{}", std::process::id(), hex::encode(rand::random::<[u8; 6]>()));
        Ok(RedisQueue {
            client,
            conn,
            blocking: Mutex::new(Vec::new()),
            prefix,
            node,
            promote: Script::new(PROMOTE),
            recover: Script::new(RECOVER),
            requeue: Script::new(REQUEUE),
            inflight: Mutex::new(HashSet::new()),
            suspects: Mutex::new(HashSet::new()),
        })
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    fn key(&self, name: &str) -> String {
        format!("{}:{name}", self.prefix)
    }

    fn processing(&self, node: &str) -> String {
        format!("{}:processing:{node}", self.prefix)
    }

    async fn blocking_conn(&self) -> anyhow::Result<BlockingConn> {
        if let Some(c) = self.blocking.lock().pop() {
            return Ok(c);
        }
        Ok(match &self.client {
            Blocking::Single(client) => {
                // The default 500 ms response timeout would cut every BLMOVE short.
                let cfg = AsyncConnectionConfig::new().set_response_timeout(None);
                BlockingConn::Single(
                    client.get_multiplexed_async_connection_with_config(&cfg).await.context("connecting to Redis")?,
                )
            }
            Blocking::Cluster(client) => {
                BlockingConn::Cluster(client.get_async_connection().await.context("connecting to the Redis Cluster")?)
            }
        })
    }

    /// Removes the reserved job from this node's processing list and runs `then` in the same MULTI.
    async fn settle(&self, r: &Reserved, then: impl FnOnce(&mut redis::Pipeline)) -> anyhow::Result<()> {
        let mut pipe = redis::pipe();
        pipe.atomic().cmd("LREM").arg(self.processing(&self.node)).arg(1).arg(&r.raw).ignore();
        then(&mut pipe);
        let mut conn = self.conn.clone();
        let res = pipe.query_async::<()>(&mut conn).await.context("settling a job in Redis");
        // Settled, or left for the orphan check to put back.
        self.inflight.lock().remove(&r.raw);
        res
    }

    /// Puts back own processing entries that no worker held on this check and the one before.
    async fn requeue_orphans(&self) -> anyhow::Result<u64> {
        let mut conn = self.conn.clone();
        let listed: Vec<String> =
            redis::cmd("LRANGE").arg(self.processing(&self.node)).arg(0).arg(-1).query_async(&mut conn).await?;
        let orphans: Vec<String> = {
            let inflight = self.inflight.lock();
            let mut suspects = self.suspects.lock();
            let unheld: HashSet<String> = listed.into_iter().filter(|r| !inflight.contains(r)).collect();
            let orphans = unheld.intersection(&suspects).cloned().collect();
            *suspects = unheld;
            orphans
        };
        let mut n = 0;
        for raw in &orphans {
            n += self
                .requeue
                .key(self.processing(&self.node))
                .key(self.key("ready"))
                .arg(raw)
                .invoke_async::<u64>(&mut conn)
                .await?;
        }
        Ok(n)
    }
}

#[async_trait]
impl JobQueue for RedisQueue {
    async fn enqueue(&self, jobs: &[Job]) -> anyhow::Result<()> {
        if jobs.is_empty() {
            return Ok(());
        }
        let raws = jobs.iter().map(serde_json::to_string).collect::<Result<Vec<_>, _>>()?;
        let mut conn = self.conn.clone();
        redis::cmd("LPUSH")
            .arg(self.key("ready"))
            .arg(&raws)
            .query_async::<()>(&mut conn)
            .await
            .context("enqueueing jobs in Redis")
    }

    async fn reserve(&self, wait: Duration) -> anyhow::Result<Option<Reserved>> {
        let mut conn = self.conn.clone();
        let deadline = tokio::time::Instant::now() + wait;
        let raw = loop {
            // Due retries first; the answer is when the next one falls due (-1: none).
            let next_due: i64 = self
                .promote
                .key(self.key("delayed"))
                .key(self.key("ready"))
                .arg(now_millis())
                .invoke_async(&mut conn)
                .await
                .context("promoting due jobs")?;
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let until_due = match next_due {
                -1 => Duration::from_secs(1),
                due => Duration::from_millis(u64::try_from(due - now_millis()).unwrap_or(0)),
            };
            // Block until a job comes, the next retry falls due, or the wait ends — at least 10 ms,
            // at most 1 s, so retries enqueued by other nodes are promoted in time too.
            let block = left.min(until_due).min(MAX_BLOCK).max(Duration::from_millis(10));
            let mut bconn = self.blocking_conn().await?;
            let mut cmd = redis::cmd("BLMOVE");
            cmd.arg(self.key("ready"))
                .arg(self.processing(&self.node))
                .arg("RIGHT")
                .arg("LEFT")
                .arg(block.as_secs_f64());
            let raw: Option<String> = match &mut bconn {
                BlockingConn::Single(c) => cmd.query_async(c).await,
                BlockingConn::Cluster(c) => cmd.query_async(c).await,
            }
            .context("reserving a job")?;
            // Only a connection that answered goes back to the pool.
            self.blocking.lock().push(bconn);
            match raw {
                Some(raw) => {
                    self.inflight.lock().insert(raw.clone());
                    break raw;
                }
                None if tokio::time::Instant::now() >= deadline => return Ok(None),
                None => {}
            }
        };
        match serde_json::from_str::<Job>(&raw) {
            Ok(job) => Ok(Some(Reserved::new(job, raw))),
            Err(e) => {
                self.inflight.lock().remove(&raw);
                // Unreadable: keep it for inspection rather than retrying it forever.
                let mut pipe = redis::pipe();
                pipe.atomic()
                    .cmd("LREM")
                    .arg(self.processing(&self.node))
                    .arg(1)
                    .arg(&raw)
                    .ignore()
                    .cmd("LPUSH")
                    .arg(self.key("dead"))
                    .arg(&raw)
                    .ignore();
                pipe.query_async::<()>(&mut conn).await?;
                Err(anyhow::Error::new(e).context("a job in Redis is not valid JSON; moved to the dead-letter list"))
            }
        }
    }

    async fn ack(&self, r: &Reserved) -> anyhow::Result<()> {
        self.settle(r, |_| {}).await
    }

    async fn retry(&self, r: &Reserved, job: &Job, delay: Duration) -> anyhow::Result<()> {
        let raw = serde_json::to_string(job)?;
        let due = now_millis() + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2);
        let delayed = self.key("delayed");
        self.settle(r, |p| {
            p.cmd("ZADD").arg(delayed).arg(due).arg(raw).ignore();
        })
        .await
    }

    async fn bury(&self, r: &Reserved, job: &Job) -> anyhow::Result<()> {
        let raw = serde_json::to_string(job)?;
        let dead = self.key("dead");
        self.settle(r, |p| {
            p.cmd("LPUSH").arg(&dead).arg(raw).ignore();
            p.cmd("LTRIM").arg(&dead).arg(0).arg(DEAD_LIMIT - 1).ignore();
        })
        .await
    }

    async fn dead(&self, limit: usize) -> anyhow::Result<Vec<Job>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut conn = self.conn.clone();
        let raws: Vec<String> =
            redis::cmd("LRANGE").arg(self.key("dead")).arg(0).arg(limit - 1).query_async(&mut conn).await?;
        Ok(raws.iter().filter_map(|r| serde_json::from_str(r).ok()).collect())
    }

    async fn depth(&self) -> anyhow::Result<Depth> {
        let mut conn = self.conn.clone();
        let (ready, delayed, processing, dead): (u64, u64, u64, u64) = redis::pipe()
            .cmd("LLEN")
            .arg(self.key("ready"))
            .cmd("ZCARD")
            .arg(self.key("delayed"))
            .cmd("LLEN")
            .arg(self.processing(&self.node))
            .cmd("LLEN")
            .arg(self.key("dead"))
            .query_async(&mut conn)
            .await?;
        Ok(Depth { ready, delayed, processing, dead })
    }

    async fn heartbeat(&self) -> anyhow::Result<()> {
        let mut conn = self.conn.clone();
        redis::cmd("ZADD")
            .arg(self.key("nodes"))
            .arg(now_millis())
            .arg(&self.node)
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    async fn recover(&self, stale: Duration) -> anyhow::Result<u64> {
        let mut conn = self.conn.clone();
        let before = now_millis() - i64::try_from(stale.as_millis()).unwrap_or(i64::MAX / 2);
        let nodes: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(self.key("nodes"))
            .arg("-inf")
            .arg(format!("({before}"))
            .query_async(&mut conn)
            .await?;
        let mut moved = self.requeue_orphans().await.context("putting back this node's orphaned jobs")?;
        for node in nodes.iter().filter(|n| **n != self.node) {
            let n: u64 = self
                .recover
                .key(self.processing(node))
                .key(self.key("ready"))
                .key(self.key("nodes"))
                .arg(node)
                .invoke_async(&mut conn)
                .await
                .with_context(|| format!("recovering the jobs of node {node}"))?;
            if n > 0 {
                tracing::warn!(node = %node, jobs = n, "recovered the jobs of a silent node");
            }
            moved += n;
        }
        Ok(moved)
    }
}
