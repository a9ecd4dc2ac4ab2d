use std::process::Command;

use serde_json::json;

use crate::harness::*;

#[tokio::test]
async fn acknowledged_messages_survive_a_graceful_restart() {
    let app = spawn_app().await;
    let t = app.user("lena").await;
    let room = app.room(&t, "durable", "public").await;
    let mut ws = app.ws(&t).await;
    for i in 0..50 {
        ws.send(json!({"type": "send", "room": room, "body": format!("m{i}"), "client_id": format!("c{i}")})).await;
    }
    let mut acked = Vec::new();
    while acked.len() < 50 {
        let v = ws.next_json().await;
        if v["type"] == "ack" {
            acked.push(v["seq"].as_i64().unwrap());
        }
    }
    let dir = app.stop().await;
    assert_eq!(ws.closed().await, Some(1001), "clients get a going-away close");

    let app = spawn_in(dir, &[]).await;
    let t = app.login("lena").await;
    let (_, page) = app.get(Some(&t), "/api/v1/rooms/durable/messages?limit=200").await;
    let stored: Vec<i64> = page["messages"].as_array().unwrap().iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    for s in acked {
        assert!(stored.contains(&s), "acked seq {s} missing after restart");
    }
}

/// Starts the real binary; returns the child and its base URL.
fn start_binary(dir: &std::path::Path) -> (Process, String) {
    let (child, addr) = parley_testkit::binary::serve(env!("CARGO_BIN_EXE_parley"), &base_flags(dir));
    (child, format!("http://{addr}"))
}

