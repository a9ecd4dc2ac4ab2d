//! Worker tasks: reserve a job, run its handler, then acknowledge, retry after a backoff, or bury.
//!
//! Metrics (facade only; the exporter is wired elsewhere): `parley_jobs_queued` (gauge: ready +
//! delayed), `parley_jobs_completed_total`, `parley_jobs_failed_total` (every failed run) and
//! `parley_jobs_dead_total`, the counters labelled by `kind`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::{DynQueue, Job, Reserved};

/// Runs one kind of job. Must be idempotent: a job can run more than once.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    async fn run(&self, job: &Job) -> anyhow::Result<()>;
}

#[derive(Debug, Clone)]
pub struct RunnerConfig {
    pub workers: usize,
    /// Runs before a job is dead-lettered (at least 1).
    pub max_attempts: u32,
    /// The first retry's delay; doubles per attempt, with jitter, up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// One run longer than this counts as failed.
    pub job_timeout: Duration,
    /// How often the gauge, heartbeat and recovery of dead nodes' jobs run.
    pub maintenance_every: Duration,
    /// A node silent this long is dead; its reserved jobs are put back.
    pub node_stale_after: Duration,
}

/// The delay before retry number `attempt` (1 = the first retry): `base · 2^(attempt-1)`, capped at
/// `max`, then scaled by `0.5 + jitter/2` (`jitter` in [0, 1)) so that jobs failing together spread out.
pub fn backoff(base: Duration, max: Duration, attempt: u32, jitter: f64) -> Duration {
    let exp = attempt.saturating_sub(1).min(32);
    let delay = base.saturating_mul(2u32.saturating_pow(exp)).min(max);
    delay.mul_f64(0.5 + jitter.clamp(0.0, 1.0) / 2.0)
}

pub struct Runner {
    queue: DynQueue,
    handlers: HashMap<&'static str, Arc<dyn Handler>>,
    config: RunnerConfig,
}

impl Runner {
    pub fn new(queue: DynQueue, config: RunnerConfig) -> Self {
        Runner { queue, handlers: HashMap::new(), config }
    }

    pub fn handle(mut self, kind: &'static str, handler: Arc<dyn Handler>) -> Self {
        self.handlers.insert(kind, handler);
        self
    }

    /// Starts the workers; they stop once `stop` is cancelled, after finishing the job in hand. The
    /// handle completes when all have stopped.
    pub fn spawn(self, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        let this = Arc::new(self);
        tokio::spawn(async move {
            // Announce this node before taking jobs, so a crash after reserving is always recoverable.
            if let Err(e) = this.queue.heartbeat().await {
                warn!(error = format!("{e:#}"), "job queue heartbeat failed");
            }
            let mut set = JoinSet::new();
            for _ in 0..this.config.workers.max(1) {
                set.spawn(this.clone().worker(stop.clone()));
            }
            set.spawn(this.clone().maintenance(stop.clone()));
            while set.join_next().await.is_some() {}
        })
    }

