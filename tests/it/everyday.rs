//! Issue 3: direct messages, presence, typing, read state, edits, moderation and recovery, over
//! WebSocket with two users and two connections each.

use serde_json::{Value, json};

use crate::harness::*;

/// Sends a frame with a `req` and returns the reply to it, skipping other frames.
async fn call(ws: &mut Ws, mut frame: Value) -> Value {
    let req = format!("r{}", rand_id());
    frame["req"] = json!(req);
    ws.send(frame).await;
    loop {
        let v = ws.next_json().await;
        if v["req"] == req.as_str() {
            return v;
        }
    }
}

fn rand_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

#[tokio::test]
async fn direct_messages_between_two_users_on_two_connections_each() {
    let app = spawn_app().await;
    let (a, b, c) = (app.user("ada").await, app.user("bea").await, app.user("cyd").await);
    let (mut a1, mut a2, mut b1, mut b2) = (app.ws(&a).await, app.ws(&a).await, app.ws(&b).await, app.ws(&b).await);

    let joined = call(&mut a1, json!({"type": "dm", "username": "BEA"})).await;
    assert_eq!((joined["type"].as_str(), joined["room"]["kind"].as_str()), (Some("joined"), Some("direct")));
    let dm = joined["room"]["id"].as_i64().unwrap();
    for ws in [&mut a2, &mut b1, &mut b2] {
        assert_eq!(ws.next_of("joined").await["room"]["id"], dm, "every connection of both follows it");
    }
    // Exactly one conversation per pair, whoever opens it.
    let (s, again) = app.post(Some(&b), "/api/v1/dms", json!({"username": "ada"})).await;
    assert_eq!((s, again["room"]["id"].as_i64()), (200, Some(dm)));
    assert_eq!(again["peer"]["username"], "ada");

    let ack = call(&mut a1, json!({"type": "send", "room": dm, "body": "psst @bea", "client_id": "d1"})).await;
    assert_eq!(ack["type"], "ack");
    for ws in [&mut a2, &mut b1, &mut b2] {
        let m = ws.next_text().await;
        assert_eq!((m["body"].as_str(), m["room"].as_i64()), (Some("psst @bea"), Some(dm)));
    }
    let (_, list) = app.get(Some(&b), "/api/v1/dms").await;
    let conv = &list["conversations"][0];
    assert_eq!(
        (conv["peer"]["username"].as_str(), conv["unread"].as_i64(), conv["mentions"].as_i64()),
        (Some("ada"), Some(1), Some(1))
    );
    assert_eq!(conv["last_message"]["body"], "psst @bea");

    // A third user can do nothing with it.
    let mut c1 = app.ws(&c).await;
    for frame in [
        json!({"type": "send", "room": dm, "body": "hi"}),
        json!({"type": "history", "room": dm}),
        json!({"type": "join", "room": dm}),
        json!({"type": "read", "room": dm, "seq": 1}),
    ] {
        let e = call(&mut c1, frame.clone()).await;
        assert_eq!(e["code"], "room_not_found", "{frame}");
    }
    let (s, _) = app.get(Some(&c), &format!("/api/v1/rooms/{dm}/messages")).await;
    assert_eq!(s, 404);
    let (s, e) = app.post(Some(&a), "/api/v1/dms", json!({"username": "ada"})).await;
    assert_eq!((s, e["error"]["code"].as_str()), (400, Some("bad_request")), "no conversation with oneself");
}

