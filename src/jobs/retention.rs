//! Message retention: a periodic sweep enqueues one `purge` job per room with a retention period; the
//! job deletes that room's messages older than the cutoff computed at sweep time. Every node sweeps;
//! repeated purges are harmless (a purge is idempotent), so no coordination is needed.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::runner::Handler;
use super::{DynQueue, Job};
use crate::core::domain::RoomId;
use crate::core::ports::clock::DynClock;
use crate::store::DynStore;

pub const KIND: &str = "purge";

/// One `purge` job per room with retention, cutting at `now - retention`.
pub async fn sweep_once(store: &DynStore, queue: &DynQueue, now: i64) -> anyhow::Result<usize> {
    let rooms = store.retention_rooms().await?;
    let jobs: Vec<Job> = rooms
        .iter()
        .map(|(room, secs)| Job::new(KIND, json!({ "room": room.0, "cutoff": now - secs.saturating_mul(1000) })))
        .collect();
    queue.enqueue(&jobs).await?;
    Ok(jobs.len())
}

/// Sweeps every `every` until `stop`, each sweep cutting at `clock`'s now.
pub async fn sweep(store: DynStore, queue: DynQueue, every: Duration, clock: DynClock, stop: CancellationToken) {
    super::every(every, stop, || async {
        if let Err(e) = sweep_once(&store, &queue, clock.now_millis()).await {
            warn!(error = format!("{e:#}"), "retention sweep failed");
        }
    })
    .await
}

/// Runs a `purge` job.
pub struct Purge {
    pub store: DynStore,
}

#[async_trait]
impl Handler for Purge {
    async fn run(&self, job: &Job) -> anyhow::Result<()> {
        let room = job.payload["room"].as_i64().ok_or_else(|| anyhow::anyhow!("purge job without a room"))?;
        let cutoff = job.payload["cutoff"].as_i64().ok_or_else(|| anyhow::anyhow!("purge job without a cutoff"))?;
        let n = self.store.purge_before(RoomId(room), cutoff).await?;
        if n > 0 {
            info!(room, cutoff, purged = n, "retention purged old messages");
        }
        Ok(())
    }
}
