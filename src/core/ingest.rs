//! Group commit: the one path by which messages enter the store.
//!
//! Senders queue their message and wait; a single writer task takes everything queued (up to
//! `max_batch`), stores it in one transaction, publishes the stored messages to the broker **in commit
//! order**, and only then answers the senders. So:
//! - one disk sync acknowledges a whole batch (throughput grows with load instead of collapsing);
//! - per room, the broker sees messages in `seq` order, which is what lets the hub deliver in order;
//! - an acknowledgement always means "on disk", because it is sent after the commit.
//!
//! Every message carries a **deadline** (`--send-timeout-ms` after the send began): waiting for queue
//! room, waiting in the queue and waiting for the commit all end there with `Error::Unavailable`. A
//! message still queued at its deadline is dropped by the writer, never stored; one already inside a
//! batch being committed may still be stored, and a resend with the same `client_id` then answers its
//! original acknowledgement. The writer also keeps its [`WriterHealth`] for `/readyz`: a failed batch
//! makes it `failing` until a later batch or a write probe (every second while idle) succeeds, and a
//! store call running past the send timeout makes it `stalled`.
//!
//! After answering, the writer hands the batch's stored messages to an optional [`StoredHook`]
//! (background jobs such as webhooks): acknowledgements never wait for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{error, info};

use super::domain::{Appended, Message, NewMessage};
use super::error::{Error, Result};
use super::ports::broker::{BrokerEvent, DynBroker};
use super::ports::store::DynStore;

/// Receives, per committed batch, the messages it stored (in commit order). Bounded: a consumer
/// that falls far behind slows the writer (after the senders have their answers) rather than losing
/// messages.
pub type StoredHook = mpsc::Sender<Vec<Arc<Message>>>;

/// The default bound on how long a send waits for its outcome (`--send-timeout-ms`).
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// How often an idle writer whose last write failed probes the store with a tiny write.
const PROBE_EVERY: Duration = Duration::from_secs(1);

struct Job {
    msg: NewMessage,
    deadline: Instant,
    reply: oneshot::Sender<Result<Appended>>,
}

/// How the writer is doing, for readiness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriterHealth {
    Ok,
    /// The last write failed (the cause was logged); cleared by the next write that succeeds.
    Failing,
    /// One store call has been running for longer than the send timeout.
    Stalled,
}

impl WriterHealth {
    pub fn as_str(&self) -> &'static str {
        match self {
            WriterHealth::Ok => "ok",
            WriterHealth::Failing => "failing",
            WriterHealth::Stalled => "stalled",
        }
    }
}

/// Shared between the writer and readers of [`Ingest::health`].
struct Health {
    epoch: std::time::Instant,
    /// Milliseconds since `epoch` + 1 at which the store call in flight began; 0 when idle.
    busy_since: AtomicU64,
    failing: std::sync::atomic::AtomicBool,
    batches: BatchesStarted,
}

impl Health {
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }
}

/// What [`Ingest::start_with`] needs.
pub struct IngestOptions {
    /// Messages that may wait for the writer (senders beyond wait for room, within their deadline).
    pub queue: usize,
    /// Messages stored in one transaction at most.
    pub max_batch: usize,
    /// The bound on a send, from its start to its outcome.
    pub send_timeout: Duration,
    pub hook: Option<StoredHook>,
    /// Counts the batches the writer hands to the store; [`BatchesStarted::default`] when nobody watches.
    pub batches: BatchesStarted,
}

/// How many batches the writer has handed to the store (counted as each store call begins, whether it
/// then succeeds, fails or hangs): the moment "a batch is in the store's hands", which a test waits on
/// instead of sleeping. Per writer (unlike the process-wide metrics), so concurrent nodes do not mix.
#[derive(Debug, Clone, Default)]
pub struct BatchesStarted(Arc<AtomicU64>);

