//! Issue 11: the one connection life cycle (`core::conn`), every rule run against every transport it
//! concerns — WebSocket, SSE and TCP — through small per-transport client adapters.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::harness::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ws,
    Sse,
    Tcp,
}

const ALL: [Kind; 3] = [Kind::Ws, Kind::Sse, Kind::Tcp];

/// The event stream of `token`'s user past its `hello` (bearer authentication), from
/// `last_event_id` if given; the refusal's code when refused.
async fn open_sse(app: &TestApp, token: &str, last_event_id: Option<&str>) -> Result<Sse, String> {
    let mut req = app.http.get(app.url("/api/v1/events")).bearer_auth(token);
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id);
    }
    let mut s = Sse::open(req).await.map_err(|(_, v)| v["error"]["code"].as_str().unwrap_or("?").to_owned())?;
    assert_eq!(s.next().await.expect("hello").event, "hello");
    Ok(s)
}

/// One connection of one user, whatever the transport.
enum Client {
    Ws(Ws),
    Sse(Sse),
    Tcp(Lines),
}

impl Client {
    /// Opens a connection for `name` (logged in as `token` on WebSocket and SSE; TCP logs in itself,
    /// with a session of its own); the refusal's code when refused.
    async fn try_open(app: &TestApp, kind: Kind, name: &str, token: &str) -> Result<Client, String> {
        match kind {
            Kind::Ws => match app.ws_raw(&format!("/ws?token={token}")).await {
                Ok(inner) => {
                    let mut ws = Ws { inner };
                    assert_eq!(ws.next_json().await["type"], "hello");
                    Ok(Client::Ws(ws))
                }
                Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                    let body: Value = serde_json::from_slice(resp.body().as_deref().unwrap_or(b"null")).unwrap();
                    Err(body["error"]["code"].as_str().unwrap_or("?").to_owned())
                }
                Err(e) => panic!("websocket: {e}"),
            },
            Kind::Sse => open_sse(app, token, None).await.map(Client::Sse),
            Kind::Tcp => Lines::login(app.tcp_addr, name).await.map(Client::Tcp),
        }
    }

    async fn open(app: &TestApp, kind: Kind, name: &str, token: &str) -> Client {
        Self::try_open(app, kind, name, token).await.unwrap_or_else(|e| panic!("{kind:?} refused: {e}"))
    }

    /// The body of the next text message delivered (any room).
    async fn next_body(&mut self) -> String {
        match self {
            Client::Ws(ws) => ws.next_text().await["body"].as_str().unwrap().to_owned(),
            Client::Sse(s) => loop {
                let e = s.next().await.expect("stream open");
                if e.event == "message" && e.data["message"]["kind"] == "text" {
                    return e.data["message"]["body"].as_str().unwrap().to_owned();
                }
            },
            Client::Tcp(t) => loop {
                let l = t.line().await.expect("connection open");
                if l.starts_with('[')
                    && !l.contains("] * ")
                    && let Some((_, body)) = l.split_once(": ")
                {
                    return body.to_owned();
                }
            },
        }
    }

    /// Reads until the server ends the connection: the reason it gave, as a code (`session_ended`,
    /// `too_slow`, `shutting_down`), or `None` when it just closed.
    async fn ended(&mut self) -> Option<String> {
        match self {
            Client::Ws(ws) => ws.closed().await.map(|c| {
                match c {
                    4001 => "session_ended",
                    4008 => "too_slow",
                    1001 => "shutting_down",
                    other => panic!("unexpected close code {other}"),
                }
                .to_owned()
            }),
            Client::Sse(s) => {
                let mut reason = None;
                while let Some(e) = s.next().await {
                    if e.event == "close" {
                        reason = e.data["code"].as_str().map(str::to_owned);
                    }
                }
                reason
            }
            Client::Tcp(t) => {
                let mut reason = None;
                while let Some(l) = t.line().await {
                    if let Some(e) = l.strip_prefix("ERR ") {
                        reason = Some(e.split(' ').next().unwrap().to_owned());
                    } else if l.starts_with("* The server is shutting down") {
                        reason = Some("shutting_down".to_owned());
                    }
                }
                reason
            }
        }
    }

    /// Says `body` in `room` (by name) the transport's way: `Ok` once accepted, else the error code.
    async fn say(&mut self, app: &TestApp, token: &str, room: &str, body: &str) -> Result<(), String> {
        match self {
            Client::Ws(ws) => {
                ws.send(json!({"type": "send", "room": room, "body": body, "req": "say"})).await;
                loop {
                    let v = ws.next_json().await;
                    if v["req"] == "say" {
                        return if v["type"] == "ack" { Ok(()) } else { Err(v["code"].as_str().unwrap().to_owned()) };
                    }
                }
            }
            Client::Sse(_) => {
                let (s, b) =
                    app.post(Some(token), &format!("/api/v1/rooms/{room}/messages"), json!({"body": body})).await;
                if s == 201 { Ok(()) } else { Err(b["error"]["code"].as_str().unwrap().to_owned()) }
            }
            Client::Tcp(t) => {
                t.send(&format!("/go {room}")).await;
                t.send(body).await;
                loop {
                    let l = t.line().await.expect("connection open");
                    if l.ends_with(&format!(": {body}")) {
                        return Ok(());
                    }
                    if let Some(e) = l.strip_prefix("ERR ") {
                        return Err(e.split(' ').next().unwrap().to_owned());
                    }
                }
            }
        }
    }
}

