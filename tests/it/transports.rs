//! Issue 5: SSE + REST and the TCP line protocol share the hub with WebSocket users.

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::harness::*;

/// A minimal EventSource: events as (event, id, data).
pub(crate) struct Sse {
    resp: reqwest::Response,
    buf: String,
}

#[derive(Debug, Clone)]
pub(crate) struct SseEvent {
    pub(crate) event: String,
    pub(crate) id: Option<String>,
    pub(crate) data: Value,
}

impl Sse {
    pub(crate) async fn open(app: &TestApp, token: &str, last_event_id: Option<&str>) -> Sse {
        let mut req = app.http.get(app.url("/api/v1/events")).header("cookie", format!("parley_token={token}"));
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        Sse { resp, buf: String::new() }
    }

    pub(crate) async fn next(&mut self) -> SseEvent {
        loop {
            if let Some(i) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..i + 2).collect();
                let (mut event, mut id, mut data) = (String::from("message"), None, String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // a comment (heartbeat) or retry hint
                }
                return SseEvent { event, id, data: serde_json::from_str(&data).unwrap() };
            }
            let chunk = tokio::time::timeout(DEADLINE, self.resp.chunk())
                .await
                .expect("an event in time")
                .unwrap()
                .expect("stream open");
            self.buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    pub(crate) async fn next_text(&mut self) -> (SseEvent, Value) {
        loop {
            let e = self.next().await;
            if e.event == "message" && e.data["message"]["kind"] == "text" {
                let m = e.data["message"].clone();
                return (e, m);
            }
        }
    }
}

pub(crate) struct Tcp {
    r: tokio::io::Lines<BufReader<OwnedReadHalf>>,
    w: OwnedWriteHalf,
}

impl Tcp {
    pub(crate) async fn connect(app: &TestApp) -> Tcp {
        let (r, w) = TcpStream::connect(app.tcp_addr).await.unwrap().into_split();
        let mut t = Tcp { r: BufReader::new(r).lines(), w };
        assert!(t.line().await.starts_with("* Welcome to Parley"));
        t
    }

    pub(crate) async fn send(&mut self, bytes: &[u8]) {
        self.w.write_all(bytes).await.unwrap();
    }

    pub(crate) async fn line(&mut self) -> String {
        tokio::time::timeout(DEADLINE, self.r.next_line())
            .await
            .expect("a line in time")
            .unwrap()
            .expect("connection open")
    }

    /// Lines until one starts with `prefix`; returns it.
    pub(crate) async fn until(&mut self, prefix: &str) -> String {
        loop {
            let l = self.line().await;
            if l.starts_with(prefix) {
                return l;
            }
        }
    }

    pub(crate) async fn login(app: &TestApp, name: &str) -> Tcp {
        let mut t = Tcp::connect(app).await;
        t.send(format!("/login {name} password-{name}\n").as_bytes()).await;
        assert!(t.until("* Hello").await.contains("Hello"));
        t
    }
}

#[tokio::test]
async fn tcp_sse_and_websocket_users_share_a_room_in_one_order() {
    let app = spawn_app().await;
    let (w, s, t) = (app.user("wendy").await, app.user("steve").await, app.user("tara").await);
    app.room(&w, "mix", "public").await;
    app.join(&s, "mix").await;
    app.join(&t, "mix").await;
    let mut ws = app.ws(&w).await;
    let mut sse = Sse::open(&app, &s, None).await;
    assert_eq!(sse.next().await.event, "hello");
    let mut tcp = Tcp::login(&app, "tara").await;
    tcp.send(b"/go mix\n").await;
    tcp.until("* Current room: #mix").await;

    // Each transport sends; sends interleave.
    const EACH: usize = 20;
    let http = app.http.clone();
    let url = app.url("/api/v1/rooms/mix/messages");
    let s2 = s.clone();
    let rest = tokio::spawn(async move {
        for i in 0..EACH {
            let r = http.post(&url).bearer_auth(&s2).json(&json!({"body": format!("sse-{i}")})).send().await.unwrap();
            assert_eq!(r.status(), 201);
        }
    });
    for i in 0..EACH {
        ws.send(json!({"type": "send", "room": "mix", "body": format!("ws-{i}")})).await;
        tcp.send(format!("tcp-{i}\n").as_bytes()).await;
    }
    rest.await.unwrap();

    let total = EACH * 3;
    let mut from_ws = Vec::new();
    while from_ws.len() < total {
        let m = ws.next_text().await;
        from_ws.push((m["seq"].as_i64().unwrap(), m["body"].as_str().unwrap().to_owned()));
    }
    let mut from_sse = Vec::new();
    while from_sse.len() < total {
        let (_, m) = sse.next_text().await;
        from_sse.push((m["seq"].as_i64().unwrap(), m["body"].as_str().unwrap().to_owned()));
    }
    let mut from_tcp = Vec::new();
    while from_tcp.len() < total {
        let l = tcp.line().await;
        if let Some(rest) = l.strip_prefix("[#mix] ")
            && let Some((_, body)) = rest.split_once(": ")
        {
            from_tcp.push(body.to_owned());
        }
    }
    assert_eq!(from_ws, from_sse, "WebSocket and SSE see the same messages in the same order");
    assert!(from_ws.windows(2).all(|p| p[1].0 == p[0].0 + 1), "gapless");
    let bodies: Vec<String> = from_ws.into_iter().map(|(_, b)| b).collect();
    assert_eq!(bodies, from_tcp, "and so does the TCP user");
    for prefix in ["ws-", "sse-", "tcp-"] {
        assert_eq!(bodies.iter().filter(|b| b.starts_with(prefix)).count(), EACH);
    }
}

