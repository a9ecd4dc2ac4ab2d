//! Outgoing webhooks: every stored text message of a room is POSTed, signed, to each of its webhooks.
//!
//! Each webhook has a durable cursor, `delivered_seq`: its room's messages up to there are queued. The
//! ingest writer hands each committed batch to [`dispatch`] (after acknowledging the senders), which
//! looks up the batch's rooms' webhooks in one query, enqueues one `webhook` job per new text message
//! and webhook, then moves the cursor. [`catch_up`] (at start and periodically) does the same from the
//! store for anything a crash or a failure left behind: together, every message is queued at least
//! once. The job carries the exact JSON body to send; the URL and secret are read when it runs (a
//! deleted webhook's pending deliveries are dropped, and secrets never sit in the queue).
//!
//! Signature (docs/PROTOCOL.md): `X-Parley-Signature: sha256=HEX(HMAC-SHA256(secret, TIMESTAMP + "." +
//! BODY))` with `X-Parley-Timestamp: TIMESTAMP` (Unix seconds) and `X-Parley-Delivery: JOB_ID`, the same
//! on every retry of one delivery.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use parley_proto::answers::DeadDeliveryW;
use serde_json::json;
use sha2::Sha256;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::runner::Handler;
use super::{DynQueue, Job};
use crate::core::domain::{HistoryQuery, Message, MessageKind, RoomId, Seq, Webhook};
use crate::store::DynStore;

pub const KIND: &str = "webhook";

/// `sha256=` and the hex HMAC-SHA256 of `timestamp.body` under `secret`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// What a receiver does: recompute and compare in constant time.
pub fn verify(secret: &[u8], timestamp: i64, body: &[u8], signature: &str) -> bool {
    let Some(hex_sig) = signature.strip_prefix("sha256=") else { return false };
    let Ok(given) = hex::decode(hex_sig) else { return false };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

/// The JSON body POSTed for one message.
fn body_for(m: &Message, room_name: &str) -> String {
    let sender = m.sender.as_ref();
    json!({
        "type": "message",
        "room": m.room.0,
        "room_name": room_name,
        "seq": m.seq,
        "sender": sender.map(|u| u.username.as_str()),
        "sender_id": sender.map(|u| u.id.0),
        "sender_display_name": sender.map(|u| u.display_name.as_str()),
        "body": m.body,
        "client_id": m.client_id,
        "sent_at": m.ts,
    })
    .to_string()
}

/// Messages queued per webhook per round at most, so one far-behind webhook cannot stall the others.
const ROUND: i64 = 10_000;

/// The delivery (job) id of `seq` to `hook`: the same however often the message is queued, so that
/// receivers can drop repeats by `X-Parley-Delivery`.
fn delivery_id(hook: &Webhook, seq: Seq) -> String {
    format!("wh{}-{}-{}", hook.id, hook.room.0, seq)
}

/// Queues `hook`'s deliveries of the room's messages after its cursor up to `through`, then moves the
/// cursor there. `known` are messages of the room already in hand (the committed batch): used instead
/// of reading the store when they continue the cursor without a gap. Queue first, move the cursor
/// second: a crash in between queues them again (at least once), never loses them.
async fn advance(
    store: &DynStore,
    queue: &DynQueue,
    hook: &Webhook,
    room_name: &str,
    known: &[Arc<Message>],
    through: Seq,
) -> anyhow::Result<usize> {
    let from = hook.delivered_seq;
    let through = through.min(from + ROUND);
    if through <= from {
        return Ok(0);
    }
    let fresh: Vec<&Arc<Message>> = known.iter().filter(|m| m.seq > from && m.seq <= through).collect();
    let gapless = fresh.first().is_some_and(|m| m.seq == from + 1)
        && fresh.windows(2).all(|w| w[1].seq == w[0].seq + 1)
        && fresh.last().is_some_and(|m| m.seq == through);
    let msgs: Vec<Arc<Message>> = if gapless {
        fresh.into_iter().cloned().collect()
    } else {
        let mut out = Vec::new();
        let mut after = from;
        'pages: loop {
            let page = store.history(hook.room, HistoryQuery::After { after, limit: HistoryQuery::MAX_LIMIT }).await?;
            for m in page.messages {
                if m.seq > through {
                    break 'pages;
                }
                after = m.seq;
                out.push(m);
            }
            if !page.has_more || after >= through {
                break;
            }
        }
        out
    };
    let jobs: Vec<Job> = msgs
        .iter()
        .filter(|m| m.kind == MessageKind::Text && !m.deleted)
        .map(|m| {
            let mut job = Job::new(
                KIND,
                json!({ "webhook": hook.id, "room": m.room.0, "seq": m.seq, "body": body_for(m, room_name) }),
            );
            job.id = delivery_id(hook, m.seq);
            job
        })
        .collect();
    queue.enqueue(&jobs).await?;
    // False when another node moved it meanwhile: it queued the same deliveries (same ids).
    store.advance_webhook(hook.id, from, through).await?;
    Ok(jobs.len())
}