/// Item 1: expiry ends every live connection of the session within a second, with the session-ended
/// signal, and nothing is accepted after it.
#[tokio::test]
async fn session_expiry_ends_live_connections_on_every_transport() {
    let app = spawn_app_with(&["--token-ttl-secs", "2"]).await;
    for (i, kind) in ALL.into_iter().enumerate() {
        let name = format!("exp{i}");
        app.user(&name).await;
        let logged_in = Instant::now();
        let token = app.login(&name).await;
        let mut c = Client::open(&app, kind, &name, &token).await;
        assert_eq!(c.ended().await.as_deref(), Some("session_ended"), "{kind:?}");
        let took = logged_in.elapsed();
        assert!(took >= Duration::from_millis(1500), "{kind:?}: not before expiry ({took:?})");
        assert!(took < Duration::from_millis(3500), "{kind:?}: within a second of expiry ({took:?})");
        // Nothing more with that token.
        let (s, _) = app.get(Some(&token), "/api/v1/me").await;
        assert_eq!(s, 401, "{kind:?}");
    }
}

/// Logout ends the session's connections (TCP sessions are their own: no REST token to log out).
#[tokio::test]
async fn logout_ends_the_sessions_connections() {
    let app = spawn_app().await;
    for kind in [Kind::Ws, Kind::Sse] {
        let name = format!("out{kind:?}").to_lowercase();
        let token = app.user(&name).await;
        let mut c = Client::open(&app, kind, &name, &token).await;
        let (s, _) = app.post(Some(&token), "/api/v1/logout", json!({})).await;
        assert_eq!(s, 204);
        assert_eq!(c.ended().await.as_deref(), Some("session_ended"), "{kind:?}");
    }
}

/// A ban takes the room away from the banned user's live connection at once, on every transport.
#[tokio::test]
async fn a_ban_stops_deliveries_from_that_room_on_every_transport() {
    let app = spawn_app().await;
    let owner = app.user("boss").await;
    app.room(&owner, "hall", "public").await;
    app.room(&owner, "side", "public").await;
    for (i, kind) in ALL.into_iter().enumerate() {
        let name = format!("ban{i}");
        let token = app.user(&name).await;
        app.join(&token, "hall").await;
        app.join(&token, "side").await;
        let mut c = Client::open(&app, kind, &name, &token).await;
        let (s, _) = app.post(Some(&owner), "/api/v1/rooms/hall/ban", json!({"username": name})).await;
        assert_eq!(s, 204);
        let (s, _) = app.post(Some(&owner), "/api/v1/rooms/hall/messages", json!({"body": format!("secret{i}")})).await;
        assert_eq!(s, 201);
        let (s, _) = app.post(Some(&owner), "/api/v1/rooms/side/messages", json!({"body": format!("marker{i}")})).await;
        assert_eq!(s, 201);
        assert_eq!(c.next_body().await, format!("marker{i}"), "{kind:?}: nothing from the room after the ban");
    }
}

