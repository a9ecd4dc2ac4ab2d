//! The in-process queue: one node, nothing kept across restarts (a restart loses queued jobs; the
//! retention sweep makes its purges again, webhook deliveries still queued are lost — use Redis for
//! those to survive). Bounded: enqueueing into a full queue fails instead of growing without limit.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use anyhow::bail;
use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{DEAD_LIMIT, Depth, Job, JobQueue, Reserved};

#[derive(Default)]
struct State {
    ready: VecDeque<Job>,
    /// By due time, then insertion order.
    delayed: BTreeMap<(Instant, u64), Job>,
    processing: HashMap<String, Job>,
    dead: VecDeque<Job>,
    counter: u64,
}

pub struct MemoryQueue {
    state: Mutex<State>,
    notify: Notify,
    capacity: usize,
}

impl MemoryQueue {
    /// A queue holding at most `capacity` ready, delayed and running jobs together.
    pub fn new(capacity: usize) -> Self {
        MemoryQueue { state: Mutex::new(State::default()), notify: Notify::new(), capacity }
    }

    /// Moves due delayed jobs to the ready list; when the next one is due otherwise.
    fn promote(s: &mut State, now: Instant) -> Option<Instant> {
        while let Some(entry) = s.delayed.first_entry() {
            if entry.key().0 > now {
                return Some(entry.key().0);
            }
            s.ready.push_back(entry.remove());
        }
        None
    }
}

#[async_trait]
impl JobQueue for MemoryQueue {
    async fn enqueue(&self, jobs: &[Job]) -> anyhow::Result<()> {
        {
            let mut s = self.state.lock();
            let held = s.ready.len() + s.delayed.len() + s.processing.len();
            if held + jobs.len() > self.capacity {
                bail!("the job queue is full ({} jobs)", self.capacity);
            }
            s.ready.extend(jobs.iter().cloned());
        }
        self.notify.notify_waiters();
        Ok(())
    }

    async fn reserve(&self, wait: Duration) -> anyhow::Result<Option<Reserved>> {
        let deadline = Instant::now() + wait;
        loop {
            // Registered before looking, so an enqueue in between still wakes us.
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let next_due = {
                let mut s = self.state.lock();
                let next_due = Self::promote(&mut s, Instant::now());
                if let Some(job) = s.ready.pop_front() {
                    // Keyed by reservation, not job id: one job can be queued twice (at least once).
                    s.counter += 1;
                    let token = s.counter.to_string();
                    s.processing.insert(token.clone(), job.clone());
                    return Ok(Some(Reserved::new(job, token)));
                }
                next_due
            };
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let until = next_due.map_or(deadline, |d| d.min(deadline));
            let _ = tokio::time::timeout_at(until, notified).await;
        }
    }

    async fn ack(&self, r: &Reserved) -> anyhow::Result<()> {
        self.state.lock().processing.remove(&r.raw);
        Ok(())
    }

    async fn retry(&self, r: &Reserved, job: &Job, delay: Duration) -> anyhow::Result<()> {
        {
            let mut s = self.state.lock();
            s.processing.remove(&r.raw);
            s.counter += 1;
            let key = (Instant::now() + delay, s.counter);
            s.delayed.insert(key, job.clone());
        }
        // A waiting worker recomputes when to wake up.
        self.notify.notify_waiters();
        Ok(())
    }

    async fn bury(&self, r: &Reserved, job: &Job) -> anyhow::Result<()> {
        let mut s = self.state.lock();
        s.processing.remove(&r.raw);
        s.dead.push_front(job.clone());
        s.dead.truncate(DEAD_LIMIT);
        Ok(())
    }

    async fn dead(&self, limit: usize) -> anyhow::Result<Vec<Job>> {
        Ok(self.state.lock().dead.iter().take(limit).cloned().collect())
    }

    async fn depth(&self) -> anyhow::Result<Depth> {
        let s = self.state.lock();
        Ok(Depth {
            ready: s.ready.len() as u64,
            delayed: s.delayed.len() as u64,
            processing: s.processing.len() as u64,
            dead: s.dead.len() as u64,
        })
    }
}
