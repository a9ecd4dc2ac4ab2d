//! Issue 11 items 13, 16 (/ws), 17 and 19 (transport parts): what a client sees of its own frames and
//! lines.

use serde_json::{Value, json};

use crate::harness::*;

/// Item 13: error replies keep the frame's `req`, also for unknown types and bad fields.
#[tokio::test]
async fn error_replies_keep_the_frames_req() {
    let app = spawn_app().await;
    let t = app.user("rhea").await;
    let mut ws = app.ws(&t).await;
    ws.send(json!({"type": "shout", "req": "r1"})).await;
    let e = ws.next_of("error").await;
    assert_eq!((e["code"].as_str(), e["req"].as_str()), (Some("unknown_type"), Some("r1")), "{e}");
    ws.send(json!({"type": "send", "room": 1, "req": "r2"})).await; // no body
    let e = ws.next_of("error").await;
    assert_eq!((e["code"].as_str(), e["req"].as_str()), (Some("bad_frame"), Some("r2")), "{e}");
    // A req that is not a usable string is not echoed.
    ws.send(json!({"type": "shout", "req": 7})).await;
    let e = ws.next_of("error").await;
    assert_eq!(e["req"], Value::Null, "{e}");
}

/// Item 17: unknown fields are ignored (fields are only ever added within a version).
#[tokio::test]
async fn unknown_fields_in_frames_are_ignored() {
    let app = spawn_app().await;
    let t = app.user("ivo").await;
    let room = app.room(&t, "extras", "public").await;
    let mut ws = app.ws(&t).await;
    ws.send(json!({"type": "ping", "req": "p", "future": {"x": 1}})).await;
    assert_eq!(ws.next_of("pong").await["req"], "p");
    ws.send(json!({"type": "send", "room": room, "body": "hi", "req": "s", "priority": "high"})).await;
    assert_eq!(ws.next_of("ack").await["req"], "s");
    ws.send(json!({"type": "resume", "req": "r", "rooms": [{"room": room, "after": 0, "hint": true}]})).await;
    assert_eq!(ws.next_of("recovered").await["req"], "r");
}

/// Item 16: `/ws` refusals are JSON like every other refusal.
#[tokio::test]
async fn ws_refusals_are_json() {
    let app = spawn_app().await;
    let resp = app.http.get(app.url("/ws")).send().await.unwrap();
    assert!(resp.status().is_client_error(), "{}", resp.status());
    assert_eq!(resp.headers()["content-type"], "application/json");
    let v: Value = resp.json().await.unwrap();
    assert!(v["error"]["code"].is_string(), "{v}");
    let resp = app.http.post(app.url("/ws")).send().await.unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "method_not_allowed", "{v}");
}

/// Item 19: `/help` lists `/help`; a room added without switching says so instead of "You are in".
#[tokio::test]
async fn tcp_help_lists_help_and_added_rooms_do_not_claim_a_switch() {
    let app = spawn_app().await;
    let t = app.user("tess").await;
    app.user("otto").await;
    app.room(&t, "home", "public").await;
    let mut tcp = app.tcp("tess").await;
    tcp.send_bytes(b"/help\n").await;
    tcp.until("*   /help").await;
    // otto opens a conversation with tess: it is added, tess stays in #home.
    let o = app.login("otto").await;
    let (s, b) = app.post(Some(&o), "/api/v1/dms", json!({"username": "tess"})).await;
    assert_eq!(s, 200, "{b}");
    let l = tcp.until("* You").await;
    assert!(l.contains("@otto") && !l.contains("You are in"), "{l}");
    tcp.send_bytes(b"still here\n").await;
    let l = tcp.until("[").await;
    assert_eq!(l, "[#home] tess: still here");
}