/// Turns committed batches into webhook jobs until the ingest writer stops (its sender is dropped).
pub async fn dispatch(mut rx: mpsc::Receiver<Vec<Arc<Message>>>, store: DynStore, queue: DynQueue) {
    while let Some(batch) = rx.recv().await {
        let rooms: Vec<RoomId> = batch.iter().map(|m| m.room).collect::<BTreeSet<_>>().into_iter().collect();
        let hooks = match store.webhooks_for(&rooms).await {
            Ok(h) => h,
            Err(e) => {
                // The periodic catch-up queues them later.
                error!(error = format!("{:#}", anyhow::Error::new(e)), "looking up webhooks failed");
                continue;
            }
        };
        let mut names: HashMap<RoomId, String> = HashMap::new();
        for hook in &hooks {
            let known: Vec<Arc<Message>> = batch.iter().filter(|m| m.room == hook.room).cloned().collect();
            let Some(through) = known.last().map(|m| m.seq) else { continue };
            if let std::collections::hash_map::Entry::Vacant(e) = names.entry(hook.room) {
                e.insert(store.room(hook.room).await.ok().flatten().map(|r| r.name).unwrap_or_default());
            }
            match advance(&store, &queue, hook, &names[&hook.room], &known, through).await {
                Ok(n) => debug!(webhook = hook.id, jobs = n, "webhook deliveries queued"),
                Err(e) => error!(
                    webhook = hook.id,
                    error = format!("{e:#}"),
                    "queueing webhook deliveries failed; the catch-up retries"
                ),
            }
        }
    }
}

/// Queues what every webhook has not had yet (messages stored while no dispatcher ran: a crash, a
/// lost batch); how many deliveries.
pub async fn catch_up(store: &DynStore, queue: &DynQueue) -> anyhow::Result<usize> {
    let mut queued = 0;
    for hook in store.all_webhooks().await? {
        let Some(room) = store.room(hook.room).await? else { continue };
        queued += advance(store, queue, &hook, &room.name, &[], room.last_seq).await?;
    }
    Ok(queued)
}

/// Runs [`catch_up`] now and every `every` until `stop`.
pub async fn catch_up_every(store: DynStore, queue: DynQueue, every: Duration, stop: CancellationToken) {
    super::every(every, stop, || async {
        match catch_up(&store, &queue).await {
            Ok(0) => {}
            Ok(n) => info!(jobs = n, "webhook catch-up queued deliveries"),
            Err(e) => warn!(error = format!("{e:#}"), "webhook catch-up failed"),
        }
    })
    .await
}

/// Whether an address is reachable on the public internet: not loopback, private, link-local,
/// carrier-grade NAT, unique-local, unspecified or broadcast. Any room admin can register a webhook, so
/// without this the server could be made to probe its own network.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (b & 0xc0) == 64))
        }
        IpAddr::V6(v6) => {
            let s0 = v6.segments()[0];
            let mapped_ok = v6.to_ipv4_mapped().is_none_or(|v4| is_public(IpAddr::V4(v4)));
            !(v6.is_loopback() || v6.is_unspecified() || (s0 & 0xfe00) == 0xfc00 || (s0 & 0xffc0) == 0xfe80)
                && mapped_ok
        }
    }
}

