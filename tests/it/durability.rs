use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

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
fn start_binary(dir: &std::path::Path) -> (std::process::Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_parley"))
        .arg("serve")
        .args(base_flags(dir))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let start = line.find("http://").expect("the server prints its URL");
    let url = line[start..].split_whitespace().next().unwrap().trim_end_matches('/').to_owned();
    (child, url)
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
    child.kill().unwrap(); // SIGKILL, right after the last acknowledgement
    child.wait().unwrap();

    let (mut child, url) = start_binary(dir.path());
    let login: serde_json::Value = http
        .post(format!("{url}/api/v1/login"))
        .json(&json!({"username": "mona", "password": "password-mona"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["token"].as_str().unwrap();
    let mut stored = Vec::new();
    let mut after = 0;
    loop {
        let page: serde_json::Value = http
            .get(format!("{url}/api/v1/rooms/crashy/messages?after={after}&limit=200"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let msgs = page["messages"].as_array().unwrap();
        stored.extend(msgs.iter().map(|m| m["seq"].as_i64().unwrap()));
        after = *stored.last().unwrap();
        if page["has_more"] != true {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
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
    let exit = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    assert!(exit.success(), "clean exit: {exit:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(6), "exited within a few seconds");
}
