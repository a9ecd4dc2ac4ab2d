use std::collections::HashMap;

use serde_json::{Value, json};

use crate::harness::*;

#[tokio::test]
async fn two_users_chat_and_a_latecomer_reads_the_history_with_system_messages() {
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let room = app.room(&alice, "lounge", "public").await;
    let mut wa = app.ws(&alice).await;
    let mut wb = app.ws(&bob).await;

    wb.send(json!({"type": "join", "room": "lounge", "req": "j1"})).await;
    let joined = wb.next_of("joined").await;
    assert_eq!(joined["room"]["id"], room);
    let sys = wa.next_of("message").await;
    assert_eq!(
        (sys["message"]["kind"].as_str(), sys["message"]["sender"]["username"].as_str()),
        (Some("join"), Some("bob"))
    );

    wa.send(json!({"type": "send", "room": room, "body": "hi bob", "client_id": "a1"})).await;
    let ack = wa.next_of("ack").await;
    assert_eq!((ack["client_id"].as_str(), ack["duplicate"].as_bool()), (Some("a1"), Some(false)));
    let m = wb.next_text().await;
    assert_eq!((m["body"].as_str(), m["seq"].as_i64()), (Some("hi bob"), ack["seq"].as_i64()));
    assert_eq!(m["sender"]["username"], "alice");

    wb.send(json!({"type": "send", "room": "lounge", "body": "hi alice"})).await;
    assert_eq!(wa.next_text().await["body"], "hi alice");
    wb.send(json!({"type": "leave", "room": room, "req": "l1"})).await;
    assert_eq!(wb.next_of("left").await["room"], room);
    let sys = wa.next_of("message").await;
    assert_eq!(sys["message"]["kind"], "leave");

    let carol = app.user("carol").await;
    app.join(&carol, "lounge").await;
    let (_, page) = app.get(Some(&carol), "/api/v1/rooms/lounge/messages").await;
    let got: Vec<(i64, String, String)> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["seq"].as_i64().unwrap(),
                m["kind"].as_str().unwrap().to_owned(),
                m["sender"]["username"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want: Vec<(i64, String, String)> =
        [("create", "alice"), ("join", "bob"), ("text", "alice"), ("text", "bob"), ("leave", "bob"), ("join", "carol")]
            .iter()
            .enumerate()
            .map(|(i, (k, u))| (i as i64 + 1, k.to_string(), u.to_string()))
            .collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn rest_sends_are_validated_and_acknowledged() {
    let app = spawn_app_with(&["--max-message-bytes", "100"]).await;
    let a = app.user("amy").await;
    let b = app.user("bert").await;
    app.room(&a, "news", "public").await;
    let (s, ack) = app.post(Some(&a), "/api/v1/rooms/news/messages", json!({"body": "hello"})).await;
    assert_eq!(s, 201, "{ack}");
    assert_eq!((ack["seq"].as_i64(), ack["duplicate"].as_bool()), (Some(2), Some(false)));
    let cases = [
        (json!({"body": ""}), 400, "empty_message"),
        (json!({"body": "   "}), 400, "empty_message"),
        (json!({"body": "x".repeat(101)}), 400, "message_too_large"),
        (json!({"nobody": 1}), 400, "bad_request"),
    ];
    for (body, status, code) in cases {
        let (s, e) = app.post(Some(&a), "/api/v1/rooms/news/messages", body.clone()).await;
        assert_eq!((s, e["error"]["code"].as_str()), (status, Some(code)), "{body}");
    }
    let (s, e) = app.post(Some(&b), "/api/v1/rooms/news/messages", json!({"body": "not yet a member"})).await;
    assert_eq!((s, e["error"]["code"].as_str()), (403, Some("not_a_member")));
    let resp = app
        .http
        .post(app.url("/api/v1/rooms/news/messages"))
        .bearer_auth(&a)
        .json(&json!({"body": "x".repeat(2_000_000)}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let (s, e) = app.get(Some(&a), "/api/v1/rooms/news/messages?limit=500").await;
    assert_eq!((s, e["error"]["code"].as_str()), (400, Some("bad_request")));
    let (s, e) = app.get(Some(&a), "/api/v1/rooms/news/messages?before=abc").await;
    assert_eq!((s, e["error"]["code"].as_str()), (400, Some("bad_request")));
}

#[tokio::test]
async fn a_repeated_client_id_stores_one_message_and_acks_twice_alike() {
    let app = spawn_app().await;
    let a = app.user("dora").await;
    let room = app.room(&a, "dups", "public").await;
    let mut ws = app.ws(&a).await;
    ws.send(json!({"type": "send", "room": room, "body": "once", "client_id": "same-id"})).await;
    let first = ws.next_of("ack").await;
    ws.send(json!({"type": "send", "room": room, "body": "once", "client_id": "same-id"})).await;
    let second = ws.next_of("ack").await;
    let strip = |mut v: Value| {
        v.as_object_mut().unwrap().remove("duplicate");
        v
    };
    assert_eq!(strip(first.clone()), strip(second.clone()), "same seq, ts and client_id");
    assert_eq!((first["duplicate"].as_bool(), second["duplicate"].as_bool()), (Some(false), Some(true)));
    let (s, rest) =
        app.post(Some(&a), "/api/v1/rooms/dups/messages", json!({"body": "once", "client_id": "same-id"})).await;
    assert_eq!((s, rest["seq"].clone()), (201, first["seq"].clone()), "REST sees the same ack");
    let (_, page) = app.get(Some(&a), "/api/v1/rooms/dups/messages").await;
    assert_eq!(page["messages"].as_array().unwrap().iter().filter(|m| m["kind"] == "text").count(), 1);
}

#[tokio::test]
async fn twenty_concurrent_senders_every_receiver_sees_the_same_gapless_order() {
    const SENDERS: usize = 20;
    const EACH: usize = 25;
    let app = spawn_app().await;
    let owner = app.user("owner").await;
    let room = app.room(&owner, "busy", "public").await;
    let mut tokens = Vec::new();
    for i in 0..SENDERS {
        let t = app.user(&format!("sender{i}")).await;
        app.join(&t, "busy").await;
        tokens.push(t);
    }
    // Receivers: the owner and three of the senders (who also send).
    let mut receivers = vec![app.ws(&owner).await];
    for t in &tokens[..3] {
        receivers.push(app.ws(t).await);
    }
    let start_seq = app.get(Some(&owner), "/api/v1/rooms/busy").await.1["last_seq"].as_i64().unwrap();

    let mut tasks = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        let mut ws = app.ws(t).await;
        tasks.push(tokio::spawn(async move {
            for n in 0..EACH {
                ws.send(
                    json!({"type": "send", "room": room, "body": format!("{i}:{n}"), "client_id": format!("c{n}")}),
                )
                .await;
            }
            let mut acked = 0;
            while acked < EACH {
                if ws.next_json().await["type"] == "ack" {
                    acked += 1;
                }
            }
        }));
    }
    let total = SENDERS * EACH;
    let mut views = Vec::new();
    for mut r in receivers {
        views.push(tokio::spawn(async move {
            let mut got = Vec::with_capacity(total);
            while got.len() < total {
                let m = r.next_text().await;
                got.push((m["seq"].as_i64().unwrap(), m["body"].as_str().unwrap().to_owned()));
            }
            got
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut first: Option<Vec<(i64, String)>> = None;
    for v in views {
        let got = v.await.unwrap();
        let seqs: Vec<i64> = got.iter().map(|(s, _)| *s).collect();
        assert_eq!(
            seqs,
            (start_seq + 1..=start_seq + total as i64).collect::<Vec<_>>(),
            "gapless, strictly increasing"
        );
        // Each sender's own messages stay in the order it sent them.
        let mut last: HashMap<&str, usize> = HashMap::new();
        for (_, body) in &got {
            let (who, n) = body.split_once(':').unwrap();
            let n: usize = n.parse().unwrap();
            if let Some(prev) = last.insert(who, n) {
                assert!(n > prev, "sender {who} reordered");
            }
        }
        match &first {
            None => first = Some(got),
            Some(f) => assert_eq!(f, &got, "every receiver sees the same order"),
        }
    }
}

#[tokio::test]
async fn history_pages_by_sequence() {
    let app = spawn_app().await;
    let a = app.user("hank").await;
    app.room(&a, "log", "public").await; // seq 1 is the create message
    for i in 2..=60 {
        let (s, _) = app.post(Some(&a), "/api/v1/rooms/log/messages", json!({"body": format!("m{i}")})).await;
        assert_eq!(s, 201);
    }
    let seqs =
        |v: &Value| v["messages"].as_array().unwrap().iter().map(|m| m["seq"].as_i64().unwrap()).collect::<Vec<_>>();
    let (_, latest) = app.get(Some(&a), "/api/v1/rooms/log/messages").await;
    assert_eq!(seqs(&latest), (11..=60).collect::<Vec<_>>(), "default page: newest 50, ascending");
    assert_eq!(latest["has_more"], true);
    let (_, older) = app.get(Some(&a), "/api/v1/rooms/log/messages?before=11&limit=20").await;
    assert_eq!(seqs(&older), (1..=10).collect::<Vec<_>>());
    assert_eq!(older["has_more"], false);
    let (_, newer) = app.get(Some(&a), "/api/v1/rooms/log/messages?after=55").await;
    assert_eq!(seqs(&newer), (56..=60).collect::<Vec<_>>());
    assert_eq!(newer["has_more"], false);
}
