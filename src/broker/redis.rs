//! The multi-node broker: Redis pub/sub on one channel per cluster.
//!
//! Why it looks like this:
//! - **Local first.** `publish` hands the event to this node's hub at once, then queues it for Redis.
//!   A node's own clients never wait on Redis, and keep chatting if it goes away.
//! - **One publisher, one subscriber connection per node.** The publisher task drains a bounded queue
//!   and pipelines `PUBLISH`es, in queue order, so per node the others see events in publish order (and
//!   messages of a room in `seq` order, since the ingest writer publishes in commit order). When Redis
//!   is unreachable it retries the same batch with backoff; when the queue is full, new events are
//!   dropped (and counted in the log): every lost message is recovered from the store.
//! - **Redis is not the record.** After the subscriber (re)connects it bumps [`Broker::reconnects`],
//!   and the node resynchronises from the store (`Chat::resync`): messages, memberships, sessions.
//!   Between reconnects, a connection that sees a gap in a room fills it from the store.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::{Broker, BrokerEvent, BrokerSink, codec};
use crate::core::domain::NodeId;
use crate::core::error::{Error, Result};

/// Events waiting for Redis, per node.
const PUBLISH_QUEUE: usize = 65_536;
/// `PUBLISH`es per pipeline round trip.
const PUBLISH_BATCH: usize = 256;
const MAX_BACKOFF: Duration = Duration::from_secs(2);

type Sink = Arc<OnceLock<Arc<dyn BrokerSink>>>;

pub struct RedisBroker {
    node: NodeId,
    sink: Sink,
    out: mpsc::Sender<Vec<u8>>,
    conn: ConnectionManager,
    reconnects: watch::Receiver<u64>,
    stop: CancellationToken,
}

impl RedisBroker {
    /// Connects to `url` and starts the publisher and subscriber tasks; events go to channel
    /// `{prefix}:events`, so several clusters (or test runs) can share one Redis.
    pub async fn connect(url: &str, prefix: &str, node: NodeId) -> anyhow::Result<Self> {
        use anyhow::Context;
        let client = redis::Client::open(url).context("parsing the Redis URL")?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(1)
            .set_max_delay(MAX_BACKOFF);
        let conn = client.get_connection_manager_with_config(config).await.context("connecting to Redis")?;
        let channel = format!("{prefix}:events");
        let (out, rx) = mpsc::channel(PUBLISH_QUEUE);
        let (bump, reconnects) = watch::channel(0);
        let stop = CancellationToken::new();
        let sink: Sink = Arc::default();
        tokio::spawn(publisher(conn.clone(), channel.clone(), rx, stop.clone()));
        tokio::spawn(subscriber(client, channel, node, sink.clone(), bump, stop.clone()));
        Ok(RedisBroker { node, sink, out, conn, reconnects, stop })
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
        let local = !matches!(event, BrokerEvent::Presence { .. } | BrokerEvent::NodeAlive { .. });
        if local && let Some(sink) = self.sink.get() {
            sink.deliver(event);
        }
        if self.out.try_send(bytes).is_err() {
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
}

/// Sleeps for `d` unless stopped first; false when stopped.
async fn pause(stop: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = stop.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}

async fn publisher(
    mut conn: ConnectionManager,
    channel: String,
    mut rx: mpsc::Receiver<Vec<u8>>,
    stop: CancellationToken,
) {
    let mut batch = Vec::with_capacity(PUBLISH_BATCH);
    while rx.recv_many(&mut batch, PUBLISH_BATCH).await > 0 {
        let mut pipe = redis::pipe();
        for payload in &batch {
            pipe.cmd("PUBLISH").arg(&channel).arg(payload.as_slice()).ignore();
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

async fn subscriber(
    client: redis::Client,
    channel: String,
    node: NodeId,
    sink: Sink,
    bump: watch::Sender<u64>,
    stop: CancellationToken,
) {
    let mut backoff = Duration::from_millis(50);
    let mut connected_before = false;
    loop {
        let subscribed = async {
            let mut ps = client.get_async_pubsub().await?;
            ps.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(ps)
        };
        let ps = tokio::select! {
            _ = stop.cancelled() => return,
            r = subscribed => r,
        };
        match ps {
            Ok(ps) => {
                backoff = Duration::from_millis(50);
                if connected_before {
                    info!("Redis subscription restored; resynchronising from the store");
                }
                connected_before = true;
                // After subscribing, so that whatever the resync misses arrives through the channel.
                bump.send_modify(|n| *n += 1);
                let mut stream = ps.into_on_message();
                loop {
                    let msg = tokio::select! {
                        _ = stop.cancelled() => return,
                        m = stream.next() => m,
                    };
                    let Some(msg) = msg else { break };
                    match codec::decode(msg.get_payload_bytes()) {
                        Ok((from, _)) if from == node => {}
                        Ok((_, event)) => {
                            if let Some(sink) = sink.get() {
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
        if !pause(&stop, backoff).await {
            return;
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