/// Resolves names to their public addresses only (see [`is_public`]).
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let public: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err(format!("{host} has no public address (see --webhook-allow-private)").into());
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Delivers one `webhook` job.
pub struct Deliver {
    pub store: DynStore,
    pub http: reqwest::Client,
    /// Whether loopback and private addresses may receive deliveries (`--webhook-allow-private`).
    pub allow_private: bool,
}

impl Deliver {
    /// A client with a short timeout that never follows redirects (a webhook is one exact URL).
    pub fn new(
        store: DynStore,
        timeout: Duration,
        allow_private: bool,
        ca_file: Option<&std::path::Path>,
    ) -> anyhow::Result<Self> {
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("parley-webhooks/", env!("CARGO_PKG_VERSION")));
        if !allow_private {
            builder = builder.dns_resolver(Arc::new(PublicOnly));
        }
        if let Some(path) = ca_file {
            use anyhow::Context as _;
            let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let roots = reqwest::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("{} holds no PEM certificate", path.display()))?;
            anyhow::ensure!(!roots.is_empty(), "{} holds no PEM certificate", path.display());
            for root in roots {
                builder = builder.add_root_certificate(root);
            }
        }
        Ok(Deliver { store, http: builder.build()?, allow_private })
    }
}

#[async_trait]
impl Handler for Deliver {
    async fn run(&self, job: &Job) -> anyhow::Result<()> {
        let id = job.payload["webhook"].as_i64().ok_or_else(|| anyhow::anyhow!("webhook job without a webhook id"))?;
        let body = job.payload["body"].as_str().ok_or_else(|| anyhow::anyhow!("webhook job without a body"))?;
        let Some(hook) = self.store.webhook(id).await? else {
            debug!(webhook = id, job = %job.id, "webhook deleted; delivery dropped");
            return Ok(());
        };
        if !self.allow_private {
            // Addresses written as such are never resolved, so they are checked here.
            let url = reqwest::Url::parse(&hook.url).map_err(|e| anyhow::anyhow!("webhook {id} has a bad URL: {e}"))?;
            let host = url.host_str().unwrap_or("").trim_start_matches('[').trim_end_matches(']');
            if let Some(ip) = host.parse::<IpAddr>().ok().filter(|ip| !is_public(*ip)) {
                anyhow::bail!("webhook {id}: {ip} is not a public address (see --webhook-allow-private)");
            }
        }
        let ts = crate::core::domain::now_millis() / 1000;
        let resp = self
            .http
            .post(&hook.url)
            .header("content-type", "application/json")
            .header("x-parley-delivery", &job.id)
            .header("x-parley-timestamp", ts.to_string())
            .header("x-parley-signature", sign(hook.secret.as_bytes(), ts, body.as_bytes()))
            .body(body.to_owned())
            .send()
            .await
            .map_err(|e| anyhow::Error::new(e).context(format!("posting to webhook {id}")))?;
        let status = resp.status();
        anyhow::ensure!(status.is_success(), "webhook {id} answered HTTP {}", status.as_u16());
        Ok(())
    }
}

/// A room's dead webhook deliveries (newest first), for its owner and admins; [`dead_delivery`] is how
/// each one answers.
pub async fn dead_deliveries(queue: &DynQueue, room: RoomId) -> anyhow::Result<Vec<Job>> {
    let mut dead = queue.dead(super::DEAD_LIMIT).await?;
    dead.retain(|j| j.kind == KIND && j.payload["room"].as_i64() == Some(room.0));
    Ok(dead)
}