#[tokio::test]
async fn presence_follows_the_last_connection_and_typing_is_forwarded_once() {
    let app = spawn_app().await;
    let (a, b) = (app.user("pia").await, app.user("quin").await);
    let room = app.room(&a, "hall", "public").await;
    app.join(&b, "hall").await;
    let (mut a1, mut a2) = (app.ws(&a).await, app.ws(&a).await);
    let online = |v: &Value, name: &str| {
        v["members"].as_array().unwrap().iter().find(|m| m["username"] == name).unwrap()["online"].clone()
    };
    let (_, m) = app.get(Some(&a), "/api/v1/rooms/hall/members").await;
    assert_eq!((online(&m, "pia"), online(&m, "quin")), (json!(true), json!(false)));

    let b1 = app.ws(&b).await;
    for ws in [&mut a1, &mut a2] {
        let p = ws.next_of("presence").await;
        assert_eq!((p["user"]["username"].as_str(), p["online"].as_bool()), (Some("quin"), Some(true)));
    }
    let mut b2 = app.ws(&b).await;
    drop(b1);
    // Closing one of two tabs changes nothing; prove it by a round trip after the close.
    let (_, m) = app.get(Some(&a), "/api/v1/rooms/hall/members").await;
    assert_eq!(online(&m, "quin"), json!(true));

    // Typing: forwarded to others, not to the typist's own connections, once per interval.
    b2.send(json!({"type": "typing", "room": room})).await;
    b2.send(json!({"type": "typing", "room": room})).await;
    b2.send(json!({"type": "send", "room": room, "body": "done typing"})).await;
    let t = a1.next_of("typing").await;
    assert_eq!((t["room"].as_i64(), t["user"]["username"].as_str()), (Some(room), Some("quin")));
    assert!(t["expires_ms"].as_u64().unwrap() > 0);
    let next = a1.next_json().await;
    assert_eq!(
        (next["type"].as_str(), next["message"]["body"].as_str()),
        (Some("message"), Some("done typing")),
        "the second typing was dropped"
    );
    let own = b2.next_json().await;
    assert_eq!(own["type"], "message", "no typing echo to the typist");

    drop(b2);
    for ws in [&mut a1, &mut a2] {
        let p = ws.next_of("presence").await;
        assert_eq!((p["user"]["username"].as_str(), p["online"].as_bool()), (Some("quin"), Some(false)));
    }
}

#[tokio::test]
async fn read_state_syncs_across_devices_and_mentions_are_counted() {
    let app = spawn_app().await;
    let (a, b) = (app.user("rita").await, app.user("sam").await);
    let room = app.room(&a, "desk", "public").await;
    app.join(&b, "desk").await;
    let (mut a1, mut a2) = (app.ws(&a).await, app.ws(&a).await);
    let (mut b1, mut b2) = (app.ws(&b).await, app.ws(&b).await);
    for body in ["one", "two @sam", "three @SAM and @rita", "four"] {
        call(&mut a1, json!({"type": "send", "room": room, "body": body})).await;
    }
    let mut last = 0;
    for _ in 0..4 {
        let m = b1.next_text().await;
        if m["body"] == "two @sam" {
            assert!(m["mentions"].as_array().unwrap().contains(&json!(2)), "sam (id 2) is mentioned: {m}");
        }
        last = m["seq"].as_i64().unwrap();
    }
    let view = |v: &Value| v["rooms"].as_array().unwrap().iter().find(|r| r["id"] == room).unwrap().clone();
    let (_, mine) = app.get(Some(&b), "/api/v1/me/rooms").await;
    assert_eq!((view(&mine)["unread"].as_i64(), view(&mine)["mentions"].as_i64()), (Some(4), Some(2)));

    call(&mut a2, json!({"type": "read", "room": room, "seq": last})).await;
    assert_eq!(a1.next_of("read").await["seq"], last, "rita's other connection learns her position");
    let r = call(&mut b1, json!({"type": "read", "room": room, "seq": last - 1})).await;
    assert_eq!((r["type"].as_str(), r["seq"].as_i64()), (Some("read"), Some(last - 1)));
    let synced = b2.next_of("read").await;
    assert_eq!(
        (synced["room"].as_i64(), synced["seq"].as_i64()),
        (Some(room), Some(last - 1)),
        "the other device learns it"
    );
    let (_, mine) = app.get(Some(&b), "/api/v1/me/rooms").await;
    assert_eq!(
        (view(&mine)["unread"].as_i64(), view(&mine)["mentions"].as_i64(), view(&mine)["last_read"].as_i64()),
        (Some(1), Some(0), Some(last - 1))
    );
}

