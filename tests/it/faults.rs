//! Storage faults (issue 11 items 4–6): a full disk, then space freed; writes frozen behind another
//! process's lock. The writer recovers by itself, `/readyz` says when writes cannot be taken, and every
//! send gets an answer within `--send-timeout-ms`; nothing answered `unavailable` while still queued is
//! stored, and a resend with the same `client_id` is stored exactly once.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::*;

/// A size-limited tmpfs mounted on a directory for the test's life (needs root; tests skip without it).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(dir.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes zeros into `path` until the filesystem is full.
fn fill(path: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    loop {
        if f.write_all(&chunk).is_err() {
            break;
        }
    }
    // Small writes take what a 64 KiB one could not.
    while f.write_all(&[0u8; 512]).is_ok() {}
    let _ = f.sync_all();
}

async fn send(app: &TestApp, token: &str, room: &str, body: &str, cid: &str) -> (u16, Value) {
    app.post(Some(token), &format!("/api/v1/rooms/{room}/messages"), json!({"body": body, "client_id": cid})).await
}

/// Polls `/readyz` until `want` holds for its answer; panics with the last answer at the deadline.
async fn readyz_until(app: &TestApp, what: &str, want: impl Fn(u16, &Value) -> bool) -> Value {
    wait::until_some(&format!("readyz to become {what}"), DEADLINE, || async {
        let (s, b) = app.get(None, "/readyz").await;
        want(s, &b).then_some(b)
    })
    .await
}

async fn bodies(app: &TestApp, token: &str, room: &str) -> Vec<String> {
    let (s, page) = app.get(Some(token), &format!("/api/v1/rooms/{room}/messages?limit=100")).await;
    assert_eq!(s, 200, "{page}");
    page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == "text")
        .map(|m| m["body"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn sqlite_recovers_by_itself_after_a_full_disk() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mount) = Tmpfs::mount(dir.path(), "6m") else {
        eprintln!("SKIPPED sqlite_recovers_by_itself_after_a_full_disk: mounting a tmpfs needs root");
        return;
    };
    let filler = dir.path().join("filler");
    let app = spawn_in(dir, &["--send-timeout-ms", "5000"]).await;
    let a = app.user("fern").await;
    app.room(&a, "disk", "public").await;
    assert_eq!(send(&app, &a, "disk", "before", "c0").await.0, 201);
    readyz_until(&app, "ready", |s, _| s == 200).await;

    fill(&filler);
    // Each commit appends to the WAL, which now has no room: the send is refused, not acknowledged.
    let big = "x".repeat(4000);
    let mut refused = Vec::new();
    for i in 1..=4 {
        let (s, b) = send(&app, &a, "disk", &big, &format!("c{i}")).await;
        assert_ne!(s, 201, "acknowledged on a full disk: {b}");
        assert_eq!((s, b["error"]["code"].as_str()), (503, Some("unavailable")), "{b}");
        refused.push(format!("c{i}"));
    }
    let b = readyz_until(&app, "not ready", |s, _| s == 503).await;
    assert_eq!(b["error"]["code"], "not_ready", "{b}");
    assert_eq!(b["checks"]["writer"], "failing", "{b}");
    assert_eq!(b["checks"]["store"], "ok", "reads still work: {b}");
    assert!(b["error"]["message"].as_str().unwrap().contains("writes failing"), "{b}");

    // Space freed: readiness returns without any traffic (the writer probes), then sends work again,
    // on every connection of the pool, and the refused ones resend under their client_id.
    std::fs::remove_file(&filler).unwrap();
    let b = readyz_until(&app, "ready", |s, _| s == 200).await;
    assert_eq!(b["checks"]["writer"], "ok", "{b}");
    for i in 0..8 {
        let (s, b) = send(&app, &a, "disk", &format!("after {i}"), &format!("d{i}")).await;
        assert_eq!(s, 201, "send {i} after space was freed: {b}");
    }
    for cid in &refused {
        let (s, b) = send(&app, &a, "disk", &big, cid).await;
        assert_eq!((s, b["duplicate"].as_bool()), (201, Some(false)), "{b}");
    }
    let got = bodies(&app, &a, "disk").await;
    assert_eq!(got.iter().filter(|b| **b == big).count(), refused.len(), "each refused send stored once");
    assert_eq!(got.len(), 1 + 8 + refused.len());
    app.stop().await;
    drop(mount);
}

