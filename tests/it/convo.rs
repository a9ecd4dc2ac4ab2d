//! Issue 14 over real sockets: replies and threads, reactions, pins, notification levels and `@room`,
//! on WebSocket, REST/SSE and TCP; authorization, idempotency, concurrency, restart and resume.

use serde_json::{Value, json};

use crate::harness::*;

const THUMBS: &str = "%F0%9F%91%8D"; // 👍

async fn send(app: &TestApp, token: &str, room: &str, body: Value) -> (u16, Value) {
    app.post(Some(token), &format!("/api/v1/rooms/{room}/messages"), body).await
}

async fn say(app: &TestApp, token: &str, room: &str, text: &str) -> i64 {
    let (s, b) = send(app, token, room, json!({ "body": text })).await;
    assert_eq!(s, 201, "{b}");
    b["seq"].as_i64().unwrap()
}

async fn call(app: &TestApp, method: reqwest::Method, token: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = app.http.request(method, app.url(path)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn history(app: &TestApp, token: &str, room: &str) -> Vec<Value> {
    let (s, b) = app.get(Some(token), &format!("/api/v1/rooms/{room}/messages?limit=200")).await;
    assert_eq!(s, 200, "{b}");
    b["messages"].as_array().unwrap().clone()
}

fn find(messages: &[Value], seq: i64) -> Value {
    messages.iter().find(|m| m["seq"] == seq).cloned().unwrap_or_else(|| panic!("seq {seq} in {messages:?}"))
}

#[tokio::test]
async fn replies_quote_their_parent_and_threads_read_on_every_transport() {
    let app = spawn_app().await;
    let (a, b) = (app.user("alice").await, app.user("bob").await);
    let _t = app.user("tara").await;
    app.room(&a, "talk", "public").await;
    app.join(&b, "talk").await;
    let t = app.login("tara").await;
    app.join(&t, "talk").await;
    let mut ws = app.ws(&a).await;
    let mut tcp = app.tcp("tara").await;
    tcp.send_bytes(b"/go talk\n").await;
    tcp.until("* Current room: #talk").await;

    // WebSocket: the root.
    ws.send(json!({"type": "send", "room": "talk", "body": "what shall we build?", "req": "s1"})).await;
    let root = ws.next_of("ack").await["seq"].as_i64().unwrap();

    // REST: a reply, in the main stream with its quote, and the root's summary follows.
    let (s, ack) = send(&app, &b, "talk", json!({"body": "a chat server", "reply_to": root, "client_id": "r1"})).await;
    assert_eq!(s, 201, "{ack}");
    let r1 = ack["seq"].as_i64().unwrap();
    let m = ws.next_text().await;
    let m = if m["seq"] == root { ws.next_text().await } else { m };
    assert_eq!((m["seq"].as_i64(), m["reply_to"].as_i64(), m["thread"].as_i64()), (Some(r1), Some(root), Some(root)));
    assert_eq!(m["quote"]["excerpt"], "what shall we build?");
    assert_eq!(m["quote"]["sender"]["username"], "alice");
    assert_eq!(m["quote"]["deleted"], false);
    let up = ws.next_of("thread_updated").await;
    assert_eq!((up["seq"].as_i64(), up["reply_count"].as_i64()), (Some(root), Some(1)));
    assert!(up["last_reply_ts"].as_i64().is_some());
    // Idempotent like any send: the same client_id stores nothing new.
    let (_, again) =
        send(&app, &b, "talk", json!({"body": "a chat server", "reply_to": root, "client_id": "r1"})).await;
    assert_eq!((again["seq"].as_i64(), again["duplicate"].as_bool()), (Some(r1), Some(true)));

    // TCP: the reply shows as one, and a reply to a reply joins the same thread.
    tcp.until(&format!("[#talk] bob (reply to #{root}): a chat server")).await;
    tcp.send_bytes(format!("/reply {r1} with threads\n").as_bytes()).await;
    let r2 = ws.next_text().await;
    assert_eq!((r2["reply_to"].as_i64(), r2["thread"].as_i64()), (Some(r1), Some(root)), "{r2}");
    assert_eq!(r2["quote"]["excerpt"], "a chat server");
    let r2 = r2["seq"].as_i64().unwrap();
    assert_eq!(ws.next_of("thread_updated").await["reply_count"], 2);

    // Reading the thread: REST, WebSocket and TCP, paginated like history.
    let (s, th) = app.get(Some(&b), &format!("/api/v1/rooms/talk/threads/{root}")).await;
    assert_eq!(s, 200, "{th}");
    assert_eq!(th["root"]["seq"], root);
    assert_eq!(th["root"]["reply_count"], 2);
    let seqs: Vec<i64> = th["messages"].as_array().unwrap().iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!((seqs, th["has_more"].as_bool()), (vec![r1, r2], Some(false)));
    let (_, page) = app.get(Some(&b), &format!("/api/v1/rooms/talk/threads/{root}?limit=1")).await;
    assert_eq!((page["messages"][0]["seq"].as_i64(), page["has_more"].as_bool()), (Some(r2), Some(true)));
    let (_, page) = app.get(Some(&b), &format!("/api/v1/rooms/talk/threads/{root}?after={r1}")).await;
    assert_eq!(page["messages"].as_array().unwrap().len(), 1);
    ws.send(json!({"type": "thread", "room": "talk", "seq": r2, "req": "t1"})).await;
    let f = ws.next_of("thread").await;
    assert_eq!((f["req"].as_str(), f["root"]["seq"].as_i64()), (Some("t1"), Some(root)), "a reply names its thread");
    assert_eq!(f["messages"].as_array().unwrap().len(), 2);
    tcp.send_bytes(format!("/thread {root}\n").as_bytes()).await;
    tcp.until(&format!("* Thread of #{root} (2 replies):")).await;
    tcp.until("[#talk] alice: what shall we build?").await;
    tcp.until(&format!("[#talk] bob (reply to #{root}): a chat server")).await;

    // The history shows the root's summary, and a deleted parent becomes a tombstone in its replies.
    let h = history(&app, &b, "talk").await;
    assert_eq!(find(&h, root)["reply_count"], 2);
    assert!(find(&h, root)["last_reply_ts"].as_i64().is_some());
    let (s, _) = call(&app, reqwest::Method::DELETE, &a, &format!("/api/v1/rooms/talk/messages/{root}"), None).await;
    assert_eq!(s, 204);
    let h = history(&app, &b, "talk").await;
    assert_eq!(
        find(&h, r1)["quote"],
        json!({"seq": root, "sender": find(&h, r1)["quote"]["sender"], "excerpt": "", "deleted": true})
    );

    // Refusals: no such parent, a parent in another room, a system message.
    let (s, e) = send(&app, &b, "talk", json!({"body": "x", "reply_to": 999})).await;
    assert_eq!((s, e["error"]["code"].as_str()), (404, Some("message_not_found")));
    let (s, e) = send(&app, &b, "talk", json!({"body": "x", "reply_to": 1})).await;
    assert_eq!((s, e["error"]["code"].as_str()), (404, Some("message_not_found")), "seq 1 is the create line");
}

#[tokio::test]
async fn twenty_users_reacting_at_once_end_with_exact_counts_live_everywhere() {
    let app = spawn_app().await;
    let owner = app.user("owner").await;
    app.room(&owner, "party", "public").await;
    let seq = say(&app, &owner, "party", "the release is out").await;
    let mut ws = app.ws(&owner).await;
    let mut sse = app.sse(&owner, None).await;
    assert_eq!(sse.event().await.event, "hello");

    let mut tokens = Vec::new();
    for i in 0..20 {
        let t = app.user(&format!("fan{i}")).await;
        app.join(&t, "party").await;
        tokens.push(t);
    }
    let path = format!("/api/v1/rooms/party/messages/{seq}/reactions/{THUMBS}");
    let tasks: Vec<_> = tokens
        .iter()
        .map(|t| {
            let (http, url, t) = (app.http.clone(), app.url(&path), t.clone());
            tokio::spawn(async move {
                // Twice each: adding twice is one reaction.
                for _ in 0..2 {
                    let r = http.put(&url).bearer_auth(&t).send().await.unwrap();
                    assert_eq!(r.status(), 200);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let h = history(&app, &owner, "party").await;
    let r = &find(&h, seq)["reactions"];
    assert_eq!(r.as_array().unwrap().len(), 1, "{r}");
    assert_eq!((r[0]["emoji"].as_str(), r[0]["count"].as_i64()), (Some("👍"), Some(20)));
    assert_eq!(r[0]["users"].as_array().unwrap().len(), 20);

    // Live on WebSocket and SSE: one `reactions` event per change, the last one with the exact count.
    let mut last = Value::Null;
    for _ in 0..20 {
        last = ws.next_of("reactions").await;
    }
    assert_eq!((last["room"].is_i64(), last["seq"].as_i64()), (true, Some(seq)));
    assert_eq!(last["reactions"][0]["count"], 20);
    let mut n = 0;
    while n < 20 {
        let e = sse.event().await;
        if e.event == "reactions" {
            n += 1;
            last = e.data;
        }
    }
    assert_eq!(last["reactions"][0]["count"], 20);

    // WebSocket frames and their reply; TCP commands and lines.
    ws.send(json!({"type": "react", "room": "party", "seq": seq, "emoji": "🎉", "req": "r1"})).await;
    let reply = loop {
        let f = ws.next_of("reactions").await;
        if f["req"] == "r1" {
            break f;
        }
    };
    assert_eq!(reply["reactions"][1], json!({"emoji": "🎉", "count": 1, "users": [1]}));
    let mut tcp = app.tcp("fan0").await;
    tcp.send_bytes(b"/go party\n").await;
    tcp.until("* Current room: #party").await;
    tcp.send_bytes(format!("/unreact {seq} 👍\n").as_bytes()).await;
    tcp.until(&format!("[#party] (reactions #{seq}) 👍 19, 🎉 1")).await;
    tcp.send_bytes(format!("/react {seq} 👍\n").as_bytes()).await;
    tcp.until(&format!("[#party] (reactions #{seq}) 👍 20, 🎉 1")).await;

    // DELETE is idempotent and answers the list.
    let del = |t: String| {
        let path = format!("/api/v1/rooms/party/messages/{seq}/reactions/%F0%9F%8E%89");
        let app = &app;
        async move { call(app, reqwest::Method::DELETE, &t, &path, None).await }
    };
    let (s, b) = del(owner.clone()).await;
    assert_eq!((s, b["reactions"].as_array().unwrap().len()), (200, 1), "{b}");
    let (s, _) = del(owner.clone()).await;
    assert_eq!(s, 200);

    // Limits: one emoji, on live text messages.
    let (s, e) =
        call(&app, reqwest::Method::PUT, &owner, &format!("/api/v1/rooms/party/messages/{seq}/reactions/ab"), None)
            .await;
    assert_eq!((s, e["error"]["code"].as_str()), (400, Some("invalid_emoji")));
    let (s, e) =
        call(&app, reqwest::Method::PUT, &owner, &format!("/api/v1/rooms/party/messages/1/reactions/{THUMBS}"), None)
            .await;
    assert_eq!((s, e["error"]["code"].as_str()), (404, Some("message_not_found")), "not on system messages");
    for (i, c) in ('a'..='s').enumerate() {
        let (s, b) = call(
            &app,
            reqwest::Method::PUT,
            &owner,
            &format!("/api/v1/rooms/party/messages/{seq}/reactions/{c}"),
            None,
        )
        .await;
        assert_eq!(s, 200, "{i}: {b}");
    }
    let (s, e) =
        call(&app, reqwest::Method::PUT, &owner, &format!("/api/v1/rooms/party/messages/{seq}/reactions/z"), None)
            .await;
    assert_eq!((s, e["error"]["code"].as_str()), (409, Some("too_many_reactions")), "the 21st distinct emoji");
}

#[tokio::test]
async fn outsiders_get_the_nonexistent_room_answer_for_every_new_action() {
    let app = spawn_app().await;
    let (owner, outsider) = (app.user("owner").await, app.user("outsider").await);
    let id = app.room(&owner, "secret", "private").await;
    let seq = say(&app, &owner, "secret", "hush").await;
    let nowhere = 9999;
    for room in [id, nowhere] {
        let cases: Vec<(reqwest::Method, String, Option<Value>)> = vec![
            (reqwest::Method::PUT, format!("/api/v1/rooms/{room}/messages/{seq}/reactions/{THUMBS}"), None),
            (reqwest::Method::DELETE, format!("/api/v1/rooms/{room}/messages/{seq}/reactions/{THUMBS}"), None),
            (
                reqwest::Method::POST,
                format!("/api/v1/rooms/{room}/messages"),
                Some(json!({"body": "hi", "reply_to": seq})),
            ),
            (reqwest::Method::GET, format!("/api/v1/rooms/{room}/threads/{seq}"), None),
            (reqwest::Method::POST, format!("/api/v1/rooms/{room}/threads/{seq}/read"), Some(json!({"seq": seq}))),
            (reqwest::Method::POST, format!("/api/v1/rooms/{room}/pins"), Some(json!({"seq": seq}))),
            (reqwest::Method::DELETE, format!("/api/v1/rooms/{room}/pins/{seq}"), None),
            (reqwest::Method::GET, format!("/api/v1/rooms/{room}/pins"), None),
            (reqwest::Method::PUT, format!("/api/v1/rooms/{room}/notify"), Some(json!({"level": "none"}))),
        ];
        for (method, path, body) in cases {
            let (s, e) = call(&app, method.clone(), &outsider, &path, body).await;
            assert_eq!((s, e["error"]["code"].as_str()), (404, Some("room_not_found")), "{method} {path}: {e}");
        }
    }
    let mut ws = app.ws(&outsider).await;
    for frame in [
        json!({"type": "react", "room": id, "seq": seq, "emoji": "👍"}),
        json!({"type": "unreact", "room": id, "seq": seq, "emoji": "👍"}),
        json!({"type": "send", "room": id, "body": "hi", "reply_to": seq}),
        json!({"type": "thread", "room": id, "seq": seq}),
        json!({"type": "pin", "room": id, "seq": seq}),
        json!({"type": "pins", "room": id}),
        json!({"type": "notify", "room": id, "muted": true}),
    ] {
        ws.send(frame.clone()).await;
        let e = ws.next_of("error").await;
        assert_eq!(e["code"], "room_not_found", "{frame}: {e}");
    }
    // Nothing happened: no reaction, no pin.
    let h = history(&app, &owner, "secret").await;
    assert!(find(&h, seq).get("reactions").is_none());
    assert_eq!(h.len(), 2, "create + hush only");
}

#[tokio::test]
async fn pins_are_for_moderators_listed_for_readers_and_recorded() {
    let app = spawn_app().await;
    let (owner, member) = (app.user("owner").await, app.user("member").await);
    app.room(&owner, "board", "public").await;
    app.join(&member, "board").await;
    let seq = say(&app, &member, "board", "the rules: be kind").await;
    let mut ws = app.ws(&member).await;

    let (s, e) = app.post(Some(&member), "/api/v1/rooms/board/pins", json!({"seq": seq})).await;
    assert_eq!((s, e["error"]["code"].as_str()), (403, Some("forbidden")));
    let (s, _) = app.post(Some(&owner), "/api/v1/rooms/board/pins", json!({"seq": seq})).await;
    assert_eq!(s, 204);
    let (s, _) = app.post(Some(&owner), "/api/v1/rooms/board/pins", json!({"seq": seq})).await;
    assert_eq!(s, 204, "pinning twice is one pin");
    let sys = ws.next_of("message").await["message"].clone();
    assert_eq!((sys["kind"].as_str(), sys["body"].as_str()), (Some("pin"), Some(seq.to_string().as_str())));
    assert_eq!(sys["sender"]["username"], "owner");

    let (s, p) = app.get(Some(&member), "/api/v1/rooms/board/pins").await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(p["pins"].as_array().unwrap().len(), 1);
    assert_eq!(p["pins"][0]["message"]["body"], "the rules: be kind");
    assert_eq!(p["pins"][0]["pinned_by"]["username"], "owner");
    assert!(p["pins"][0]["at"].as_i64().is_some());
    ws.send(json!({"type": "pins", "room": "board", "req": "p"})).await;
    let f = ws.next_of("pins").await;
    assert_eq!((f["req"].as_str(), f["pins"][0]["message"]["seq"].as_i64()), (Some("p"), Some(seq)));
    let outsider = app.user("reader").await;
    let (s, _) = app.get(Some(&outsider), "/api/v1/rooms/board/pins").await;
    assert_eq!(s, 200, "a public room's pins are public, like its history");

    // TCP lists them; WebSocket unpins, recorded once.
    let mut tcp = app.tcp("member").await;
    tcp.send_bytes(b"/go board\n").await;
    tcp.until("* Current room: #board").await;
    tcp.send_bytes(b"/pins\n").await;
    tcp.until("* pinned by owner:").await;
    tcp.until("[#board] member: the rules: be kind").await;
    let mut ows = app.ws(&owner).await;
    ows.send(json!({"type": "unpin", "room": "board", "seq": seq, "req": "u"})).await;
    assert_eq!(ows.next_of("ok").await["req"], "u");
    tcp.until(&format!("[#board] * owner unpinned message #{seq}")).await;
    let (s, _) = call(&app, reqwest::Method::DELETE, &owner, &format!("/api/v1/rooms/board/pins/{seq}"), None).await;
    assert_eq!(s, 204, "unpinning twice is a no-op");
    let (_, p) = app.get(Some(&member), "/api/v1/rooms/board/pins").await;
    assert!(p["pins"].as_array().unwrap().is_empty());
    let kinds: Vec<String> =
        history(&app, &member, "board").await.iter().map(|m| m["kind"].as_str().unwrap().to_owned()).collect();
    assert_eq!(kinds.iter().filter(|k| *k == "pin" || *k == "unpin").count(), 2, "{kinds:?}");
}

#[tokio::test]
async fn notification_levels_sync_across_devices_and_shape_the_counts() {
    let app = spawn_app().await;
    let (owner, bob, carl) = (app.user("owner").await, app.user("bob").await, app.user("carl").await);
    app.room(&owner, "news", "public").await;
    app.join(&bob, "news").await;
    app.join(&carl, "news").await;
    let mut phone = app.ws(&bob).await;
    let mut sse = app.sse(&bob, None).await;
    assert_eq!(sse.event().await.event, "hello");

    let (s, b) =
        call(&app, reqwest::Method::PUT, &bob, "/api/v1/rooms/news/notify", Some(json!({"level": "mentions"}))).await;
    assert_eq!((s, b["notify"].as_str(), b["muted"].as_bool()), (200, Some("mentions"), Some(false)), "{b}");
    let e = phone.next_of("notify").await;
    assert_eq!((e["notify"].as_str(), e["muted"].as_bool()), (Some("mentions"), Some(false)));
    loop {
        let e = sse.event().await;
        if e.event == "notify" {
            assert_eq!(e.data["notify"], "mentions");
            break;
        }
    }

    say(&app, &owner, "news", "plain news").await;
    say(&app, &carl, "news", "@room listen to me").await; // not an admin: plain text
    say(&app, &owner, "news", "@room important").await;
    let view = |rooms: Value| rooms["rooms"].as_array().unwrap().iter().find(|r| r["name"] == "news").cloned().unwrap();
    let v = view(app.get(Some(&bob), "/api/v1/me/rooms").await.1);
    assert_eq!((v["notify"].as_str(), v["muted"].as_bool()), (Some("mentions"), Some(false)));
    assert_eq!((v["unread"].as_i64(), v["mentions"].as_i64()), (Some(0), Some(1)), "{v}");
    let h = history(&app, &bob, "news").await;
    let at_room = h.iter().find(|m| m["body"] == "@room important").unwrap();
    assert_eq!(at_room["mentions"].as_array().unwrap().len(), 2, "every member but the sender: {at_room}");
    assert!(h.iter().find(|m| m["body"] == "@room listen to me").unwrap().get("mentions").is_none());

    // WebSocket frame; TCP command; the hello of a new connection carries the settings.
    phone.send(json!({"type": "notify", "room": "news", "level": "all", "req": "n"})).await;
    let f = loop {
        let f = phone.next_of("notify").await;
        if f["req"] == "n" {
            break f;
        }
    };
    assert_eq!(f["notify"], "all");
    let v = view(app.get(Some(&bob), "/api/v1/me/rooms").await.1);
    assert_eq!(v["unread"], 3);
    let mut tcp = app.tcp("bob").await;
    tcp.send_bytes(b"/go news\n").await;
    tcp.until("* Current room: #news").await;
    tcp.send_bytes(b"/notify mute\n").await;
    tcp.until("* #news: notifications all, muted").await;
    let mut laptop = app.ws_raw(&format!("/ws?token={bob}")).await.unwrap();
    use futures_util::StreamExt;
    let hello: Value = match laptop.next().await.unwrap().unwrap() {
        tokio_tungstenite::tungstenite::Message::Text(t) => serde_json::from_str(t.as_str()).unwrap(),
        other => panic!("{other:?}"),
    };
    let v = hello["rooms"].as_array().unwrap().iter().find(|r| r["name"] == "news").cloned().unwrap();
    assert_eq!((v["notify"].as_str(), v["muted"].as_bool(), v["unread"].as_i64()), (Some("all"), Some(true), Some(0)));
    let (s, e) =
        call(&app, reqwest::Method::PUT, &bob, "/api/v1/rooms/news/notify", Some(json!({"level": "loud"}))).await;
    assert_eq!((s, e["error"]["code"].as_str()), (400, Some("bad_request")));
}

#[tokio::test]
async fn followed_threads_count_unread_replies() {
    let app = spawn_app().await;
    let (a, b) = (app.user("anna").await, app.user("ben").await);
    app.room(&a, "desk", "public").await;
    app.join(&b, "desk").await;
    let root = say(&app, &a, "desk", "question").await;
    let (_, r) = send(&app, &b, "desk", json!({"body": "answer", "reply_to": root})).await;
    let r1 = r["seq"].as_i64().unwrap();
    send(&app, &b, "desk", json!({"body": "more", "reply_to": root})).await;
    let (s, t) = app.get(Some(&a), "/api/v1/me/threads").await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(t["threads"][0]["seq"], root);
    assert_eq!((t["threads"][0]["reply_count"].as_i64(), t["threads"][0]["unread"].as_i64()), (Some(2), Some(2)));
    let (s, rd) = app.post(Some(&a), &format!("/api/v1/rooms/desk/threads/{root}/read"), json!({"seq": r1})).await;
    assert_eq!((s, rd["seq"].as_i64()), (200, Some(r1)), "{rd}");
    let (_, t) = app.get(Some(&a), "/api/v1/me/threads").await;
    assert_eq!(t["threads"][0]["unread"], 1);
    let (_, t) = app.get(Some(&b), "/api/v1/me/threads").await;
    assert_eq!(t["threads"][0]["unread"], 0, "your own replies are read");
}

#[tokio::test]
async fn reactions_pins_and_replies_survive_a_restart_and_reach_a_resuming_client() {
    let app = spawn_app().await;
    let (a, b) = (app.user("amy").await, app.user("bobo").await);
    app.room(&a, "keep", "public").await;
    app.join(&b, "keep").await;
    let seq = say(&app, &a, "keep", "keep me").await;

    // Bobo is connected, then goes away at `seq`.
    let mut ws = app.ws(&b).await;
    ws.send(json!({"type": "ping", "req": "x"})).await;
    ws.next_of("pong").await;
    drop(ws);
    let (s, _) =
        call(&app, reqwest::Method::PUT, &a, &format!("/api/v1/rooms/keep/messages/{seq}/reactions/{THUMBS}"), None)
            .await;
    assert_eq!(s, 200);
    let (s, _) = app.post(Some(&a), "/api/v1/rooms/keep/pins", json!({"seq": seq})).await;
    assert_eq!(s, 204);
    let (_, r) = send(&app, &a, "keep", json!({"body": "a reply", "reply_to": seq})).await;
    let reply = r["seq"].as_i64().unwrap();
    let (s, _) =
        call(&app, reqwest::Method::PUT, &a, &format!("/api/v1/rooms/keep/messages/{reply}/reactions/{THUMBS}"), None)
            .await;
    assert_eq!(s, 200);

    // The SQLite file store, server restarted.
    let dir = app.stop().await;
    let app = spawn_in(dir, &[]).await;
    let h = history(&app, &b, "keep").await;
    assert_eq!(find(&h, seq)["reactions"][0]["count"], 1);
    assert_eq!(find(&h, seq)["reply_count"], 1);
    assert_eq!(find(&h, reply)["quote"]["excerpt"], "keep me");
    let (_, p) = app.get(Some(&b), "/api/v1/rooms/keep/pins").await;
    assert_eq!(p["pins"][0]["message"]["seq"], seq);

    // Resume after `seq`: the pin replays as its system message, the reply with its quote and reactions.
    let mut ws = app.ws_resuming(&b).await;
    let room_id = find(&h, seq)["room"].as_i64().unwrap();
    ws.send(json!({"type": "resume", "rooms": [{"room": room_id, "after": seq}]})).await;
    let (mut got, mut reacted) = (Vec::new(), Vec::new());
    loop {
        let f = ws.next_json().await;
        match f["type"].as_str() {
            Some("message") => got.push(f["message"].clone()),
            Some("reactions") => reacted.push(f),
            Some("recovered") => break,
            _ => {}
        }
    }
    // The reaction on a message it already had comes as a `reactions` event, before `recovered`.
    assert_eq!(reacted.len(), 1, "{reacted:?}");
    assert_eq!((reacted[0]["seq"].as_i64(), reacted[0]["reactions"][0]["count"].as_i64()), (Some(seq), Some(1)));
    assert_eq!(got[0]["kind"], "pin");
    assert_eq!(got[0]["body"], seq.to_string());
    let m = got.iter().find(|m| m["seq"] == reply).unwrap();
    assert_eq!(m["quote"]["seq"], seq);
    assert_eq!(m["reactions"][0]["count"], 1);
}