#[tokio::test]
async fn authors_edit_and_delete_moderators_delete_and_history_keeps_tombstones() {
    let app = spawn_app().await;
    let (a, b) = (app.user("tom").await, app.user("uma").await);
    let room = app.room(&a, "edits", "public").await;
    app.join(&b, "edits").await;
    let (mut a1, mut b1) = (app.ws(&a).await, app.ws(&b).await);
    let (mut a2, mut b2) = (app.ws(&a).await, app.ws(&b).await);
    let mine = call(&mut b1, json!({"type": "send", "room": room, "body": "tpyo"})).await["seq"].as_i64().unwrap();
    let theirs = call(&mut a1, json!({"type": "send", "room": room, "body": "owner's"})).await["seq"].as_i64().unwrap();

    let e = call(&mut b1, json!({"type": "edit", "room": room, "seq": theirs, "body": "hijack"})).await;
    assert_eq!(e["code"], "forbidden");
    let e = call(&mut b1, json!({"type": "delete", "room": room, "seq": theirs})).await;
    assert_eq!(e["code"], "forbidden", "members delete only their own");
    let ok = call(&mut b1, json!({"type": "edit", "room": room, "seq": mine, "body": "typo"})).await;
    assert_eq!((ok["type"].as_str(), ok["message"]["body"].as_str()), (Some("message_updated"), Some("typo")));
    // Every other connection gets the broadcast, the author's other device included; the acting
    // connection got its reply and no second copy (issue 11 item 19).
    for ws in [&mut a1, &mut a2, &mut b2] {
        let live = ws.next_of("message_updated").await;
        assert_eq!((live["message"]["seq"].as_i64(), live["message"]["body"].as_str()), (Some(mine), Some("typo")));
        assert!(live["message"]["edited_at"].as_i64().is_some());
    }
    b1.send(json!({"type": "ping", "req": "p"})).await;
    loop {
        let v = b1.next_json().await;
        assert_ne!(v["type"], "message_updated", "no broadcast copy for the acting connection: {v}");
        if v["type"] == "pong" {
            break;
        }
    }

    // The owner removes uma's message; everyone sees the tombstone.
    let del = call(&mut a1, json!({"type": "delete", "room": room, "seq": mine})).await;
    assert_eq!(del["message"]["deleted"], true);
    for ws in [&mut b1, &mut b2, &mut a2] {
        let live = ws.next_of("message_updated").await;
        assert_eq!((live["message"]["deleted"].as_bool(), live["message"]["body"].as_str()), (Some(true), Some("")));
    }
    let e = call(&mut a1, json!({"type": "edit", "room": room, "seq": mine, "body": "back"})).await;
    assert_eq!(e["code"], "message_not_found");
    let (_, h) = app.get(Some(&b), "/api/v1/rooms/edits/messages").await;
    let tomb = h["messages"].as_array().unwrap().iter().find(|m| m["seq"] == mine).unwrap().clone();
    assert_eq!((tomb["deleted"].as_bool(), tomb["body"].as_str()), (Some(true), Some("")));
    // REST does the same.
    let resp = app
        .http
        .delete(app.url(&format!("/api/v1/rooms/edits/messages/{theirs}")))
        .bearer_auth(&a)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
}