/// Admission: past the per-user cap a new connection is refused the transport's way, and a closed
/// connection gives its place back.
#[tokio::test]
async fn the_connection_cap_refuses_on_every_transport_and_frees_on_close() {
    let app = spawn_app_with(&["--max-connections-per-user", "1"]).await;
    for (i, kind) in ALL.into_iter().enumerate() {
        let name = format!("cap{i}");
        let token = app.user(&name).await;
        let first = Client::open(&app, kind, &name, &token).await;
        for other in ALL {
            let refused = Client::try_open(&app, other, &name, &token).await.err();
            assert_eq!(refused.as_deref(), Some("too_many_connections"), "{kind:?} then {other:?}");
        }
        drop(first);
        // The place comes back once the server notices the close.
        let deadline = Instant::now() + DEADLINE;
        loop {
            match Client::try_open(&app, kind, &name, &token).await {
                Ok(_) => break,
                Err(e) => assert!(Instant::now() < deadline, "{kind:?}: still refused ({e})"),
            }
            tokio::task::yield_now().await;
        }
    }
}

/// The shared message budget refuses the same way on every transport.
#[tokio::test]
async fn the_message_rate_limit_applies_on_every_transport() {
    let app = spawn_app_with(&["--messages-per-sec", "0.01", "--message-burst", "1"]).await;
    let owner = app.user("host").await;
    app.room(&owner, "quota", "public").await;
    for (i, kind) in ALL.into_iter().enumerate() {
        let name = format!("rate{i}");
        let token = app.user(&name).await;
        app.join(&token, "quota").await;
        let mut c = Client::open(&app, kind, &name, &token).await;
        assert_eq!(c.say(&app, &token, "quota", &format!("one{i}")).await, Ok(()), "{kind:?}");
        assert_eq!(c.say(&app, &token, "quota", &format!("two{i}")).await, Err("rate_limited".to_owned()), "{kind:?}");
    }
}

/// Keepalive: WebSocket Pings and SSE comment lines every period (TCP uses the kernel's keepalive).
#[tokio::test]
async fn keepalives_flow_on_websocket_and_sse() {
    let app = spawn_app_with(&["--keepalive-secs", "1"]).await;
    let token = app.user("alive").await;
    let mut ws = app.ws(&token).await;
    loop {
        match tokio::time::timeout(DEADLINE, ws.inner.next()).await.unwrap() {
            Some(Ok(Message::Ping(_))) => break,
            Some(Ok(_)) => continue,
            other => panic!("expected a ping, got {other:?}"),
        }
    }
    // A WebSocket client that answers Pings stays: two periods pass without a close.
    let quiet = tokio::time::timeout(Duration::from_millis(2500), async {
        loop {
            match ws.inner.next().await {
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => return other,
            }
        }
    })
    .await;
    assert!(quiet.is_err(), "the connection stays open: {quiet:?}");
    let mut sse = open_sse(&app, &token, None).await.unwrap();
    let deadline = Instant::now() + DEADLINE;
    while sse.comments == 0 {
        assert!(Instant::now() < deadline);
        let _ = tokio::time::timeout(Duration::from_millis(200), sse.next()).await;
    }
}

/// Resume over several rooms: WebSocket `resume` and SSE `Last-Event-ID` both deliver everything after
/// the position, in every room (TCP has `/history` instead).
#[tokio::test]
async fn resume_delivers_everything_after_the_position_in_every_room() {
    let app = spawn_app().await;
    let owner = app.user("rita").await;
    let a = app.room(&owner, "ra", "public").await;
    let b = app.room(&owner, "rb", "public").await;
    for kind in [Kind::Ws, Kind::Sse] {
        let name = format!("res{kind:?}").to_lowercase();
        let token = app.user(&name).await;
        app.join(&token, "ra").await;
        app.join(&token, "rb").await;
        let (_, ra) = app.get(Some(&token), "/api/v1/rooms/ra").await;
        let (_, rb) = app.get(Some(&token), "/api/v1/rooms/rb").await;
        let (sa, sb) = (ra["last_seq"].as_i64().unwrap(), rb["last_seq"].as_i64().unwrap());
        for i in 0..3 {
            for room in ["ra", "rb"] {
                let body = json!({"body": format!("{room}-{kind:?}-{i}")});
                assert_eq!(app.post(Some(&owner), &format!("/api/v1/rooms/{room}/messages"), body).await.0, 201);
            }
        }
        let mut got = Vec::new();
        match kind {
            Kind::Ws => {
                let mut ws = app.ws_resuming(&token).await;
                ws.send(json!({"type": "resume", "rooms": [{"room": a, "after": sa}, {"room": b, "after": sb}]})).await;
                while got.len() < 6 {
                    got.push(ws.next_text().await["body"].as_str().unwrap().to_owned());
                }
            }
            _ => {
                let mut sse = open_sse(&app, &token, Some(&format!("{a}:{sa},{b}:{sb}"))).await.unwrap();
                while got.len() < 6 {
                    let e = sse.next().await.unwrap();
                    if e.event == "message" && e.data["message"]["kind"] == "text" {
                        got.push(e.data["message"]["body"].as_str().unwrap().to_owned());
                    }
                }
            }
        }
        got.sort();
        let mut want: Vec<String> =
            (0..3).flat_map(|i| ["ra", "rb"].map(|r| format!("{r}-{kind:?}-{i}"))).collect::<Vec<_>>();
        want.sort();
        assert_eq!(got, want, "{kind:?}");
    }
}

