//! Issue 5: SSE + REST and the TCP line protocol share the hub with WebSocket users.

use serde_json::json;

use crate::harness::*;

#[tokio::test]
async fn tcp_sse_and_websocket_users_share_a_room_in_one_order() {
    let app = spawn_app().await;
    let (w, s, t) = (app.user("wendy").await, app.user("steve").await, app.user("tara").await);
    app.room(&w, "mix", "public").await;
    app.join(&s, "mix").await;
    app.join(&t, "mix").await;
    let mut ws = app.ws(&w).await;
    let mut sse = app.sse(&s, None).await;
    assert_eq!(sse.event().await.event, "hello");
    let mut tcp = app.tcp("tara").await;
    tcp.send_bytes(b"/go mix\n").await;
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
        tcp.send_bytes(format!("tcp-{i}\n").as_bytes()).await;
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
        let l = tcp.expect_line().await;
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
    let mut sse = app.sse(&b, None).await;
    assert_eq!(sse.event().await.event, "hello");
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
    let mut sse = app.sse(&b, Some(&last_id)).await;
    assert_eq!(sse.event().await.event, "hello");
    let mut recovered = false;
    while seen.len() < N {
        let e = sse.event().await;
        match e.event.as_str() {
            "message" if e.data["message"]["kind"] == "text" => seen.push(e.data["message"]["seq"].as_i64().unwrap()),
            "recovered" => recovered = true,
            _ => {}
        }
    }
    assert!(recovered || sse.event().await.event == "recovered");
    let first = seen[0];
    assert_eq!(seen, (first..first + N as i64).collect::<Vec<_>>(), "exactly the missing events: no gap, no duplicate");
}

#[tokio::test]
async fn the_tcp_protocol_answers_bad_input_with_documented_errors() {
    let app = spawn_app().await;
    app.user("ted").await;
    let mut t = Lines::connect(app.tcp_addr).await;
    t.send_bytes(b"/rooms\n").await;
    assert!(t.expect_line().await.starts_with("ERR unauthorized "), "commands before login");
    t.send_bytes(b"hello?\n").await;
    assert!(t.expect_line().await.starts_with("ERR unauthorized "));
    t.send_bytes(b"/login ted wrong-password\n").await;
    assert!(t.expect_line().await.starts_with("ERR invalid_credentials "));
    t.send_bytes(b"/login ted password-ted\n").await;
    t.until("* Hello").await;
    t.send_bytes(b"/frobnicate\n").await;
    assert!(t.until("ERR").await.starts_with("ERR unknown_command "));
    t.send_bytes(&[b'x'; 20_000]).await;
    t.send_bytes(b"\n").await;
    assert!(t.expect_line().await.starts_with("ERR line_too_long "));
    t.send_bytes(b"\xff\xfe\xfd\n").await;
    assert!(t.expect_line().await.starts_with("ERR bad_utf8 "));
    t.send_bytes(b"no room yet\n").await;
    assert!(t.expect_line().await.starts_with("ERR bad_request "));
    t.send_bytes(b"/help\n").await;
    assert!(t.expect_line().await.starts_with("* Commands:"));
    // A flood is cut down to the rate limit with an error line, and the connection keeps working.
    let flood: Vec<u8> = (0..500).flat_map(|i| format!("/list {i}\n").into_bytes()).collect();
    t.send_bytes(&flood).await;
    t.until("ERR too_fast ").await;
    // Others are served meanwhile.
    let (s, _) = app.get(None, "/healthz").await;
    assert_eq!(s, 200);
    let mut other = app.tcp("ted").await;
    other.send_bytes(b"/create calm\n").await;
    assert!(other.until("* Created #calm").await.contains("calm"));
    other.send_bytes(b"/quit\n").await;
    assert_eq!(other.until("* Bye").await, "* Bye.");
}

#[tokio::test]
async fn a_tcp_user_does_everything_from_nc() {
    let app = spawn_app().await;
    let web = app.user("petra").await;
    app.room(&web, "plaza", "public").await;
    let mut t = Lines::connect(app.tcp_addr).await;
    t.send_bytes(b"/register nico password-nico\n").await;
    assert!(t.expect_line().await.starts_with("* Registered nico"));
    t.send_bytes(b"/login nico password-nico\n").await;
    t.until("* Hello").await;
    t.send_bytes(b"/list\n").await;
    assert!(t.until("* #plaza").await.contains("1 member"));
    t.send_bytes(b"/join plaza\n").await;
    t.until("* Current room: #plaza").await;
    let mut ws = app.ws(&web).await;
    t.send_bytes(b"hi from nc\n").await;
    assert_eq!(ws.next_text().await["body"], "hi from nc");
    ws.send(json!({"type": "send", "room": "plaza", "body": "hi nc"})).await;
    assert_eq!(t.until("[#plaza] petra:").await, "[#plaza] petra: hi nc");
    t.send_bytes(b"/who\n").await;
    let who = t.until("* ").await;
    assert!(who.contains("nico (online)") && who.contains("petra (online, owner)"), "{who}");
    t.send_bytes(b"/history 5\n").await;
    assert!(t.until("[#plaza] * petra created").await.contains("created"));
    t.send_bytes(b"/msg petra psst\n").await;
    loop {
        let m = ws.next_text().await;
        if m["body"] == "psst" {
            break;
        }
    }
    t.send_bytes(b"/nick Nico N.\n").await;
    assert_eq!(t.until("* You are now shown as").await, "* You are now shown as Nico N..");
    t.send_bytes(b"/quit\n").await;
    t.until("* Bye").await;
}
