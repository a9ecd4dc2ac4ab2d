//! Background jobs end to end: webhooks retried until delivered or dead-lettered, and retention.

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::harness::{DEADLINE, TestApp, spawn_app_clocked, spawn_app_with, wait};

/// One request a receiver got.
struct Delivery {
    headers: HeaderMap,
    body: String,
}

/// A webhook receiver on port 0 that answers 500 to its first `fail` requests and 200 after, and
/// reports every request on the returned channel.
async fn receiver(fail: u32) -> (String, mpsc::UnboundedReceiver<Delivery>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (app, rx) = receiver_app(fail);
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

/// The same receiver over HTTPS, with the certificate and key in `cert` and `key` (PEM), as
/// `https://localhost:PORT/hook`.
async fn receiver_tls(
    fail: u32,
    cert: &std::path::Path,
    key: &std::path::Path,
) -> (String, mpsc::UnboundedReceiver<Delivery>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://localhost:{}/hook", listener.local_addr().unwrap().port());
    let tls = parley::tls::TlsListener::new(listener, parley::tls::acceptor(cert, key).unwrap()).unwrap();
    let (app, rx) = receiver_app(fail);
    tokio::spawn(async move { axum::serve(tls, app).await });
    (url, rx)
}

fn receiver_app(fail: u32) -> (axum::Router, mpsc::UnboundedReceiver<Delivery>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let seen = Arc::new(Mutex::new(0u32));
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let (tx, seen) = (tx.clone(), seen.clone());
            async move {
                let n = {
                    let mut g = seen.lock();
                    *g += 1;
                    *g
                };
                let _ = tx.send(Delivery { headers, body });
                if n <= fail { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::OK }
            }
        }),
    );
    (app, rx)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Delivery>) -> Delivery {
    tokio::time::timeout(DEADLINE, rx.recv()).await.expect("a delivery within the deadline").unwrap()
}

fn header<'a>(d: &'a Delivery, name: &str) -> &'a str {
    d.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_else(|| panic!("no {name} header"))
}

async fn add_hook(app: &TestApp, token: &str, room: &str, url: &str) -> (i64, String) {
    let (s, b) = app.post(Some(token), &format!("/api/v1/rooms/{room}/webhooks"), json!({ "url": url })).await;
    assert_eq!(s, 201, "{b}");
    assert!(b["secret"].as_str().unwrap().starts_with("whsec_"), "{b}");
    (b["id"].as_i64().unwrap(), b["secret"].as_str().unwrap().to_owned())
}

/// The first entry of `room`'s dead-letter list, once there is one (the API is all there is to watch:
/// a bounded poll).
async fn first_dead(app: &TestApp, token: &str, room: &str) -> Value {
    let path = format!("/api/v1/rooms/{room}/webhooks/dead");
    wait::until_some("a dead-lettered delivery", DEADLINE, || async {
        let (s, b) = app.get(Some(token), &path).await;
        assert_eq!(s, 200, "{b}");
        b["deliveries"].as_array().and_then(|d| d.first()).cloned()
    })
    .await
}

async fn say(app: &TestApp, token: &str, room: &str, body: &str) -> Value {
    let (s, b) = app.post(Some(token), &format!("/api/v1/rooms/{room}/messages"), json!({ "body": body })).await;
    assert_eq!(s, 201, "{b}");
    b
}

#[tokio::test]
async fn a_webhook_failing_twice_gets_the_message_on_the_third_try() {
    failing_twice_then_delivered(&[]).await;
}

/// The same through the Redis queue (a unique key prefix per test), when Redis is configured.
#[tokio::test]
async fn webhook_retries_work_through_the_redis_queue() {
    let Ok(url) = std::env::var("PARLEY_TEST_REDIS_URL") else {
        eprintln!("SKIPPED webhook_retries_work_through_the_redis_queue: set PARLEY_TEST_REDIS_URL to run it");
        return;
    };
    let prefix = format!("parley-test:{}", hex::encode(rand::random::<[u8; 6]>()));
    let flags = ["--redis-url", &url, "--redis-prefix", &prefix, "--jwt-secret", "a-secret-for-this-test-only"];
    failing_twice_then_delivered(&flags).await;
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}:*")).query_async(&mut conn).await.unwrap();
    if !keys.is_empty() {
        redis::cmd("DEL").arg(keys).query_async::<()>(&mut conn).await.unwrap();
    }
}