#[tokio::test]
async fn acknowledged_messages_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, url) = start_binary(dir.path());
    let http = reqwest::Client::new();
    let post = |path: &str, token: Option<&str>, body: serde_json::Value| {
        let mut r = http.post(format!("{url}{path}")).json(&body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    post("/api/v1/register", None, json!({"username": "mona", "password": "password-mona"})).await.unwrap();
    let login: serde_json::Value =
        post("/api/v1/login", None, json!({"username": "mona", "password": "password-mona"}))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let token = login["token"].as_str().unwrap().to_owned();
    let room: serde_json::Value =
        post("/api/v1/rooms", Some(&token), json!({"name": "crashy"})).await.unwrap().json().await.unwrap();
    let room = room["id"].as_i64().unwrap();

    let ws_url = format!("{}/ws?token={token}", url.replacen("http://", "ws://", 1));
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    const N: usize = 300;
    for i in 0..N {
        let f = json!({"type": "send", "room": room, "body": format!("k{i}"), "client_id": format!("k{i}")});
        ws.send(Message::text(f.to_string())).await.unwrap();
    }
    let mut acked = Vec::new();
    while acked.len() < N {
        let m = tokio::time::timeout(DEADLINE, ws.next()).await.unwrap().unwrap().unwrap();
        let v: serde_json::Value = serde_json::from_str(m.to_text().unwrap()).unwrap();
        if v["type"] == "ack" {
            acked.push(v["seq"].as_i64().unwrap());
        }
    }
    child.kill(); // SIGKILL, right after the last acknowledgement

    let (mut child, url) = start_binary(dir.path());
    let token = node::login(&http, &url, "mona").await;
    let history = node::history(&http, &url, &token, "crashy").await;
    let stored: Vec<i64> = history.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    child.kill();
    for s in &acked {
        assert!(stored.contains(s), "acknowledged seq {s} lost after SIGKILL");
    }
}

#[tokio::test]
async fn sigterm_closes_clients_with_1001_and_exits_promptly() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let dir = tempfile::tempdir().unwrap();
    let (mut child, url) = start_binary(dir.path());
    let http = reqwest::Client::new();
    let body = json!({"username": "sigmund", "password": "password-sigmund"});
    http.post(format!("{url}/api/v1/register")).json(&body).send().await.unwrap();
    let login: serde_json::Value =
        http.post(format!("{url}/api/v1/login")).json(&body).send().await.unwrap().json().await.unwrap();
    let ws_url = format!("{}/ws?token={}", url.replacen("http://", "ws://", 1), login["token"].as_str().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    let hello = ws.next().await.unwrap().unwrap();
    assert!(hello.to_text().unwrap().contains("hello"));

    let started = std::time::Instant::now();
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let code = loop {
        match tokio::time::timeout(DEADLINE, ws.next()).await.expect("close in time") {
            Some(Ok(Message::Close(f))) => break f.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(code, Some(1001));
    let exit = tokio::task::spawn_blocking(move || child.0.wait().unwrap()).await.unwrap();
    assert!(exit.success(), "clean exit: {exit:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(6), "exited within a few seconds");
}

/// Issue 11 item 9, fault test: SIGTERM while several WebSocket senders pipeline sends. Every message
/// stored was acknowledged to its sender and every acknowledged message is stored: shutdown drains
/// before it closes.
#[tokio::test]
async fn sigterm_under_load_acknowledges_exactly_what_it_stored() {
    use futures_util::{SinkExt, StreamExt};
    use std::collections::{BTreeSet, HashMap};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio_tungstenite::tungstenite::Message;

    let dir = tempfile::tempdir().unwrap();
    let (mut child, url) = start_binary(dir.path());
    let http = reqwest::Client::new();
    let names = ["ana", "ben", "cid"];
    let mut tokens = Vec::new();
    for n in names {
        let body = json!({"username": n, "password": format!("password-{n}")});
        http.post(format!("{url}/api/v1/register")).json(&body).send().await.unwrap();
        let login: serde_json::Value =
            http.post(format!("{url}/api/v1/login")).json(&body).send().await.unwrap().json().await.unwrap();
        tokens.push(login["token"].as_str().unwrap().to_owned());
    }
    let r = http.post(format!("{url}/api/v1/rooms")).bearer_auth(&tokens[0]).json(&json!({"name": "busy"}));
    let room: serde_json::Value = r.send().await.unwrap().json().await.unwrap();
    let room = room["id"].as_i64().unwrap();
    for t in &tokens[1..] {
        http.post(format!("{url}/api/v1/rooms/busy/join")).bearer_auth(t).send().await.unwrap();
    }

    let acked_total = Arc::new(AtomicUsize::new(0));
    let mut senders = Vec::new();
    for (n, t) in names.iter().zip(&tokens) {
        let ws_url = format!("{}/ws?token={t}", url.replacen("http://", "ws://", 1));
        let (ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
        let (mut sink, mut stream) = ws.split();
        let (n, total) = (n.to_string(), acked_total.clone());
        // At most 100 unanswered sends per sender.
        let window = Arc::new(tokio::sync::Semaphore::new(100));
        let w = window.clone();
        let writer = tokio::spawn(async move {
            for i in 0.. {
                w.acquire().await.unwrap().forget();
                let f =
                    json!({"type": "send", "room": room, "body": format!("{n}-{i}"), "client_id": format!("{n}-{i}")});
                if sink.send(Message::text(f.to_string())).await.is_err() {
                    return;
                }
            }
        });
        senders.push(tokio::spawn(async move {
            let mut acked = BTreeSet::new();
            let mut close = None;
            while let Ok(Some(Ok(m))) = tokio::time::timeout(DEADLINE, stream.next()).await {
                match m {
                    Message::Text(t) => {
                        let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
                        if v["type"] == "ack" {
                            acked.insert(v["client_id"].as_str().unwrap().to_owned());
                            total.fetch_add(1, Ordering::Relaxed);
                            window.add_permits(1);
                        } else if v["type"] == "error" {
                            window.add_permits(1);
                        }
                    }
                    Message::Close(f) => close = f.map(|f| u16::from(f.code)),
                    _ => {}
                }
            }
            writer.abort();
            (acked, close)
        }));
    }
    // Under load: stop once a good number of messages went through.
    wait::until("300 messages acknowledged under load", DEADLINE, || acked_total.load(Ordering::Relaxed) >= 300).await;
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let mut acked: HashMap<String, BTreeSet<String>> = HashMap::new();
    for (n, s) in names.iter().zip(senders) {
        let (set, close) = s.await.unwrap();
        assert_eq!(close, Some(1001), "{n} gets the going-away close");
        acked.insert(n.to_string(), set);
    }
    let exit = tokio::task::spawn_blocking(move || child.0.wait().unwrap()).await.unwrap();
    assert!(exit.success(), "clean exit: {exit:?}");

    let (mut child, url) = start_binary(dir.path());
    let token = node::login(&http, &url, "ana").await;
    let mut stored: HashMap<String, BTreeSet<String>> = HashMap::new();
    for m in node::history(&http, &url, &token, "busy").await {
        if let (Some(s), Some(c)) = (m["sender"]["username"].as_str(), m["client_id"].as_str()) {
            stored.entry(s.to_owned()).or_default().insert(c.to_owned());
        }
    }
    child.kill();
    for n in names {
        let (a, s) = (&acked[n], stored.get(n).cloned().unwrap_or_default());
        let unacked: Vec<_> = s.difference(a).take(5).collect();
        let lost: Vec<_> = a.difference(&s).take(5).collect();
        assert!(
            unacked.is_empty() && lost.is_empty(),
            "{n}: stored but not acknowledged {unacked:?} (of {}), acknowledged but not stored {lost:?}",
            s.len()
        );
    }
}

/// Issue 11 item 9 for TCP lines (no `client_id`, no ack frame: the echo is the answer): at shutdown
/// every line stored is echoed before the connection closes, and every echoed line is stored.
#[tokio::test]
async fn tcp_lines_said_before_shutdown_are_echoed_iff_stored() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let app =
        spawn_app_with(&["--tcp-lines-per-sec", "100000", "--messages-per-sec", "100000", "--message-burst", "100000"])
            .await;
    let t = app.user("lino").await;
    app.room(&t, "lines", "public").await;
    let (r, mut w) = tokio::net::TcpStream::connect(app.tcp_addr).await.unwrap().into_split();
    let mut r = BufReader::new(r).lines();
    w.write_all(b"/login lino password-lino\n/go lines\n").await.unwrap();
    loop {
        let l = tokio::time::timeout(DEADLINE, r.next_line()).await.unwrap().unwrap().unwrap();
        if l.starts_with("* Current room: #lines.") {
            break;
        }
    }
    let mut burst = String::new();
    for i in 0..300 {
        burst.push_str(&format!("line-{i}\n"));
    }
    w.write_all(burst.as_bytes()).await.unwrap();
    // Wait for the first echo, so the shutdown lands in the middle of the burst.
    let mut echoed = std::collections::BTreeSet::new();
    loop {
        let l = tokio::time::timeout(DEADLINE, r.next_line()).await.unwrap().unwrap().unwrap();
        if let Some(b) = l.strip_prefix("[#lines] lino: ") {
            echoed.insert(b.to_owned());
            break;
        }
    }
    let dir = app.stop().await;
    let mut last = String::new();
    while let Ok(Some(l)) = tokio::time::timeout(DEADLINE, r.next_line()).await.unwrap() {
        if let Some(b) = l.strip_prefix("[#lines] lino: ") {
            echoed.insert(b.to_owned());
        }
        last = l;
    }
    assert!(last.starts_with("* The server is shutting down"), "{last}");
    let app = spawn_in(dir, &[]).await;
    let t = app.login("lino").await;
    let mut stored = std::collections::BTreeSet::new();
    for m in app.history(&t, "lines").await {
        if m["kind"] == "text" {
            stored.insert(m["body"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(stored, echoed, "stored {} lines, echoed {}", stored.len(), echoed.len());
}