impl BatchesStarted {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    fn bump(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}

pub struct Ingest {
    /// `None` once closed; the writer ends when the queue is empty and every sender is gone.
    tx: Mutex<Option<mpsc::Sender<Job>>>,
    send_timeout: Duration,
    health: Arc<Health>,
}

/// A message in the queue: await [`Queued::wait`] for the store's answer.
pub struct Queued {
    rx: oneshot::Receiver<Result<Appended>>,
    deadline: Instant,
}

impl Queued {
    /// The store's answer, or `Error::Unavailable` once the send's deadline has passed.
    pub async fn wait(self) -> Result<Appended> {
        match tokio::time::timeout_at(self.deadline, self.rx).await {
            Ok(answer) => answer.map_err(|_| Error::ShuttingDown)?,
            Err(_) => {
                metrics::counter!("parley_send_timeouts_total").increment(1);
                Err(Error::Unavailable)
            }
        }
    }
}

impl Ingest {
    /// Starts the writer with the default send timeout. Await the returned handle after
    /// [`Ingest::close`] to know every queued message has been stored and answered.
    pub fn start(
        store: DynStore,
        broker: DynBroker,
        queue: usize,
        max_batch: usize,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        Self::start_with_hook(store, broker, queue, max_batch, None)
    }

    /// Like [`Ingest::start`], also feeding `hook` with every stored message.
    pub fn start_with_hook(
        store: DynStore,
        broker: DynBroker,
        queue: usize,
        max_batch: usize,
        hook: Option<StoredHook>,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        Self::start_with(
            store,
            broker,
            IngestOptions {
                queue,
                max_batch,
                send_timeout: DEFAULT_SEND_TIMEOUT,
                hook,
                batches: BatchesStarted::default(),
            },
        )
    }

    pub fn start_with(store: DynStore, broker: DynBroker, opts: IngestOptions) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(opts.queue.max(1));
        let health = Arc::new(Health {
            epoch: std::time::Instant::now(),
            busy_since: AtomicU64::new(0),
            failing: std::sync::atomic::AtomicBool::new(false),
            batches: opts.batches,
        });
        let handle = tokio::spawn(writer(rx, store, broker, opts.max_batch.max(1), opts.hook, health.clone()));
        (Ingest { tx: Mutex::new(Some(tx)), send_timeout: opts.send_timeout, health }, handle)
    }

    /// The bound on a send, from its start to its outcome.
    pub fn send_timeout(&self) -> Duration {
        self.send_timeout
    }

    /// Whether the writer can take messages now.
    pub fn health(&self) -> WriterHealth {
        let since = self.health.busy_since.load(Ordering::Acquire);
        if since != 0 && self.health.now().saturating_sub(since) > self.send_timeout.as_millis() as u64 {
            return WriterHealth::Stalled;
        }
        if self.health.failing.load(Ordering::Acquire) {
            return WriterHealth::Failing;
        }
        WriterHealth::Ok
    }

    /// Queues `msg` with a deadline of one send timeout from now.
    pub async fn enqueue(&self, msg: NewMessage) -> Result<Queued> {
        self.enqueue_until(msg, Instant::now() + self.send_timeout).await
    }

    /// Queues `msg`; waits only while the queue is full (backpressure), not for the store, and not
    /// past `deadline` (`Error::Unavailable`).
    pub async fn enqueue_until(&self, msg: NewMessage, deadline: Instant) -> Result<Queued> {
        let tx = self.tx.lock().clone().ok_or(Error::ShuttingDown)?;
        let (reply, rx) = oneshot::channel();
        let job = Job { msg, deadline, reply };
        let sent = match tx.try_send(job) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(Error::ShuttingDown),
            Err(mpsc::error::TrySendError::Full(job)) => {
                tx.send_timeout(job, deadline.saturating_duration_since(Instant::now())).await
            }
        };
        match sent {
            Ok(()) => Ok(Queued { rx, deadline }),
            Err(mpsc::error::SendTimeoutError::Closed(_)) => Err(Error::ShuttingDown),
            Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                metrics::counter!("parley_send_timeouts_total").increment(1);
                Err(Error::Unavailable)
            }
        }
    }

    /// Stores `msg` and waits until it is durable (or refused), within the send timeout.
    pub async fn append(&self, msg: NewMessage) -> Result<Appended> {
        self.enqueue(msg).await?.wait().await
    }

    /// Refuses new messages; those already queued are still stored.
    pub fn close(&self) {
        self.tx.lock().take();
    }
}

