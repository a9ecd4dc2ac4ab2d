//! Group commit: the one path by which messages enter the store.
//!
//! Senders queue their message and wait; a single writer task takes everything queued (up to
//! `max_batch`), stores it in one transaction, publishes the stored messages to the broker **in commit
//! order**, and only then answers the senders. So:
//! - one disk sync acknowledges a whole batch (throughput grows with load instead of collapsing);
//! - per room, the broker sees messages in `seq` order, which is what lets the hub deliver in order;
//! - an acknowledgement always means "on disk", because it is sent after the commit.
//!
//! After answering, the writer hands the batch's stored messages to an optional [`StoredHook`]
//! (background jobs such as webhooks): acknowledgements never wait for it.

use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};
use tracing::error;

use super::domain::{Appended, Message, NewMessage};
use super::error::{Error, Result};
use crate::broker::{BrokerEvent, DynBroker};
use crate::store::DynStore;

/// Receives, per committed batch, the messages it stored (in commit order). Bounded: a consumer
/// that falls far behind slows the writer (after the senders have their answers) rather than losing
/// messages.
pub type StoredHook = mpsc::Sender<Vec<Arc<Message>>>;

struct Job {
    msg: NewMessage,
    reply: oneshot::Sender<Result<Appended>>,
}

pub struct Ingest {
    /// `None` once closed; the writer ends when the queue is empty and every sender is gone.
    tx: Mutex<Option<mpsc::Sender<Job>>>,
}

/// A message in the queue: await [`Queued::wait`] for the store's answer.
pub struct Queued(oneshot::Receiver<Result<Appended>>);

impl Queued {
    pub async fn wait(self) -> Result<Appended> {
        self.0.await.map_err(|_| Error::ShuttingDown)?
    }
}

impl Ingest {
    /// Starts the writer. Await the returned handle after [`Ingest::close`] to know every queued
    /// message has been stored and answered.
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
        let (tx, rx) = mpsc::channel(queue);
        let handle = tokio::spawn(writer(rx, store, broker, max_batch, hook));
        (Ingest { tx: Mutex::new(Some(tx)) }, handle)
    }

    /// Queues `msg`; waits only while the queue is full (backpressure), not for the store.
    pub async fn enqueue(&self, msg: NewMessage) -> Result<Queued> {
        let tx = self.tx.lock().clone().ok_or(Error::ShuttingDown)?;
        let (reply, rx) = oneshot::channel();
        tx.send(Job { msg, reply }).await.map_err(|_| Error::ShuttingDown)?;
        Ok(Queued(rx))
    }

    /// Stores `msg` and waits until it is durable (or refused).
    pub async fn append(&self, msg: NewMessage) -> Result<Appended> {
        self.enqueue(msg).await?.wait().await
    }

    /// Refuses new messages; those already queued are still stored.
    pub fn close(&self) {
        self.tx.lock().take();
    }
}

async fn writer(
    mut rx: mpsc::Receiver<Job>,
    store: DynStore,
    broker: DynBroker,
    max_batch: usize,
    hook: Option<StoredHook>,
) {
    let mut msgs = Vec::with_capacity(max_batch);
    let mut replies = Vec::with_capacity(max_batch);
    let mut jobs = Vec::with_capacity(max_batch);
    let store_latency = metrics::histogram!("parley_store_append_seconds");
    let publish_latency = metrics::histogram!("parley_broker_publish_seconds");
    while rx.recv_many(&mut jobs, max_batch).await > 0 {
        for Job { msg, reply } in jobs.drain(..) {
            msgs.push(msg);
            replies.push(reply);
        }
        let started = std::time::Instant::now();
        let appended = store.append(&msgs).await;
        store_latency.record(started.elapsed().as_secs_f64());
        match appended {
            Ok(results) => {
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
                error!(error = format!("{:#}", anyhow::Error::new(e)), batch = msgs.len(), "storing a batch failed");
                for reply in replies.drain(..) {
                    let _ = reply.send(Err(Error::Unavailable));
                }
            }
        }
        msgs.clear();
    }
}
