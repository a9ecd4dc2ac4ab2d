//! Which Redis a node talks to — one server or a Redis Cluster — and one connection type for both.
//!
//! `--redis-url` holds one URL (`redis://host:6379`: a single Redis, as always) or several
//! comma-separated seed URLs (`redis://h1:7000,redis://h2:7001`: a Redis Cluster; the client learns
//! the rest of the topology from any seed that answers). The broker (`broker::redis`) and the job
//! queue (`jobs::redis`) read the same setting through [`RedisTarget`] and send commands through
//! [`Conn`], which routes each command to the shard owning its key on a cluster.

use std::time::Duration;

#[doc(hidden)]
pub mod testing;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

/// Per-attempt bounds of cluster commands: a shard that does not answer within them counts as down.
pub const CLUSTER_TIMEOUT: Duration = Duration::from_secs(2);

/// Where `--redis-url` points.
#[derive(Clone)]
pub enum RedisTarget {
    Single(String),
    /// Seed addresses of a Redis Cluster (two or more).
    Cluster(Vec<String>),
}

impl RedisTarget {
    /// One URL → a single Redis; several comma-separated → a cluster.
    pub fn parse(url: &str) -> anyhow::Result<RedisTarget> {
        let seeds: Vec<String> = url.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
        match seeds.len() {
            0 => anyhow::bail!("the Redis URL is empty"),
            1 => Ok(RedisTarget::Single(seeds.into_iter().next().unwrap_or_default())),
            _ => Ok(RedisTarget::Cluster(seeds)),
        }
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, RedisTarget::Cluster(_))
    }

    /// A cluster client with the node's bounds: few internal retries (the callers retry with their
    /// own backoff), every attempt bounded.
    pub fn cluster_builder(seeds: &[String]) -> ClusterClientBuilder {
        ClusterClientBuilder::new(seeds.iter().map(String::as_str))
            .connection_timeout(CLUSTER_TIMEOUT)
            .response_timeout(CLUSTER_TIMEOUT)
            .retries(3)
            .min_retry_wait(50)
            .max_retry_wait(500)
    }

    /// A cluster client for `seeds` (parsed now, so a malformed URL fails at start-up).
    pub fn cluster_client(seeds: &[String]) -> anyhow::Result<ClusterClient> {
        Ok(Self::cluster_builder(seeds).build()?)
    }

    /// The command connection: a reconnecting connection manager on a single Redis, the cluster
    /// connection (one multiplexed connection per shard, routing by key slot) on a cluster.
    pub async fn connect(&self) -> anyhow::Result<Conn> {
        use anyhow::Context;
        Ok(match self {
            RedisTarget::Single(url) => {
                let client = redis::Client::open(url.as_str()).context("parsing the Redis URL")?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(Duration::from_secs(2)))
                    .set_response_timeout(Some(Duration::from_secs(2)))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_secs(2));
                Conn::Single(client.get_connection_manager_with_config(config).await.context("connecting to Redis")?)
            }
            RedisTarget::Cluster(seeds) => Conn::Cluster(
                Self::cluster_client(seeds)
                    .context("parsing the Redis Cluster seed URLs")?
                    .get_async_connection()
                    .await
                    .context("connecting to the Redis Cluster")?,
            ),
        })
    }
}

/// A command connection to a single Redis or to a cluster.
#[derive(Clone)]
pub enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_url_is_a_single_redis_and_several_are_a_cluster() {
        assert!(
            matches!(RedisTarget::parse("redis://h:6379").unwrap(), RedisTarget::Single(u) if u == "redis://h:6379")
        );
        let RedisTarget::Cluster(seeds) = RedisTarget::parse("redis://a:7000, redis://b:7001,").unwrap() else {
            panic!("a cluster")
        };
        assert_eq!(seeds, ["redis://a:7000", "redis://b:7001"]);
        assert!(RedisTarget::parse(" , ").is_err());
        assert!(RedisTarget::cluster_client(&["redis://a:7000".into(), "not a url".into()]).is_err());
    }
}