    async fn worker(self: Arc<Self>, stop: CancellationToken) {
        // Waits are short so that a stop is noticed without cancelling a reservation half-way.
        while !stop.is_cancelled() {
            match self.queue.reserve(Duration::from_millis(500)).await {
                Ok(Some(r)) => self.execute(r).await,
                Ok(None) => {}
                Err(e) => {
                    warn!(error = format!("{e:#}"), "reserving a job failed; retrying in 1 s");
                    tokio::select! {
                        _ = stop.cancelled() => {}
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
    }

    async fn execute(&self, r: Reserved) {
        let kind = r.job.kind.clone();
        let outcome = match self.handlers.get(kind.as_str()) {
            Some(h) => match tokio::time::timeout(self.config.job_timeout, h.run(&r.job)).await {
                Ok(res) => res,
                Err(_) => Err(anyhow::anyhow!("timed out after {:?}", self.config.job_timeout)),
            },
            None => Err(anyhow::anyhow!("no handler for jobs of kind {kind:?}")),
        };
        // What to record, decided once; recording is retried below if the queue hiccups.
        enum Settle {
            Ack,
            Retry(Job, Duration),
            Bury(Job),
        }
        let settle = match outcome {
            Ok(()) => {
                metrics::counter!("parley_jobs_completed_total", "kind" => kind.clone()).increment(1);
                Settle::Ack
            }
            Err(e) => {
                metrics::counter!("parley_jobs_failed_total", "kind" => kind.clone()).increment(1);
                let mut job = r.job.clone();
                job.attempts += 1;
                job.last_error = Some(format!("{e:#}"));
                let unknown = !self.handlers.contains_key(kind.as_str());
                if unknown || job.attempts >= self.config.max_attempts.max(1) {
                    metrics::counter!("parley_jobs_dead_total", "kind" => kind.clone()).increment(1);
                    error!(job = %job.id, kind = %kind, attempts = job.attempts, error = format!("{e:#}"),
                        "job failed for the last time; moved to the dead-letter list");
                    Settle::Bury(job)
                } else {
                    let delay =
                        backoff(self.config.backoff_base, self.config.backoff_max, job.attempts, rand::random::<f64>());
                    warn!(job = %job.id, kind = %kind, attempts = job.attempts, retry_in_ms = delay.as_millis() as u64,
                        error = format!("{e:#}"), "job failed; will retry");
                    Settle::Retry(job, delay)
                }
            }
        };
        let mut pause = Duration::from_millis(100);
        for attempt in 1..=4 {
            let res = match &settle {
                Settle::Ack => self.queue.ack(&r).await,
                Settle::Retry(job, delay) => self.queue.retry(&r, job, *delay).await,
                Settle::Bury(job) => self.queue.bury(&r, job).await,
            };
            match res {
                Ok(()) => return,
                Err(e) if attempt == 4 => {
                    // Left reserved: on Redis it runs again once this node stops and its jobs are recovered.
                    error!(job = %r.job.id, kind = %kind, error = format!("{e:#}"), "recording a job's outcome failed");
                }
                Err(_) => {
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
            }
        }
    }

    async fn maintenance(self: Arc<Self>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(self.config.maintenance_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Err(e) = self.queue.heartbeat().await {
                warn!(error = format!("{e:#}"), "job queue heartbeat failed");
            }
            match self.queue.recover(self.config.node_stale_after).await {
                Ok(0) => {}
                Ok(n) => info!(jobs = n, "put back jobs reserved by nodes that stopped"),
                Err(e) => warn!(error = format!("{e:#}"), "recovering jobs of stopped nodes failed"),
            }
            match self.queue.depth().await {
                Ok(d) => metrics::gauge!("parley_jobs_queued").set((d.ready + d.delayed) as f64),
                Err(e) => warn!(error = format!("{e:#}"), "reading the job queue depth failed"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_a_cap() {
        let (base, max) = (Duration::from_millis(100), Duration::from_secs(5));
        assert_eq!(backoff(base, max, 1, 1.0), base);
        assert_eq!(backoff(base, max, 1, 0.0), base / 2, "jitter takes off at most half");
        assert_eq!(backoff(base, max, 2, 1.0), base * 2);
        assert_eq!(backoff(base, max, 4, 1.0), base * 8);
        assert_eq!(backoff(base, max, 30, 1.0), max, "capped");
        assert_eq!(backoff(base, max, u32::MAX, 0.0), max / 2, "no overflow");
        for a in 1..20 {
            let d = backoff(base, max, a, 0.37);
            assert!(d >= base / 2 && d <= max, "{a}: {d:?}");
            assert!(backoff(base, max, a + 1, 0.37) >= d, "never shrinks");
        }
    }

    struct FailTwice(parking_lot::Mutex<u32>, tokio::sync::mpsc::UnboundedSender<u32>);

    #[async_trait]
    impl Handler for FailTwice {
        async fn run(&self, _job: &Job) -> anyhow::Result<()> {
            let n = {
                let mut g = self.0.lock();
                *g += 1;
                *g
            };
            let _ = self.1.send(n);
            if n <= 2 { Err(anyhow::anyhow!("run {n} fails")) } else { Ok(()) }
        }
    }

    fn config(max_attempts: u32) -> RunnerConfig {
        RunnerConfig {
            workers: 2,
            max_attempts,
            backoff_base: Duration::from_millis(5),
            backoff_max: Duration::from_millis(50),
            job_timeout: Duration::from_secs(5),
            maintenance_every: Duration::from_millis(50),
            node_stale_after: Duration::from_secs(30),
        }
    }

    async fn run_until_settled(max_attempts: u32) -> (u32, crate::jobs::Depth, Vec<Job>) {
        use crate::jobs::JobQueue;
        let queue = Arc::new(crate::jobs::memory::MemoryQueue::new(10));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let stop = CancellationToken::new();
        let handle = Runner::new(queue.clone(), config(max_attempts))
            .handle("flaky", Arc::new(FailTwice(parking_lot::Mutex::new(0), tx)))
            .spawn(stop.clone());
        queue.enqueue(&[Job::new("flaky", serde_json::json!({}))]).await.unwrap();
        let mut runs = 0;
        // Each run reports itself; the job settles after the last one.
        while runs < max_attempts.min(3) {
            runs = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let depth = loop {
            let d = queue.depth().await.unwrap();
            if d.ready + d.delayed + d.processing == 0 {
                break d;
            }
            assert!(tokio::time::Instant::now() < deadline, "never settled: {d:?}");
            tokio::task::yield_now().await;
        };
        stop.cancel();
        handle.await.unwrap();
        (runs, depth, queue.dead(10).await.unwrap())
    }

    #[tokio::test]
    async fn failing_jobs_are_retried_then_succeed() {
        let (runs, depth, dead) = run_until_settled(5).await;
        assert_eq!(runs, 3);
        assert_eq!(depth.dead, 0);
        assert!(dead.is_empty());
    }

    #[tokio::test]
    async fn jobs_failing_every_attempt_are_dead_lettered() {
        let (runs, depth, dead) = run_until_settled(2).await;
        assert_eq!(runs, 2);
        assert_eq!(depth.dead, 1);
        assert_eq!(dead[0].attempts, 2);
        assert_eq!(dead[0].last_error.as_deref(), Some("run 2 fails"));
    }
}