#[tokio::test]
async fn roles_and_moderation_are_system_messages_and_bans_hold() {
    let app = spawn_app().await;
    let (o, m, x) = (app.user("olive").await, app.user("mike").await, app.user("xena").await);
    let room = app.room(&o, "club", "public").await;
    app.join(&m, "club").await;
    app.join(&x, "club").await;
    let (mut o1, mut m1, mut x1) = (app.ws(&o).await, app.ws(&m).await, app.ws(&x).await);
    let (mut o2, mut x2) = (app.ws(&o).await, app.ws(&x).await);

    let e = call(&mut m1, json!({"type": "kick", "room": room, "username": "xena"})).await;
    assert_eq!(e["code"], "forbidden", "members do not moderate");
    assert_eq!(
        call(&mut o1, json!({"type": "set_role", "room": room, "username": "mike", "role": "admin"})).await["type"],
        "ok"
    );
    let e = call(&mut m1, json!({"type": "kick", "room": room, "username": "olive"})).await;
    assert_eq!(e["code"], "forbidden", "admins cannot act on the owner");
    let r = call(&mut m1, json!({"type": "rename", "room": room, "name": "club2"})).await;
    assert_eq!((r["type"].as_str(), r["room"]["name"].as_str()), (Some("room_updated"), Some("club2")));
    assert_eq!(
        call(&mut m1, json!({"type": "topic", "room": room, "topic": "be nice"})).await["room"]["topic"],
        "be nice"
    );
    assert_eq!(call(&mut m1, json!({"type": "kick", "room": room, "username": "xena"})).await["type"], "ok");
    for ws in [&mut x1, &mut x2] {
        assert_eq!(ws.next_of("left").await["room"], room, "the kicked user's connections stop following");
    }
    loop {
        let m = o2.next_of("message").await;
        if m["message"]["kind"] == "kick" {
            assert_eq!(
                (m["message"]["sender"]["username"].as_str(), m["message"]["target"]["username"].as_str()),
                (Some("mike"), Some("xena"))
            );
            break;
        }
    }
    // Kicked from a public room: may rejoin; banned: may not, nor read.
    assert_eq!(call(&mut x1, json!({"type": "join", "room": room})).await["type"], "joined");
    assert_eq!(call(&mut o1, json!({"type": "ban", "room": room, "username": "xena"})).await["type"], "ok");
    for frame in [
        json!({"type": "join", "room": room}),
        json!({"type": "history", "room": room}),
        json!({"type": "send", "room": room, "body": "x"}),
    ] {
        let e = call(&mut x1, frame.clone()).await;
        assert!(e["code"] == "banned" || e["code"] == "not_a_member", "{frame} -> {e}");
    }
    let (s, e) = app.get(Some(&x), &format!("/api/v1/rooms/{room}/messages")).await;
    assert_eq!((s, e["error"]["code"].as_str()), (403, Some("banned")));
    assert_eq!(call(&mut o1, json!({"type": "unban", "room": room, "username": "xena"})).await["type"], "ok");
    assert_eq!(call(&mut x1, json!({"type": "join", "room": room})).await["type"], "joined");

    let (_, h) = app.get(Some(&o), &format!("/api/v1/rooms/{room}/messages")).await;
    let lines: Vec<String> = h["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}:{}",
                m["kind"].as_str().unwrap(),
                m["target"]["username"].as_str().unwrap_or(m["body"].as_str().unwrap())
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            "create:",
            "join:",
            "join:",
            "role:mike",
            "rename:club2",
            "topic:be nice",
            "kick:xena",
            "join:",
            "ban:xena",
            "unban:xena",
            "join:"
        ]
    );
}