async fn failing_twice_then_delivered(flags: &[&str]) {
    let mut all = vec!["--job-backoff-ms", "20", "--webhook-allow-private"];
    all.extend_from_slice(flags);
    let app = spawn_app_with(&all).await;
    let alice = app.user("alice").await;
    app.room(&alice, "hooked", "public").await;
    let (url, mut rx) = receiver(2).await;
    let (id, secret) = add_hook(&app, &alice, "hooked", &url).await;

    let ack = say(&app, &alice, "hooked", "hello, hooks").await;
    let tries = [next(&mut rx).await, next(&mut rx).await, next(&mut rx).await];
    let delivery = header(&tries[0], "x-parley-delivery");
    for t in &tries {
        assert_eq!(header(t, "x-parley-delivery"), delivery, "one delivery id across retries");
        let ts: i64 = header(t, "x-parley-timestamp").parse().unwrap();
        let sig = header(t, "x-parley-signature");
        assert!(parley::jobs::webhook::verify(secret.as_bytes(), ts, t.body.as_bytes(), sig), "bad signature {sig}");
        assert!(!parley::jobs::webhook::verify(b"not-the-secret", ts, t.body.as_bytes(), sig));
    }
    let got: Value = serde_json::from_str(&tries[2].body).unwrap();
    assert_eq!(got["room_name"], "hooked");
    assert_eq!(got["seq"], ack["seq"]);
    assert_eq!(got["sender"], "alice");
    assert_eq!(got["body"], "hello, hooks");
    assert_eq!(got["sent_at"], ack["ts"]);

    // It was delivered, so nothing is dead; the list and removal work.
    let (s, b) = app.get(Some(&alice), "/api/v1/rooms/hooked/webhooks/dead").await;
    assert_eq!((s, b["deliveries"].as_array().unwrap().len()), (200, 0), "{b}");
    let (s, b) = app.get(Some(&alice), "/api/v1/rooms/hooked/webhooks").await;
    assert_eq!(s, 200);
    assert_eq!(b["webhooks"][0]["url"], url.as_str());
    assert!(b["webhooks"][0].get("secret").is_none(), "the secret is shown once: {b}");
    let del = |path: String| app.http.delete(app.url(&path)).bearer_auth(&alice).send();
    assert_eq!(del(format!("/api/v1/rooms/hooked/webhooks/{id}")).await.unwrap().status(), 204);
    assert_eq!(del(format!("/api/v1/rooms/hooked/webhooks/{id}")).await.unwrap().status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn https_webhooks_reach_a_receiver_whose_ca_the_node_trusts_and_no_other() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let (url, mut rx) = receiver_tls(0, &cert, &key).await;

    // A node that trusts the receiver's certificate delivers, signed, over TLS.
    let ca = cert.to_str().unwrap();
    let app = spawn_app_with(&["--webhook-allow-private", "--webhook-ca-file", ca]).await;
    let alice = app.user("alice").await;
    app.room(&alice, "secure", "public").await;
    let (_, secret) = add_hook(&app, &alice, "secure", &url).await;
    let ack = say(&app, &alice, "secure", "over tls").await;
    let d = next(&mut rx).await;
    let ts: i64 = header(&d, "x-parley-timestamp").parse().unwrap();
    assert!(parley::jobs::webhook::verify(secret.as_bytes(), ts, d.body.as_bytes(), header(&d, "x-parley-signature")));
    let got: Value = serde_json::from_str(&d.body).unwrap();
    assert_eq!((got["seq"].clone(), got["body"].as_str()), (ack["seq"].clone(), Some("over tls")));
    app.stop().await;

    // One that does not trust it refuses the certificate: the delivery dead-letters, nothing arrives.
    let app = spawn_app_with(&["--webhook-allow-private", "--job-max-attempts", "1"]).await;
    let alice = app.user("alice").await;
    app.room(&alice, "secure", "public").await;
    add_hook(&app, &alice, "secure", &url).await;
    say(&app, &alice, "secure", "not delivered").await;
    let dead = first_dead(&app, &alice, "secure").await;
    assert!(dead["error"].as_str().unwrap().contains("posting to webhook"), "{dead}");
    assert!(rx.try_recv().is_err(), "the untrusted receiver got nothing");
    app.stop().await;
}

#[tokio::test]
async fn a_webhook_that_always_fails_ends_in_the_dead_letter_list() {
    let app = spawn_app_with(&["--job-backoff-ms", "10", "--job-max-attempts", "3", "--webhook-allow-private"]).await;
    let (alice, bob) = (app.user("alice").await, app.user("bob").await);
    app.room(&alice, "dead", "public").await;
    app.join(&bob, "dead").await;
    let (url, mut rx) = receiver(u32::MAX).await;

    // Only moderators manage webhooks, and only http URLs are taken.
    let (s, b) = app.post(Some(&bob), "/api/v1/rooms/dead/webhooks", json!({ "url": url })).await;
    assert_eq!((s, b["error"]["code"].as_str()), (403, Some("forbidden")), "{b}");
    for bad in ["ftp://example.com/", "not a url", "http://"] {
        let (s, b) = app.post(Some(&alice), "/api/v1/rooms/dead/webhooks", json!({ "url": bad })).await;
        assert_eq!((s, b["error"]["code"].as_str()), (400, Some("bad_request")), "{bad}: {b}");
    }
    add_hook(&app, &alice, "dead", &url).await;

    let ack = say(&app, &bob, "dead", "nobody hears this").await;
    for _ in 0..3 {
        next(&mut rx).await;
    }
    // The third failure buries the job right after the receiver answers.
    let dead = first_dead(&app, &alice, "dead").await;
    assert_eq!(dead["seq"], ack["seq"]);
    assert_eq!(dead["attempts"], 3);
    assert!(dead["error"].as_str().unwrap().contains("HTTP 500"), "{dead}");
    let (s, _) = app.get(Some(&bob), "/api/v1/rooms/dead/webhooks/dead").await;
    assert_eq!(s, 403, "members do not see deliveries");
    app.stop().await;
}

#[tokio::test]
async fn webhooks_do_not_reach_private_addresses_by_default() {
    let app = spawn_app_with(&["--job-max-attempts", "1"]).await;
    let alice = app.user("alice").await;
    app.room(&alice, "inside", "public").await;
    let (url, mut rx) = receiver(0).await;
    add_hook(&app, &alice, "inside", &url).await;
    add_hook(&app, &alice, "inside", &url.replace("127.0.0.1", "localhost")).await;
    say(&app, &alice, "inside", "psst").await;
    // Both deliveries are refused before any request is made: wait for them in the dead-letter list.
    let dead = wait::until_some("both deliveries refused", DEADLINE, || async {
        let (_, b) = app.get(Some(&alice), "/api/v1/rooms/inside/webhooks/dead").await;
        let d = b["deliveries"].as_array().unwrap().clone();
        (d.len() == 2).then_some(d)
    })
    .await;
    let errors: Vec<&str> = dead.iter().map(|d| d["error"].as_str().unwrap()).collect();
    assert!(errors.iter().any(|e| e.contains("127.0.0.1 is not a public address")), "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("localhost has no public address")), "{errors:?}");
    assert!(rx.try_recv().is_err(), "the receiver was never called");
    app.stop().await;
}

#[tokio::test]
async fn retention_purges_old_messages_and_only_those() {
    let (app, clock) = spawn_app_clocked(&["--retention-sweep-secs", "1"]).await;
    let alice = app.user("alice").await;
    app.room(&alice, "brief", "public").await;
    let old = [say(&app, &alice, "brief", "old one").await, say(&app, &alice, "brief", "old two").await];
    // "Old" means older than the retention period by the node's clock: move it an hour on, so that
    // everything written so far (the store stamps some rows itself, by the system clock) is old.
    const RETENTION_SECS: u64 = 3;
    clock.advance(3_600_000);
    let new = [say(&app, &alice, "brief", "new one").await, say(&app, &alice, "brief", "new two").await];

    let resp = app
        .http
        .patch(app.url("/api/v1/rooms/brief"))
        .bearer_auth(&alice)
        .json(&json!({ "retention_secs": RETENTION_SECS }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let room: Value = resp.json().await.unwrap();
    assert_eq!(room["retention_secs"], RETENTION_SECS);

    // The next sweep (each second, by the real clock) purges everything before the new messages, which
    // stay young as long as the test does not move the node's clock again.
    let kept = wait::until_some("the old messages purged", DEADLINE, || async {
        let (s, b) = app.get(Some(&alice), "/api/v1/rooms/brief/messages").await;
        assert_eq!(s, 200, "{b}");
        let msgs = b["messages"].as_array().unwrap().clone();
        (!msgs.iter().any(|m| m["body"] == "old one" || m["body"] == "old two")).then_some(msgs)
    })
    .await;
    let seqs: Vec<&Value> = kept.iter().map(|m| &m["seq"]).collect();
    assert_eq!(seqs, vec![&new[0]["seq"], &new[1]["seq"]], "only the old messages went, seqs unchanged");
    let (_, b) = app.get(Some(&alice), &format!("/api/v1/rooms/brief/messages?after={}", old[0]["seq"])).await;
    assert_eq!(b["messages"][0]["seq"], new[0]["seq"], "reading after a purged seq starts at the oldest kept");
    let next = say(&app, &alice, "brief", "and on").await;
    assert_eq!(next["seq"], new[1]["seq"].as_i64().unwrap() + 1, "numbering goes on");

    // Clearing it keeps messages again; a member cannot set it.
    let bob = app.user("bob").await;
    app.join(&bob, "brief").await;
    let patch =
        |token: &str, v: Value| app.http.patch(app.url("/api/v1/rooms/brief")).bearer_auth(token).json(&v).send();
    assert_eq!(patch(&bob, json!({ "retention_secs": 60 })).await.unwrap().status(), 403);
    assert_eq!(patch(&alice, json!({ "retention_secs": 0 })).await.unwrap().status(), 400);
    let cleared: Value = patch(&alice, json!({ "retention_secs": null })).await.unwrap().json().await.unwrap();
    assert_eq!(cleared["retention_secs"], Value::Null);
    app.stop().await;
}
