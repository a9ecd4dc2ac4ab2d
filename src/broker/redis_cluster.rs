//! The broker's Redis Cluster parts: publishing grouped per channel, and the RESP3 subscriber.
//!
//! Why it looks like this:
//! - **Sharded pub/sub.** Room and user channels use `SPUBLISH`/`SSUBSCRIBE`: a sharded channel lives
//!   on the shard owning its slot, so a room's events load one shard (and its replicas), not the whole
//!   cluster as plain `PUBLISH` would (every shard forwards plain messages to every other). The
//!   cluster-wide channel (`{prefix}:events`: sessions ended, presence, heartbeats) is plain pub/sub.
//! - **One pipeline per channel.** A cluster pipeline must stay on one slot, and a channel is one
//!   slot; the pipelines of one batch run concurrently, and a batch is done only when all have
//!   succeeded, so a room's events still leave in `seq` order. Across channels (a user's `joined`
//!   and the room's next message) there is no order on a cluster: the catch-up on subscribing and the
//!   Feed's gap fill already cover it.
//! - **Any lost shard connection = a reconnect.** redis-rs reports a dropped connection to a shard as
//!   a `Disconnection` push. The subscriber then builds a new cluster connection, subscribes to
//!   everything again (retrying with backoff while the shard's slots are unserved: until a replica is
//!   promoted, or the master returns) and bumps `reconnects`, so the node resynchronises from the
//!   store exactly as after a single Redis restart. Pushes go through a bounded queue; if it
//!   overflows, the same resync recovers what was dropped.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use redis::cluster_async::ClusterConnection;
use redis::{PushInfo, PushKind, Value};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::redis::{MAX_BACKOFF, Out, PUBLISH_QUEUE, SubSink, Subscriber, Wanted, pause, reroute};
use crate::redis_link::{Conn, RedisTarget};

/// Concurrent `SSUBSCRIBE`s (one per channel: each names one slot) when subscriptions change.
const SUBSCRIBE_CONCURRENCY: usize = 64;

/// One pipeline per channel of `batch`, in batch order within each channel.
pub(super) fn pipelines(batch: &[Out]) -> Vec<redis::Pipeline> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut pipes: Vec<redis::Pipeline> = Vec::new();
    for out in batch {
        let i = *index.entry(out.channel.as_str()).or_insert_with(|| {
            pipes.push(redis::pipe());
            pipes.len() - 1
        });
        let cmd = if out.sharded { "SPUBLISH" } else { "PUBLISH" };
        pipes[i].cmd(cmd).arg(&out.channel).arg(out.payload.as_slice()).ignore();
    }
    pipes
}

/// Runs `pending` concurrently; those that succeeded are removed, the first error is returned.
pub(super) async fn run_all(conn: &Conn, pending: &mut Vec<redis::Pipeline>) -> redis::RedisResult<()> {
    if let [pipe] = pending.as_slice() {
        let mut c = conn.clone();
        pipe.query_async::<()>(&mut c).await?;
        pending.clear();
        return Ok(());
    }
    let results = futures_util::future::join_all(pending.iter().map(|pipe| {
        let mut c = conn.clone();
        async move { pipe.query_async::<()>(&mut c).await }
    }))
    .await;
    let mut first = None;
    let mut results = results.into_iter();
    pending.retain(|_| match results.next() {
        Some(Ok(())) => false,
        Some(Err(e)) => {
            first.get_or_insert(e);
            true
        }
        None => true,
    });
    first.map_or(Ok(()), Err)
}

/// `SSUBSCRIBE`s or `SUNSUBSCRIBE`s each of `channels` (concurrently; one command per channel, since
/// a sharded subscription names one slot).
pub(super) async fn change(conn: &mut ClusterConnection, channels: Vec<String>, on: bool) -> redis::RedisResult<()> {
    futures_util::stream::iter(channels)
        .map(|channel| {
            let mut c = conn.clone();
            async move { if on { c.ssubscribe(channel).await } else { c.sunsubscribe(channel).await } }
        })
        .buffer_unordered(SUBSCRIBE_CONCURRENCY)
        .try_collect::<()>()
        .await
}

/// What the push sender hands the subscriber: a payload, or "a shard connection dropped".
enum Push {
    Payload(Vec<u8>),
    Lost,
}

/// The subscriber task on a cluster: as `redis::subscriber` on a single Redis.
pub(super) async fn subscriber(s: Subscriber, seeds: Vec<String>) {
    let mut backoff = Duration::from_millis(50);
    let mut connected_before = false;
    loop {
        let (tx, mut rx) = mpsc::channel::<Push>(PUBLISH_QUEUE);
        let overflowed = Arc::new(AtomicBool::new(false));
        let flag = overflowed.clone();
        let push_sender = move |push: PushInfo| -> Result<(), redis::aio::SendError> {
            let item = match push.kind {
                PushKind::Message | PushKind::SMessage => match push.data.get(1) {
                    Some(Value::BulkString(bytes)) => Push::Payload(bytes.clone()),
                    _ => return Ok(()),
                },
                PushKind::Disconnection => Push::Lost,
                _ => return Ok(()),
            };
            if tx.try_send(item).is_err() {
                flag.store(true, Ordering::Relaxed);
            }
            Ok(())
        };
        let mut have = Wanted::default();
        let subscribed = async {
            let client = RedisTarget::cluster_builder(&seeds)
                .use_protocol(redis::ProtocolVersion::RESP3)
                .push_sender(push_sender)
                .build()?;
            let mut conn = client.get_async_connection().await?;
            conn.subscribe(s.channels.general()).await?;
            // Everything wanted now; the full resync below covers what was missed before.
            reroute(&s, &mut SubSink::Cluster(&mut conn), &mut have, false).await?;
            Ok::<_, redis::RedisError>(conn)
        };
        let conn = tokio::select! {
            _ = s.stop.cancelled() => return,
            r = subscribed => r,
        };
        match conn {
            Ok(mut conn) => {
                backoff = Duration::from_millis(50);
                if connected_before {
                    info!("Redis Cluster subscriptions restored; resynchronising from the store");
                }
                connected_before = true;
                // After subscribing, so that whatever the resync misses arrives through the channels.
                s.bump.send_modify(|n| *n += 1);
                loop {
                    let push = tokio::select! {
                        _ = s.stop.cancelled() => return,
                        _ = s.routes.changed.notified() => {
                            if let Err(e) = reroute(&s, &mut SubSink::Cluster(&mut conn), &mut have, true).await {
                                debug!(error = %e, "changing Redis Cluster subscriptions failed");
                                break;
                            }
                            continue;
                        }
                        p = rx.recv() => p,
                    };
                    match push {
                        Some(Push::Payload(bytes)) => s.received(&bytes),
                        Some(Push::Lost) | None => break,
                    }
                    if overflowed.swap(false, Ordering::Relaxed) {
                        warn!("Redis Cluster pushes dropped (queue full); resynchronising from the store");
                        s.bump.send_modify(|n| *n += 1);
                    }
                }
                warn!("lost a Redis Cluster shard connection; reconnecting");
            }
            Err(e) => debug!(error = %e, "subscribing to the Redis Cluster failed"),
        }
        if !pause(&s.stop, backoff).await {
            return;
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