#[tokio::test]
async fn sends_time_out_and_readiness_flips_while_writes_are_frozen() {
    use sqlx::{Connection, SqliteConnection};

    let (app, batches) = spawn_app_watched(&["--send-timeout-ms", "800"]).await;
    let a = app.user("gus").await;
    app.room(&a, "frozen", "public").await;
    assert_eq!(send(&app, &a, "frozen", "before", "c0").await.0, 201);

    // Another process takes SQLite's write lock and keeps it: the writer's next batch waits (for the
    // store's busy timeout, 5 s) and then fails.
    let db = app.dir.path().join("parley.db");
    let mut locker = SqliteConnection::connect(&format!("sqlite:{}", db.display())).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE").execute(&mut locker).await.unwrap();

    let timed = |cid: &'static str| {
        let (app, a) = (&app, &a);
        async move {
            let started = Instant::now();
            let (s, b) = send(app, a, "frozen", cid, cid).await;
            (s, b, started.elapsed())
        }
    };
    // "a" is in the writer's batch, stuck on the lock; "b" waits in the queue behind it: it is sent once
    // the writer has handed a batch to the store after "before" (no batch but a's can have begun since).
    let handed = batches.get();
    let (ra, rb) = tokio::join!(timed("a"), async {
        wait::until("the first send to reach the store", DEADLINE, || batches.get() > handed).await;
        timed("b").await
    });
    for (s, b, took) in [ra, rb] {
        assert_eq!((s, b["error"]["code"].as_str()), (503, Some("unavailable")), "{b}");
        assert!(took < Duration::from_millis(3000), "a send waited {took:?} with an 800 ms send timeout");
    }
    let b = readyz_until(&app, "stalled", |s, b| s == 503 && b["checks"]["writer"] == "stalled").await;
    assert!(b["error"]["message"].as_str().unwrap().contains("writes stalled"), "{b}");
    // The busy timeout ends the batch with an error: failing, still not ready.
    readyz_until(&app, "failing", |s, b| s == 503 && b["checks"]["writer"] == "failing").await;

    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    locker.close().await.unwrap();
    readyz_until(&app, "ready", |s, _| s == 200).await;
    // Neither the failed batch nor the message that expired in the queue was stored.
    assert_eq!(bodies(&app, &a, "frozen").await, ["before"]);
    for cid in ["a", "b"] {
        let (s, b) = send(&app, &a, "frozen", cid, cid).await;
        assert_eq!((s, b["duplicate"].as_bool()), (201, Some(false)), "{b}");
        let (s, b) = send(&app, &a, "frozen", cid, cid).await;
        assert_eq!((s, b["duplicate"].as_bool()), (201, Some(true)), "{b}");
    }
    assert_eq!(bodies(&app, &a, "frozen").await, ["before", "a", "b"]);
    app.stop().await;
}

/// Issue 18 item 7: password hashing runs a bounded number at a time behind a bounded queue; a login
/// storm beyond it is refused at once with `429 rate_limited` and `Retry-After`, and the server
/// answers logins again once it has passed.
#[tokio::test]
async fn a_login_storm_beyond_the_hashing_queue_is_refused_with_retry_after() {
    // Slow hashes (50 passes) on one thread with two places in the queue. Built here rather than by
    // `spawn_app_with`, whose base flags fix the hashing cost.
    let dir = tempfile::tempdir().unwrap();
    let flags = [
        "--listen",
        "127.0.0.1:0",
        "--tcp-listen",
        "off",
        "--argon2-memory-kib",
        "1024",
        "--argon2-iterations",
        "50",
        "--password-hash-threads",
        "1",
        "--password-hash-queue",
        "2",
        "--auth-burst",
        "1000",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ];
    let config = parley::config::Config::from_flags(flags).unwrap();
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = http.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(parley::server::run(config, parley::server::Listeners { http, tcp: None }, async move {
        let _ = stopped.await;
    }));
    let app = Node::new(addr);
    app.user("hazel").await;
    let logins = (0..24).map(|_| {
        let (http, url) = (app.http.clone(), app.url("/api/v1/login"));
        async move {
            let resp =
                http.post(url).json(&json!({"username": "hazel", "password": "password-hazel"})).send().await.unwrap();
            let retry = resp.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
            let status = resp.status().as_u16();
            (status, retry, resp.json::<Value>().await.unwrap())
        }
    });
    let answers = futures_util::future::join_all(logins).await;
    let ok = answers.iter().filter(|(s, _, _)| *s == 200).count();
    let refused: Vec<_> = answers.iter().filter(|(s, _, _)| *s == 429).collect();
    assert_eq!(ok + refused.len(), answers.len(), "only 200 or 429: {answers:?}");
    assert!(ok >= 1, "the pool still served logins");
    assert!(!refused.is_empty(), "24 concurrent slow logins fit in one thread and two queue places?");
    for (_, retry, b) in refused {
        assert_eq!(b["error"]["code"], "rate_limited", "{b}");
        assert!(retry.as_deref().is_some_and(|r| r.parse::<u64>().is_ok_and(|s| s >= 1)), "Retry-After: {retry:?}");
    }
    // The storm is over: logins are served again.
    app.login("hazel").await;
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
