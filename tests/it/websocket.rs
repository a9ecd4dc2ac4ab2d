use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::harness::*;

#[tokio::test]
async fn bad_frames_get_documented_errors_and_the_server_keeps_serving() {
    let app = spawn_app_with(&["--max-frame-bytes", "1024"]).await;
    let t = app.user("frank").await;
    let room = app.room(&t, "frames", "public").await;
    let mut ws = app.ws(&t).await;
    let cases = [
        ("{not json", "bad_frame"),
        ("[1,2,3]", "bad_frame"),
        (r#"{"body":"no type"}"#, "bad_frame"),
        (r#"{"type":"send","room":1}"#, "bad_frame"),
        (r#"{"type":"teleport","room":1}"#, "unknown_type"),
        (r#"{"type":"send","room":"frames","body":""}"#, "empty_message"),
        (r#"{"type":"send","room":"frames","body":"x","client_id":"has\ttab"}"#, "bad_request"),
        (r#"{"type":"history","room":"frames","limit":0}"#, "bad_request"),
    ];
    for (frame, code) in cases {
        ws.inner.send(Message::text(frame)).await.unwrap();
        let e = ws.next_json().await;
        assert_eq!((e["type"].as_str(), e["code"].as_str()), (Some("error"), Some(code)), "{frame} -> {e}");
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    ws.inner.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    assert_eq!(ws.next_json().await["code"], "bad_frame");
    ws.send(json!({"type": "send", "room": room, "body": "still here", "req": "r1"})).await;
    let ack = ws.next_of("ack").await;
    assert_eq!(ack["req"], "r1");

    // An oversized frame closes that connection with 1009; others are unaffected.
    let mut other = app.ws(&t).await;
    ws.inner.send(Message::text("x".repeat(4096))).await.unwrap();
    assert_eq!(ws.closed().await, Some(1009));
    other.send(json!({"type": "ping", "req": "p"})).await;
    assert_eq!(other.next_of("pong").await["req"], "p");
}

#[tokio::test]
async fn upgrades_need_a_valid_token_given_any_documented_way() {
    let app = spawn_app().await;
    let t = app.user("gina").await;
    for bad in ["/ws", "/ws?token=", "/ws?token=abc.def.ghi"] {
        let err = app.ws_raw(bad).await.expect_err("refused");
        match err {
            tokio_tungstenite::tungstenite::Error::Http(resp) => {
                assert_eq!(resp.status(), 401);
                let body: serde_json::Value =
                    serde_json::from_slice(resp.body().as_deref().unwrap_or_default()).unwrap();
                assert_eq!(body["error"]["code"], "unauthorized");
            }
            other => panic!("expected an HTTP refusal, got {other:?}"),
        }
    }
    // Subprotocol, header and cookie all work.
    let mut req = format!("ws://{}/ws", app.addr).into_client_request().unwrap();
    req.headers_mut()
        .insert("sec-websocket-protocol", HeaderValue::from_str(&format!("parley.v1, bearer.{t}")).unwrap());
    let (mut ws, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(resp.headers()["sec-websocket-protocol"], "parley.v1");
    let hello = ws.next().await.unwrap().unwrap();
    assert!(hello.to_text().unwrap().contains(r#""type":"hello""#));
    for (name, value) in [("authorization", format!("Bearer {t}")), ("cookie", format!("theme=dark; parley_token={t}"))]
    {
        let mut req = format!("ws://{}/ws", app.addr).into_client_request().unwrap();
        req.headers_mut().insert(name, HeaderValue::from_str(&value).unwrap());
        let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
        let hello: serde_json::Value =
            serde_json::from_str(ws.next().await.unwrap().unwrap().to_text().unwrap()).unwrap();
        assert_eq!(
            (hello["type"].as_str(), hello["v"].as_i64(), hello["user"]["username"].as_str()),
            (Some("hello"), Some(1), Some("gina"))
        );
    }
}

#[tokio::test]
async fn logout_closes_the_sessions_live_sockets() {
    let app = spawn_app().await;
    let t1 = app.user("hugo").await;
    let t2 = app.login("hugo").await;
    let mut a = app.ws(&t1).await;
    let mut b = app.ws(&t1).await;
    let mut other_session = app.ws(&t2).await;
    let started = std::time::Instant::now();
    let (s, _) = app.post(Some(&t1), "/api/v1/logout", json!({})).await;
    assert_eq!(s, 204);
    assert_eq!(a.closed().await, Some(4001));
    assert_eq!(b.closed().await, Some(4001));
    assert!(started.elapsed() < std::time::Duration::from_secs(1), "closed within a second");
    other_session.send(json!({"type": "ping"})).await;
    assert_eq!(other_session.next_json().await["type"], "pong");
    assert!(app.ws_raw(&format!("/ws?token={t1}")).await.is_err(), "the token no longer opens sockets");
}

#[tokio::test]
async fn a_reader_that_stops_reading_is_dropped_and_the_room_keeps_flowing() {
    const N: usize = 3000;
    let app = spawn_app_with(&["--send-queue", "128", "--write-timeout-secs", "2"]).await;
    let a = app.user("ivan").await;
    let b = app.user("jill").await;
    let c = app.user("kate").await;
    let room = app.room(&a, "firehose", "public").await;
    app.join(&b, "firehose").await;
    app.join(&c, "firehose").await;

    // kate's socket has a tiny receive buffer and is never read while the burst is sent.
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let stream = sock.connect(app.addr).await.unwrap();
    let mut req = format!("ws://{}/ws?token={c}", app.addr).into_client_request().unwrap();
    req.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_static("parley.v1"));
    let (mut slow, _) = tokio_tungstenite::client_async(req, stream).await.unwrap();

    let mut reader = app.ws(&b).await;
    let mut sender = app.ws(&a).await;
    let body = "y".repeat(2000);
    let recv = tokio::spawn(async move {
        let mut seqs = Vec::with_capacity(N);
        while seqs.len() < N {
            seqs.push(reader.next_text().await["seq"].as_i64().unwrap());
        }
        seqs
    });
    let send = tokio::spawn(async move {
        for i in 0..N {
            sender.send(json!({"type": "send", "room": room, "body": body, "client_id": format!("f{i}")})).await;
        }
        let mut acks = 0;
        while acks < N {
            if sender.next_json().await["type"] == "ack" {
                acks += 1;
            }
        }
    });
    send.await.unwrap();
    let seqs = recv.await.unwrap();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "the reading member got everything in order");

    // Now read the slow socket: it was cut off (4008, or dropped while its buffers were full).
    let mut texts = 0;
    let mut close_code = None;
    while let Ok(Some(frame)) = tokio::time::timeout(DEADLINE, slow.next()).await {
        match frame {
            Ok(Message::Text(_)) => texts += 1,
            Ok(Message::Close(f)) => {
                close_code = f.map(|f| u16::from(f.code));
                break;
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    assert!(texts < N, "the slow reader was disconnected before the burst ended ({texts} frames)");
    assert!(close_code.is_none() || close_code == Some(4008), "close code {close_code:?}");
}

#[tokio::test]
async fn other_origins_cannot_open_sockets_or_change_state() {
    let app = spawn_app_with(&["--allowed-origins", "https://app.example.com"]).await;
    let t = app.user("otto").await;
    // A foreign origin is refused for the WebSocket handshake and for writes…
    let mut req = format!("ws://{}/ws?token={t}", app.addr).into_client_request().unwrap();
    req.headers_mut().insert("origin", HeaderValue::from_static("http://evil.example"));
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 403);
            let body: serde_json::Value = serde_json::from_slice(resp.body().as_deref().unwrap_or_default()).unwrap();
            assert_eq!(body["error"]["code"], "origin_not_allowed");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let resp = app
        .http
        .post(app.url("/api/v1/rooms"))
        .bearer_auth(&t)
        .header("origin", "http://evil.example")
        .json(&json!({"name": "hijack"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    // …while the server's own origin, a listed one, and clients that send no Origin pass.
    for origin in [Some(format!("http://{}", app.addr)), Some("https://app.example.com".to_owned()), None] {
        let mut req = format!("ws://{}/ws?token={t}", app.addr).into_client_request().unwrap();
        if let Some(o) = &origin {
            req.headers_mut().insert("origin", HeaderValue::from_str(o).unwrap());
        }
        assert!(tokio_tungstenite::connect_async(req).await.is_ok(), "{origin:?}");
    }
    let resp = app
        .http
        .post(app.url("/api/v1/rooms"))
        .bearer_auth(&t)
        .header("origin", format!("http://{}", app.addr))
        .json(&json!({"name": "fine"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
}

#[tokio::test]
async fn with_write_coalescing_a_busy_socket_still_gets_every_message_once_in_order() {
    // A long window, so that nearly every batch after the first waits for it.
    let app = spawn_app_with(&["--write-coalesce-ms", "50"]).await;
    let (a, b) = (app.user("cora").await, app.user("dex").await);
    let room = app.room(&a, "busy", "public").await;
    app.join(&b, "busy").await;
    let base = app.get(Some(&b), "/api/v1/rooms/busy").await.1["last_seq"].as_i64().unwrap();
    let mut reader = app.ws(&b).await;
    let mut sender = app.ws(&a).await;
    const N: i64 = 200;
    for window in 0..N / 25 {
        for i in window * 25..window * 25 + 25 {
            sender.send(json!({"type": "send", "room": room, "body": format!("c{i}")})).await;
        }
        // The sender receives its own messages too (coalesced); its acks are not held back by that.
        let mut acks = 0;
        while acks < 25 {
            if sender.next_json().await["type"] == "ack" {
                acks += 1;
            }
        }
    }
    let mut got = Vec::new();
    while got.len() < N as usize {
        got.push(reader.next_text().await["seq"].as_i64().unwrap());
    }
    assert_eq!(got, (base + 1..=base + N).collect::<Vec<_>>());
}
