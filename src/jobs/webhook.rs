//! Outgoing webhooks: every stored text message of a room is POSTed, signed, to each of its webhooks.
//!
//! The ingest writer hands each committed batch to [`dispatch`] (after acknowledging the senders);
//! it looks up the batch's rooms' webhooks in one query and enqueues one `webhook` job per message and
//! webhook. The job carries the exact JSON body to send; the URL and secret are read when it runs (a
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
use serde_json::json;
use sha2::Sha256;
use tokio::sync::mpsc;
use tracing::{debug, error};

use super::runner::Handler;
use super::{DynQueue, Job};
use crate::core::domain::{Message, RoomId};
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

/// Turns committed batches into webhook jobs until the ingest writer stops (its sender is dropped).
pub async fn dispatch(mut rx: mpsc::Receiver<Vec<Arc<Message>>>, store: DynStore, queue: DynQueue) {
    while let Some(batch) = rx.recv().await {
        let rooms: Vec<RoomId> = batch.iter().map(|m| m.room).collect::<BTreeSet<_>>().into_iter().collect();
        let hooks = match store.webhooks_for(&rooms).await {
            Ok(h) => h,
            Err(e) => {
                error!(
                    error = format!("{:#}", anyhow::Error::new(e)),
                    messages = batch.len(),
                    "looking up webhooks failed; these messages are not delivered to webhooks"
                );
                continue;
            }
        };
        if hooks.is_empty() {
            continue;
        }
        let mut names: HashMap<RoomId, String> = HashMap::new();
        let mut jobs = Vec::new();
        for m in &batch {
            for h in hooks.iter().filter(|h| h.room == m.room) {
                if let std::collections::hash_map::Entry::Vacant(e) = names.entry(m.room) {
                    e.insert(store.room(m.room).await.ok().flatten().map(|r| r.name).unwrap_or_default());
                }
                let body = body_for(m, &names[&m.room]);
                jobs.push(Job::new(KIND, json!({ "webhook": h.id, "room": m.room.0, "seq": m.seq, "body": body })));
            }
        }
        if let Err(e) = queue.enqueue(&jobs).await {
            error!(error = format!("{e:#}"), jobs = jobs.len(), "enqueueing webhook deliveries failed");
        } else {
            debug!(jobs = jobs.len(), "webhook deliveries queued");
        }
    }
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
    pub fn new(store: DynStore, timeout: Duration, allow_private: bool) -> anyhow::Result<Self> {
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("parley-webhooks/", env!("CARGO_PKG_VERSION")));
        if !allow_private {
            builder = builder.dns_resolver(Arc::new(PublicOnly));
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

/// A room's dead webhook deliveries (newest first), for its owner and admins.
pub async fn dead_deliveries(queue: &DynQueue, room: RoomId) -> anyhow::Result<Vec<serde_json::Value>> {
    let dead = queue.dead(super::DEAD_LIMIT).await?;
    Ok(dead
        .iter()
        .filter(|j| j.kind == KIND && j.payload["room"].as_i64() == Some(room.0))
        .map(|j| {
            json!({
                "delivery": j.id,
                "webhook": j.payload["webhook"],
                "seq": j.payload["seq"],
                "attempts": j.attempts,
                "error": j.last_error,
                "enqueued_at": j.enqueued_at,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

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