/// Item 3: an SSE event id only claims what was delivered. Reconnecting with the id of the first
/// message replayed from room A still gets room B's messages.
#[tokio::test]
async fn sse_ids_sent_while_replaying_one_room_do_not_claim_another() {
    let app = spawn_app().await;
    let owner = app.user("sally").await;
    let a = app.room(&owner, "sa", "public").await;
    let b = app.room(&owner, "sb", "public").await;
    let token = app.user("simon").await;
    app.join(&token, "sa").await;
    app.join(&token, "sb").await;
    let mut sse = open_sse(&app, &token, None).await.unwrap();
    // A first live message in each room gives the position the client starts from.
    for room in ["sa", "sb"] {
        app.post(Some(&owner), &format!("/api/v1/rooms/{room}/messages"), json!({"body": format!("{room}-0")})).await;
    }
    let mut id = String::new();
    for _ in 0..2 {
        loop {
            let e = sse.next().await.unwrap();
            if e.event == "message" && e.data["message"]["kind"] == "text" {
                id = e.id.unwrap();
                break;
            }
        }
    }
    drop(sse);
    for i in 1..=3 {
        for room in ["sa", "sb"] {
            let body = json!({"body": format!("{room}-{i}")});
            app.post(Some(&owner), &format!("/api/v1/rooms/{room}/messages"), body).await;
        }
    }
    // Reconnect; take only the first replayed message and its id, then reconnect with that id.
    let mut sse = open_sse(&app, &token, Some(&id)).await.unwrap();
    let first = loop {
        let e = sse.next().await.unwrap();
        if e.event == "message" {
            break e;
        }
    };
    drop(sse);
    let first_body = first.data["message"]["body"].as_str().unwrap().to_owned();
    let mut sse = open_sse(&app, &token, Some(first.id.as_deref().unwrap())).await.unwrap();
    let mut got = vec![first_body];
    let mut recovered = 0;
    while recovered < 2 {
        let e = sse.next().await.unwrap();
        match e.event.as_str() {
            "message" => got.push(e.data["message"]["body"].as_str().unwrap().to_owned()),
            "recovered" => recovered += 1,
            _ => {}
        }
    }
    got.sort();
    assert_eq!(got, ["sa-1", "sa-2", "sa-3", "sb-1", "sb-2", "sb-3"], "rooms {a} and {b}");
}