#[tokio::test]
async fn outsiders_kicked_and_banned_users_are_refused_everywhere() {
    let app = spawn_app().await;
    let owner = app.user("vera").await;
    let (outsider, kicked, banned) = (app.user("walt").await, app.user("kyle").await, app.user("bart").await);
    let private = app.room(&owner, "vault", "private").await;
    for who in ["kyle", "bart"] {
        let (s, _) = app.post(Some(&owner), "/api/v1/rooms/vault/invites", json!({"username": who})).await;
        assert_eq!(s, 204);
    }
    app.join(&kicked, "vault").await;
    app.join(&banned, "vault").await;
    let (s, _) = app.post(Some(&owner), "/api/v1/rooms/vault/kick", json!({"username": "kyle"})).await;
    assert_eq!(s, 204);
    let (s, _) = app.post(Some(&owner), "/api/v1/rooms/vault/ban", json!({"username": "bart"})).await;
    assert_eq!(s, 204);
    let (s, dm) = app.post(Some(&owner), "/api/v1/dms", json!({"username": "kyle"})).await;
    assert_eq!(s, 200);
    let dm = dm["room"]["id"].as_i64().unwrap();

    // For a private room and a direct conversation, everyone not in it gets `room_not_found`.
    for (who, token) in [("outsider", &outsider), ("kicked", &kicked), ("banned", &banned)] {
        for room in [private, dm] {
            if who == "kicked" && room == dm {
                continue; // kyle is in that conversation
            }
            let rest: Vec<(&str, String, Value)> = vec![
                ("GET", format!("/api/v1/rooms/{room}"), Value::Null),
                ("GET", format!("/api/v1/rooms/{room}/members"), Value::Null),
                ("GET", format!("/api/v1/rooms/{room}/messages"), Value::Null),
                ("GET", format!("/api/v1/rooms/{room}/typing"), Value::Null),
                ("POST", format!("/api/v1/rooms/{room}/messages"), json!({"body": "hi"})),
                ("POST", format!("/api/v1/rooms/{room}/join"), json!({})),
                ("POST", format!("/api/v1/rooms/{room}/leave"), json!({})),
                ("POST", format!("/api/v1/rooms/{room}/invites"), json!({"username": "walt"})),
                ("POST", format!("/api/v1/rooms/{room}/read"), json!({"seq": 1})),
                ("POST", format!("/api/v1/rooms/{room}/typing"), json!({})),
                ("POST", format!("/api/v1/rooms/{room}/kick"), json!({"username": "vera"})),
                ("POST", format!("/api/v1/rooms/{room}/ban"), json!({"username": "vera"})),
                ("POST", format!("/api/v1/rooms/{room}/unban"), json!({"username": "vera"})),
                ("POST", format!("/api/v1/rooms/{room}/roles"), json!({"username": "vera", "role": "admin"})),
                ("PATCH", format!("/api/v1/rooms/{room}"), json!({"topic": "mine now"})),
                ("PATCH", format!("/api/v1/rooms/{room}/messages/1"), json!({"body": "x"})),
                ("DELETE", format!("/api/v1/rooms/{room}/messages/1"), Value::Null),
            ];
            for (method, path, body) in rest {
                let mut req = app.http.request(method.parse().unwrap(), app.url(&path)).bearer_auth(token);
                if !body.is_null() {
                    req = req.json(&body);
                }
                let resp = req.send().await.unwrap();
                let status = resp.status().as_u16();
                let b: Value = resp.json().await.unwrap_or(Value::Null);
                assert_eq!(
                    (status, b["error"]["code"].as_str()),
                    (404, Some("room_not_found")),
                    "{who}: {method} {path}"
                );
            }
            let mut ws = app.ws(token).await;
            for frame in [
                json!({"type": "send", "room": room, "body": "hi"}),
                json!({"type": "history", "room": room}),
                json!({"type": "join", "room": room}),
                json!({"type": "leave", "room": room}),
                json!({"type": "typing", "room": room}),
                json!({"type": "read", "room": room, "seq": 1}),
                json!({"type": "edit", "room": room, "seq": 1, "body": "x"}),
                json!({"type": "delete", "room": room, "seq": 1}),
                json!({"type": "invite", "room": room, "username": "walt"}),
                json!({"type": "kick", "room": room, "username": "vera"}),
                json!({"type": "ban", "room": room, "username": "vera"}),
                json!({"type": "unban", "room": room, "username": "vera"}),
                json!({"type": "set_role", "room": room, "username": "vera", "role": "admin"}),
                json!({"type": "rename", "room": room, "name": "mine"}),
                json!({"type": "topic", "room": room, "topic": "mine"}),
                json!({"type": "resume", "rooms": [{"room": room, "after": 0}]}),
            ] {
                let e = call(&mut ws, frame.clone()).await;
                assert_eq!(
                    (e["type"].as_str(), e["code"].as_str()),
                    (Some("error"), Some("room_not_found")),
                    "{who}: {frame}"
                );
            }
        }
    }
}