/// One dead delivery, as the dead-letter list shows it.
pub fn dead_delivery(j: &Job) -> DeadDeliveryW<'_> {
    DeadDeliveryW {
        delivery: &j.id,
        webhook: j.payload["webhook"].as_i64(),
        seq: j.payload["seq"].as_i64(),
        attempts: j.attempts,
        error: j.last_error.as_deref(),
        enqueued_at: j.enqueued_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::core::domain::*;
    use crate::jobs::JobQueue;

    fn msg(room: RoomId, sender: &User, kind: MessageKind, body: &str) -> NewMessage {
        let mut m = NewMessage::system(room, kind, sender, None, body, now_millis());
        m.client_id = None;
        m
    }

    async fn ids(queue: &crate::jobs::memory::MemoryQueue) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(r) = queue.reserve(Duration::ZERO).await.unwrap() {
            out.push(r.job.id.clone());
            queue.ack(&r).await.unwrap();
        }
        out
    }

    #[tokio::test]
    async fn every_text_message_is_queued_once_through_dispatch_or_catch_up() {
        let store: DynStore = Arc::new(crate::store::memory::MemoryStore::new());
        let q = Arc::new(crate::jobs::memory::MemoryQueue::new(100));
        let queue: DynQueue = q.clone();
        let u = store
            .create_user(&Username::parse("alice").unwrap(), &DisplayName::parse("A").unwrap(), "h", now_millis())
            .await
            .unwrap();
        let room =
            store.create_room(&RoomName::parse("r").unwrap(), Visibility::Public, u.id, now_millis()).await.unwrap();
        let (r, t, j) = (room.id, MessageKind::Text, MessageKind::Join);
        store.append(&[msg(r, &u, t, "before")]).await.unwrap();
        let url = WebhookUrl::parse("http://h/x").unwrap();
        let new = NewWebhook { room: r, url: &url, secret: "s", created_by: u.id, created_at: now_millis() };
        let hook = store.create_webhook(&new).await.unwrap();
        // Stored while no dispatcher saw them (as after a crash): the catch-up queues the text ones.
        store.append(&[msg(r, &u, t, "two"), msg(r, &u, j, ""), msg(r, &u, t, "four")]).await.unwrap();
        assert_eq!(catch_up(&store, &queue).await.unwrap(), 2);
        assert_eq!(catch_up(&store, &queue).await.unwrap(), 0, "the cursor moved");
        let id = |seq: i64| format!("wh{}-{}-{seq}", hook.id, r.0);
        assert_eq!(ids(&q).await, vec![id(2), id(4)]);

        // A batch that does not continue the cursor (5 went missing): the gap is read from the store.
        let stored = store.append(&[msg(r, &u, t, "five"), msg(r, &u, t, "six")]).await.unwrap();
        let Appended::Stored(six) = &stored[1] else { panic!() };
        let (tx, rx) = mpsc::channel(4);
        let task = tokio::spawn(dispatch(rx, store.clone(), queue.clone()));
        tx.send(vec![six.clone()]).await.unwrap();
        // A contiguous batch is taken as is.
        let stored = store.append(&[msg(r, &u, t, "seven")]).await.unwrap();
        let Appended::Stored(seven) = &stored[0] else { panic!() };
        tx.send(vec![seven.clone()]).await.unwrap();
        drop(tx);
        task.await.unwrap();
        assert_eq!(ids(&q).await, vec![id(5), id(6), id(7)]);
        assert_eq!(store.webhook(hook.id).await.unwrap().unwrap().delivered_seq, 7);
    }

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.5.5",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "1.1.1.1", "2606:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn signatures_match_a_known_vector_and_verify() {
        // python3: hmac.new(b'whsec-test', b'1700000000.{"seq":1}', hashlib.sha256).hexdigest()
        let sig = sign(b"whsec-test", 1_700_000_000, br#"{"seq":1}"#);
        assert_eq!(sig, "sha256=80816fa7a537301a9319ba60b7073f875fa1f3feab2df82cf320ac7162d90068");
        assert!(verify(b"whsec-test", 1_700_000_000, br#"{"seq":1}"#, &sig));
        assert!(!verify(b"whsec-test", 1_700_000_001, br#"{"seq":1}"#, &sig), "timestamp is signed");
        assert!(!verify(b"other", 1_700_000_000, br#"{"seq":1}"#, &sig));
        assert!(!verify(b"whsec-test", 1_700_000_000, br#"{"seq":2}"#, &sig));
        assert!(!verify(b"whsec-test", 1_700_000_000, br#"{"seq":1}"#, "sha256=zz"));
    }
}