#[tokio::test]
async fn an_sse_stream_dropped_mid_burst_resumes_by_last_event_id() {
    let app = spawn_app().await;
    let (a, b) = (app.user("abel").await, app.user("beth").await);
    app.room(&a, "burst", "public").await;
    app.join(&b, "burst").await;
    let mut sse = Sse::open(&app, &b, None).await;
    assert_eq!(sse.next().await.event, "hello");
    let mut sender = app.ws(&a).await;
    const N: usize = 300;
    for i in 0..N {
        sender
            .send(json!({"type": "send", "room": "burst", "body": format!("b{i}"), "client_id": format!("b{i}")}))
            .await;
    }
    let mut seen = Vec::new();
    let mut last_id = String::new();
    while seen.len() < 100 {
        let (e, m) = sse.next_text().await;
        seen.push(m["seq"].as_i64().unwrap());
        last_id = e.id.expect("message events carry an id");
    }
    drop(sse); // the stream drops mid-burst
    let mut acks = 0;
    while acks < N {
        if sender.next_json().await["type"] == "ack" {
            acks += 1;
        }
    }
    let mut sse = Sse::open(&app, &b, Some(&last_id)).await;
    assert_eq!(sse.next().await.event, "hello");
    let mut recovered = false;
    while seen.len() < N {
        let e = sse.next().await;
        match e.event.as_str() {
            "message" if e.data["message"]["kind"] == "text" => seen.push(e.data["message"]["seq"].as_i64().unwrap()),
            "recovered" => recovered = true,
            _ => {}
        }
    }
    assert!(recovered || sse.next().await.event == "recovered");
    let first = seen[0];
    assert_eq!(seen, (first..first + N as i64).collect::<Vec<_>>(), "exactly the missing events: no gap, no duplicate");
}

#[tokio::test]
async fn the_tcp_protocol_answers_bad_input_with_documented_errors() {
    let app = spawn_app().await;
    app.user("ted").await;
    let mut t = Tcp::connect(&app).await;
    t.send(b"/rooms\n").await;
    assert!(t.line().await.starts_with("ERR unauthorized "), "commands before login");
    t.send(b"hello?\n").await;
    assert!(t.line().await.starts_with("ERR unauthorized "));
    t.send(b"/login ted wrong-password\n").await;
    assert!(t.line().await.starts_with("ERR invalid_credentials "));
    t.send(b"/login ted password-ted\n").await;
    t.until("* Hello").await;
    t.send(b"/frobnicate\n").await;
    assert!(t.until("ERR").await.starts_with("ERR unknown_command "));
    t.send(&[b'x'; 20_000]).await;
    t.send(b"\n").await;
    assert!(t.line().await.starts_with("ERR line_too_long "));
    t.send(b"\xff\xfe\xfd\n").await;
    assert!(t.line().await.starts_with("ERR bad_utf8 "));
    t.send(b"no room yet\n").await;
    assert!(t.line().await.starts_with("ERR bad_request "));
    t.send(b"/help\n").await;
    assert!(t.line().await.starts_with("* Commands:"));
    // A flood is cut down to the rate limit with an error line, and the connection keeps working.
    let flood: Vec<u8> = (0..500).flat_map(|i| format!("/list {i}\n").into_bytes()).collect();
    t.send(&flood).await;
    t.until("ERR too_fast ").await;
    // Others are served meanwhile.
    let (s, _) = app.get(None, "/healthz").await;
    assert_eq!(s, 200);
    let mut other = Tcp::login(&app, "ted").await;
    other.send(b"/create calm\n").await;
    assert!(other.until("* Created #calm").await.contains("calm"));
    other.send(b"/quit\n").await;
    assert_eq!(other.until("* Bye").await, "* Bye.");
}

#[tokio::test]
async fn a_tcp_user_does_everything_from_nc() {
    let app = spawn_app().await;
    let web = app.user("petra").await;
    app.room(&web, "plaza", "public").await;
    let mut t = Tcp::connect(&app).await;
    t.send(b"/register nico password-nico\n").await;
    assert!(t.line().await.starts_with("* Registered nico"));
    t.send(b"/login nico password-nico\n").await;
    t.until("* Hello").await;
    t.send(b"/list\n").await;
    assert!(t.until("* #plaza").await.contains("1 member"));
    t.send(b"/join plaza\n").await;
    t.until("* Current room: #plaza").await;
    let mut ws = app.ws(&web).await;
    t.send(b"hi from nc\n").await;
    assert_eq!(ws.next_text().await["body"], "hi from nc");
    ws.send(json!({"type": "send", "room": "plaza", "body": "hi nc"})).await;
    assert_eq!(t.until("[#plaza] petra:").await, "[#plaza] petra: hi nc");
    t.send(b"/who\n").await;
    let who = t.until("* ").await;
    assert!(who.contains("nico (online)") && who.contains("petra (online, owner)"), "{who}");
    t.send(b"/history 5\n").await;
    assert!(t.until("[#plaza] * petra created").await.contains("created"));
    t.send(b"/msg petra psst\n").await;
    loop {
        let m = ws.next_text().await;
        if m["body"] == "psst" {
            break;
        }
    }
    t.send(b"/nick Nico N.\n").await;
    assert_eq!(t.until("* You are now shown as").await, "* You are now shown as Nico N..");
    t.send(b"/quit\n").await;
    t.until("* Bye").await;
}