/// Runs `f` with the health's busy mark set, so a stuck store call shows as `stalled`.
async fn busy<T>(health: &Health, f: impl Future<Output = T>) -> T {
    health.busy_since.store(health.now(), Ordering::Release);
    let out = f.await;
    health.busy_since.store(0, Ordering::Release);
    out
}

fn set_failing(health: &Health, failing: bool) {
    let was = health.failing.swap(failing, Ordering::AcqRel);
    if was && !failing {
        info!("storing messages works again");
    }
}

async fn writer(
    mut rx: mpsc::Receiver<Job>,
    store: DynStore,
    broker: DynBroker,
    max_batch: usize,
    hook: Option<StoredHook>,
    health: Arc<Health>,
) {
    let mut msgs = Vec::with_capacity(max_batch);
    let mut replies = Vec::with_capacity(max_batch);
    let mut jobs = Vec::with_capacity(max_batch);
    let store_latency = metrics::histogram!("parley_store_append_seconds");
    let publish_latency = metrics::histogram!("parley_broker_publish_seconds");
    loop {
        // While failing and idle, probe with a tiny write so readiness comes back without traffic.
        let received = if health.failing.load(Ordering::Acquire) {
            tokio::select! {
                n = rx.recv_many(&mut jobs, max_batch) => n,
                _ = tokio::time::sleep(PROBE_EVERY) => {
                    if busy(&health, store.probe_write()).await.is_ok() {
                        set_failing(&health, false);
                    }
                    continue;
                }
            }
        } else {
            rx.recv_many(&mut jobs, max_batch).await
        };
        if received == 0 {
            break;
        }
        let now = Instant::now();
        for Job { msg, deadline, reply } in jobs.drain(..) {
            if deadline <= now {
                // Its sender has been answered `unavailable`: never store it.
                let _ = reply.send(Err(Error::Unavailable));
                continue;
            }
            msgs.push(msg);
            replies.push(reply);
        }
        if msgs.is_empty() {
            continue;
        }
        let started = std::time::Instant::now();
        let appended = busy(&health, async {
            health.batches.bump();
            store.append(&msgs).await
        })
        .await;
        store_latency.record(started.elapsed().as_secs_f64());
        match appended {
            Ok(results) => {
                set_failing(&health, false);
                for (i, r) in results.iter().enumerate() {
                    // Let connection tasks on this worker drain their queues during a large batch, so a
                    // burst is not mistaken for a slow client.
                    if i % 64 == 63 {
                        tokio::task::yield_now().await;
                    }
                    if let Appended::Stored(m) = r {
                        let started = std::time::Instant::now();
                        let published = broker.publish(BrokerEvent::Message(m.clone())).await;
                        publish_latency.record(started.elapsed().as_secs_f64());
                        if let Err(e) = published {
                            // Stored but not delivered live: receivers recover it from history.
                            error!(
                                error = format!("{:#}", anyhow::Error::new(e)),
                                "publishing a stored message failed"
                            );
                        }
                    }
                }
                let stored: Vec<Arc<Message>> = match &hook {
                    Some(_) => results
                        .iter()
                        .filter_map(|r| if let Appended::Stored(m) = r { Some(m.clone()) } else { None })
                        .collect(),
                    None => Vec::new(),
                };
                for (reply, r) in replies.drain(..).zip(results) {
                    let _ = reply.send(Ok(r));
                }
                if let Some(hook) = &hook
                    && !stored.is_empty()
                    && hook.send(stored).await.is_err()
                {
                    error!("the stored-message hook is gone; background jobs miss this batch");
                }
            }
            Err(e) => {
                set_failing(&health, true);
                error!(error = format!("{:#}", anyhow::Error::new(e)), batch = msgs.len(), "storing a batch failed");
                for reply in replies.drain(..) {
                    let _ = reply.send(Err(Error::Unavailable));
                }
            }
        }
        msgs.clear();
    }
}
