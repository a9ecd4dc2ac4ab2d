//! Background jobs: a queue with at-least-once execution, retries with backoff and a dead-letter list.
//!
//! - [`JobQueue`] is the queue: [`memory::MemoryQueue`] in-process (one node), [`redis::RedisQueue`]
//!   across nodes (`--redis-url`). Both pass [`contract`].
//! - [`runner::Runner`] runs jobs on worker tasks: a failed job is retried after an exponential backoff
//!   with jitter, and after `--job-max-attempts` it goes to the dead-letter list.
//! - Job kinds: [`retention`] (`purge`: delete a room's messages older than a cutoff) and [`webhook`]
//!   (`webhook`: POST one message, signed, to a room's webhook).
//!
//! At-least-once: a job leaves the queue only when acknowledged after it ran, so a crash between running
//! and acknowledging runs it again. Handlers are therefore idempotent (a purge repeats harmlessly; a
//! webhook delivery carries its job id in `X-Parley-Delivery` for receivers to drop repeats).

pub mod blob_gc;
#[cfg(test)]
mod contract;
pub mod memory;
pub mod redis;
pub mod retention;
pub mod runner;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::core::domain::now_millis;

/// One unit of work, as stored in a queue (JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Unique; also the webhook delivery id.
    pub id: String,
    /// Which handler runs it (`purge`, `webhook`).
    pub kind: String,
    pub payload: serde_json::Value,
    /// Runs that failed so far.
    #[serde(default)]
    pub attempts: u32,
    /// The last failure, for the dead-letter list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub enqueued_at: i64,
}

impl Job {
    pub fn new(kind: &str, payload: serde_json::Value) -> Self {
        Job {
            id: hex::encode(rand::random::<[u8; 12]>()),
            kind: kind.to_owned(),
            payload,
            attempts: 0,
            last_error: None,
            enqueued_at: now_millis(),
        }
    }
}

/// A job taken from the queue by one worker; it stays invisible to others until acknowledged,
/// retried or buried (or, on Redis, until its node is found dead and its jobs are recovered).
#[derive(Debug, Clone)]
pub struct Reserved {
    pub job: Job,
    /// The exact stored form, which identifies it in the processing list.
    raw: String,
}

impl Reserved {
    fn new(job: Job, raw: String) -> Self {
        Reserved { job, raw }
    }
}

/// How many jobs are where.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Depth {
    pub ready: u64,
    pub delayed: u64,
    pub processing: u64,
    pub dead: u64,
}

#[async_trait]
pub trait JobQueue: Send + Sync + 'static {
    /// Adds jobs, ready now.
    async fn enqueue(&self, jobs: &[Job]) -> anyhow::Result<()>;
    /// Takes the next ready job (promoting delayed jobs that are due), waiting up to `wait` for one.
    async fn reserve(&self, wait: Duration) -> anyhow::Result<Option<Reserved>>;
    /// Done: the job leaves the queue.
    async fn ack(&self, r: &Reserved) -> anyhow::Result<()>;
    /// Failed: `job` (with its attempts and error updated) becomes ready again after `delay`.
    async fn retry(&self, r: &Reserved, job: &Job, delay: Duration) -> anyhow::Result<()>;
    /// Failed for good: `job` moves to the dead-letter list (newest first, bounded).
    async fn bury(&self, r: &Reserved, job: &Job) -> anyhow::Result<()>;
    /// The newest `limit` dead jobs.
    async fn dead(&self, limit: usize) -> anyhow::Result<Vec<Job>>;
    async fn depth(&self) -> anyhow::Result<Depth>;
    /// Says this node is alive (Redis: other nodes recover the jobs of nodes that stop saying so).
    async fn heartbeat(&self) -> anyhow::Result<()> {
        Ok(())
    }
    /// Puts back the jobs that nodes silent for longer than `stale` had reserved; how many.
    async fn recover(&self, _stale: Duration) -> anyhow::Result<u64> {
        Ok(0)
    }
}

pub type DynQueue = Arc<dyn JobQueue>;

/// How many dead jobs a queue keeps.
pub const DEAD_LIMIT: usize = 1000;

/// Runs `work` now and then every `every` until `stop` (missed ticks are not made up): the shape of the
/// periodic sweeps that feed the queue.
pub async fn every<F, Fut>(every: Duration, stop: tokio_util::sync::CancellationToken, mut work: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        work().await;
    }
}