#[tokio::test]
async fn a_client_that_reconnects_recovers_exactly_the_full_sequence() {
    const TOTAL: i64 = 1000;
    let app = spawn_app().await;
    let (a, b) = (app.user("yuri").await, app.user("zoe").await);
    let room = app.room(&a, "stream", "public").await;
    app.join(&b, "stream").await;
    let base = app.get(Some(&b), "/api/v1/rooms/stream").await.1["last_seq"].as_i64().unwrap();

    // zoe follows from the start. The sender runs throughout, in windows of 50 (reading its acks so its
    // own socket never backs up): a third of the messages before zoe drops, the rest while she is away
    // and while she reconnects.
    let mut zoe = app.ws(&b).await;
    let mut sender = app.ws(&a).await;
    let (before_tx, before_rx) = tokio::sync::oneshot::channel();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let send_task = tokio::spawn(async move {
        let mut go = Some(go_rx);
        let mut before_tx = Some(before_tx);
        for window in 0..TOTAL / 50 {
            if window * 50 == TOTAL / 3 / 50 * 50 && before_tx.is_some() {
                before_tx.take().unwrap().send(()).unwrap();
                go.take().unwrap().await.unwrap();
            }
            for i in window * 50..window * 50 + 50 {
                sender
                    .send(json!({"type": "send", "room": room, "body": format!("n{i}"), "client_id": format!("n{i}")}))
                    .await;
            }
            let mut acks = 0;
            while acks < 50 {
                if sender.next_json().await["type"] == "ack" {
                    acks += 1;
                }
            }
        }
    });

    let mut got: Vec<i64> = Vec::new();
    before_rx.await.unwrap();
    // Read some, then drop the connection mid-stream.
    while got.len() < 50 {
        got.push(zoe.next_text().await["seq"].as_i64().unwrap());
    }
    drop(zoe);
    go_tx.send(()).unwrap();
    let mut zoe = app.ws_resuming(&b).await;
    let last = *got.last().unwrap();
    zoe.send(json!({"type": "resume", "rooms": [{"room": room, "after": last}], "req": "back"})).await;
    let mut recovered = false;
    while got.len() < TOTAL as usize {
        let v = zoe.next_json().await;
        match v["type"].as_str() {
            Some("message") if v["message"]["kind"] == "text" => got.push(v["message"]["seq"].as_i64().unwrap()),
            Some("recovered") => {
                assert_eq!(v["req"], "back");
                recovered = true;
            }
            _ => {}
        }
    }
    send_task.await.unwrap();
    assert_eq!(got, (base + 1..=base + TOTAL).collect::<Vec<_>>(), "every message once, in order");
    if !recovered {
        assert_eq!(zoe.next_of("recovered").await["room"], room);
    }
}

#[tokio::test]
async fn a_socket_opened_to_resume_gets_no_live_message_before_its_resume() {
    let app = spawn_app().await;
    let (a, b) = (app.user("uma").await, app.user("vic").await);
    let room = app.room(&a, "held", "public").await;
    app.join(&b, "held").await;
    let base = app.get(Some(&b), "/api/v1/rooms/held").await.1["last_seq"].as_i64().unwrap();

    // vic reconnects; five messages are stored and fanned out before his resume frame is read.
    let mut vic = app.ws_resuming(&b).await;
    let mut sender = app.ws(&a).await;
    for i in 0..5 {
        sender.send(json!({"type": "send", "room": room, "body": format!("m{i}")})).await;
        sender.next_of("ack").await;
    }
    vic.send(json!({"type": "resume", "rooms": [{"room": room, "after": base}], "req": "r"})).await;
    let mut got = Vec::new();
    loop {
        let v = vic.next_json().await;
        match v["type"].as_str() {
            Some("message") => got.push(v["message"]["seq"].as_i64().unwrap()),
            Some("recovered") => break assert_eq!(v["seq"].as_i64(), Some(base + 5)),
            _ => {}
        }
    }
    assert_eq!(got, (base + 1..=base + 5).collect::<Vec<_>>(), "stored messages first, once each");
    // The held live copies are dropped; the next message arrives live, once.
    sender.send(json!({"type": "send", "room": room, "body": "after"})).await;
    assert_eq!(vic.next_text().await["seq"].as_i64(), Some(base + 6));
}

#[tokio::test]
async fn a_new_display_name_reaches_live_connections_and_their_later_messages() {
    let app = spawn_app().await;
    let (a, b) = (app.user("dina").await, app.user("eli").await);
    let room = app.room(&a, "names", "public").await;
    app.join(&b, "names").await;
    let (mut a1, mut b1) = (app.ws(&a).await, app.ws(&b).await);
    let resp = app
        .http
        .patch(app.url("/api/v1/me"))
        .bearer_auth(&a)
        .json(&json!({"display_name": "Dina D."}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    for ws in [&mut a1, &mut b1] {
        let u = ws.next_of("user_updated").await;
        assert_eq!(
            (u["user"]["username"].as_str(), u["user"]["display_name"].as_str()),
            (Some("dina"), Some("Dina D."))
        );
    }
    call(&mut a1, json!({"type": "send", "room": room, "body": "renamed"})).await;
    assert_eq!(b1.next_text().await["sender"]["display_name"], "Dina D.", "sent on the same socket, with the new name");
}