/// Items 7 and 8: a client that stops reading is closed within the time bound and its place under
/// the connection cap is released, on every transport; if it reads again it finds the reason (when
/// there was room to send it) and then the end.
#[tokio::test]
async fn a_stalled_client_is_closed_and_released_on_every_transport() {
    let app = spawn_app_with(&[
        "--max-connections-per-user",
        "1",
        "--write-timeout-secs",
        "1",
        "--send-queue",
        "16",
        "--max-message-bytes",
        "60000",
        "--messages-per-sec",
        "100000",
        "--message-burst",
        "100000",
    ])
    .await;
    let owner = app.user("flood").await;
    app.room(&owner, "firehose", "public").await;
    let big = "x".repeat(59_000);
    for (i, kind) in ALL.into_iter().enumerate() {
        let name = format!("stall{i}");
        let token = app.user(&name).await;
        app.join(&token, "firehose").await;
        let mut stalled = Client::open(&app, kind, &name, &token).await; // and never read
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut sent = 0;
        // Flood until the stalled connection's place is free again.
        loop {
            for _ in 0..20 {
                app.post(Some(&owner), "/api/v1/rooms/firehose/messages", json!({"body": big})).await;
                sent += 1;
            }
            if let Ok(c) = Client::try_open(&app, Kind::Ws, &name, &token).await {
                drop(c);
                break;
            }
            assert!(Instant::now() < deadline, "{kind:?}: the stalled connection still holds its place after {sent}");
        }
        let reason = tokio::time::timeout(DEADLINE, async {
            loop {
                match &mut stalled {
                    Client::Ws(ws) => match ws.inner.next().await {
                        Some(Ok(Message::Close(f))) => return f.map(|f| u16::from(f.code).to_string()),
                        Some(Ok(_)) => continue,
                        _ => return None,
                    },
                    other => return other.ended().await,
                }
            }
        })
        .await
        .expect("the stalled connection ends");
        assert!(
            matches!(reason.as_deref(), None | Some("4008") | Some("too_slow")),
            "{kind:?}: ended as too slow or without a word: {reason:?}"
        );
    }
}

/// Item 8: the queue is bounded in bytes. A client that stops reading while big messages flow is closed
/// as too slow by the byte bound — the frame bound (10,000 deliveries) and the time bound (30 s) are
/// far off — and, reading again, finds the reason after what was already on its way.
#[tokio::test]
async fn the_byte_bound_ends_a_stalled_client_with_its_reason_on_every_transport() {
    let app = spawn_app_with(&[
        "--send-queue",
        "10000",
        "--send-queue-bytes",
        "200000",
        "--write-timeout-secs",
        "30",
        "--keepalive-secs",
        "60",
        "--max-message-bytes",
        "60000",
        "--messages-per-sec",
        "100000",
        "--message-burst",
        "100000",
    ])
    .await;
    let owner = app.user("bytes").await;
    app.room(&owner, "bulk", "public").await;
    let big = "y".repeat(59_000);
    let online = |v: &Value, name: &str| {
        v["members"].as_array().unwrap().iter().any(|m| m["username"] == name && m["online"] == true)
    };
    for (i, kind) in ALL.into_iter().enumerate() {
        let name = format!("bulk{i}");
        let token = app.user(&name).await;
        app.join(&token, "bulk").await;
        let started = Instant::now();
        let mut stalled = Client::open(&app, kind, &name, &token).await; // not read until closed
        let (_, m) = app.get(Some(&owner), "/api/v1/rooms/bulk/members").await;
        assert!(online(&m, &name), "{kind:?}: connected");
        // Flood until the hub has dropped the stalled connection (its user shows offline): at most
        // a few MB of kernel buffers, the SSE body's events and the byte bound are in the way.
        let mut sent = 0;
        loop {
            for _ in 0..4 {
                let (s, _) = app.post(Some(&owner), "/api/v1/rooms/bulk/messages", json!({"body": big})).await;
                assert_eq!(s, 201);
                sent += 1;
            }
            let (_, m) = app.get(Some(&owner), "/api/v1/rooms/bulk/members").await;
            if !online(&m, &name) {
                break;
            }
            assert!(sent < 600, "{kind:?}: still connected after {sent} messages of 59 KB");
        }
        let took = started.elapsed();
        assert!(took < Duration::from_secs(25), "{kind:?}: before the time bound could act ({took:?})");
        // Far below the frame bound: the bytes decided.
        assert!(sent < 10_000);
        assert_eq!(stalled.ended().await.as_deref(), Some("too_slow"), "{kind:?} after {sent} messages");
    }
}

/// Shutdown closes every transport with its going-away signal.
#[tokio::test]
async fn shutdown_closes_every_transport_with_its_going_away_signal() {
    let app = spawn_app().await;
    let mut clients = Vec::new();
    for (i, kind) in ALL.into_iter().enumerate() {
        let name = format!("bye{i}");
        let token = app.user(&name).await;
        clients.push((kind, Client::open(&app, kind, &name, &token).await));
    }
    app.stop().await;
    for (kind, mut c) in clients {
        assert_eq!(c.ended().await.as_deref(), Some("shutting_down"), "{kind:?}");
    }
}
