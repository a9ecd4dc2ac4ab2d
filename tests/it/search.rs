//! Search through the server: who finds what (table-driven over member / outsider / banned / left),
//! the same query on REST, WebSocket and TCP, snippets that stay text, edits and deletes.

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::harness::{DEADLINE, TestApp, spawn_app};

async fn send(app: &TestApp, token: &str, room: &str, body: &str) -> i64 {
    let (s, b) = app.post(Some(token), &format!("/api/v1/rooms/{room}/messages"), json!({ "body": body })).await;
    assert_eq!(s, 201, "send: {b}");
    b["seq"].as_i64().unwrap()
}

async fn search(app: &TestApp, token: &str, q: &str) -> (u16, Value) {
    let q: String = q.bytes().map(|b| format!("%{b:02X}")).collect();
    app.get(Some(token), &format!("/api/v1/search?q={q}")).await
}

fn hits(v: &Value) -> Vec<(i64, i64)> {
    v["hits"].as_array().unwrap().iter().map(|h| (h["room"].as_i64().unwrap(), h["seq"].as_i64().unwrap())).collect()
}

#[tokio::test]
async fn search_hits_follow_membership_at_query_time() {
    let app = spawn_app().await;
    let owner = app.user("owner").await;
    let public = app.room(&owner, "town", "public").await;
    let private = app.room(&owner, "attic", "private").await;
    let mut tokens = Vec::new();
    for name in ["member", "outsider", "banned", "leaver"] {
        let t = app.user(name).await;
        if name != "outsider" {
            app.join(&t, "town").await;
            let (s, _) = app.post(Some(&owner), "/api/v1/rooms/attic/invites", json!({ "username": name })).await;
            assert_eq!(s, 204);
            let (s, b) = app.post(Some(&t), &format!("/api/v1/me/invites/{private}/accept"), json!({})).await;
            assert_eq!(s, 200, "{b}");
        }
        tokens.push((name, t));
    }
    let s1 = send(&app, &owner, "town", "the quarterly zebra report").await;
    let s2 = send(&app, &owner, "attic", "zebra secrets in the attic").await;
    for room in ["town", "attic"] {
        let (s, _) =
            app.post(Some(&owner), &format!("/api/v1/rooms/{room}/ban"), json!({ "username": "banned" })).await;
        assert_eq!(s, 204);
        let leaver = &tokens[3].1;
        let (s, b) = app.post(Some(leaver), &format!("/api/v1/rooms/{room}/leave"), json!({})).await;
        assert!(s == 200 || s == 204, "{s} {b}");
    }
    let both = vec![(private, s2), (public, s1)];
    for (name, token) in &tokens {
        let (s, b) = search(&app, token, "zebra").await;
        assert_eq!(s, 200, "{name}: {b}");
        let mut got = hits(&b);
        got.sort();
        let mut want = if *name == "member" { both.clone() } else { vec![] };
        want.sort();
        assert_eq!(got, want, "{name}");
    }
    // Naming a private room one is not in answers as if it did not exist.
    let (s, b) = search(&app, &tokens[1].1, "zebra in:attic").await;
    assert_eq!((s, b["error"]["code"].as_str()), (404, Some("room_not_found")), "{b}");
}

#[tokio::test]
async fn one_query_on_rest_websocket_and_tcp() {
    let app = spawn_app().await;
    let t = app.user("alice").await;
    app.room(&t, "lab", "public").await;
    let hostile = "<img src=x onerror=alert(1)> Kiwi pie";
    let seq = send(&app, &t, "lab", hostile).await;
    send(&app, &t, "lab", "no fruit here").await;

    let (s, b) = search(&app, &t, "kiw*").await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["hits"].as_array().unwrap().len(), 1, "{b}");
    let hit = &b["hits"][0];
    assert_eq!((hit["seq"].as_i64(), hit["room_name"].as_str()), (Some(seq), Some("lab")));
    assert_eq!(hit["snippet"], hostile, "the snippet is the text itself, no markup added or removed");
    let [a, e] =
        [hit["highlights"][0][0].as_u64().unwrap() as usize, hit["highlights"][0][1].as_u64().unwrap() as usize];
    assert_eq!(hostile.chars().skip(a).take(e - a).collect::<String>(), "Kiwi");
    assert!(b.get("next_cursor").is_none());

    let mut ws = app.ws(&t).await;
    ws.send(json!({ "type": "search", "q": "\"kiwi pie\"", "req": "s1" })).await;
    let f = ws.next_of("search_results").await;
    assert_eq!((f["req"].as_str(), f["hits"][0]["seq"].as_i64()), (Some("s1"), Some(seq)), "{f}");
    ws.send(json!({ "type": "search", "q": "has:kittens x", "req": "s2" })).await;
    let f = ws.next_of("error").await;
    assert_eq!((f["code"].as_str(), f["req"].as_str()), (Some("bad_request"), Some("s2")), "{f}");

    let (r, mut w) = TcpStream::connect(app.tcp_addr).await.unwrap().into_split();
    let mut lines = BufReader::new(r).lines();
    w.write_all(b"/login alice password-alice\n/search kiwi\n").await.unwrap();
    let line = tokio::time::timeout(DEADLINE, async {
        loop {
            let l = lines.next_line().await.unwrap().expect("open");
            if l.starts_with("* #lab") {
                return l;
            }
        }
    })
    .await
    .expect("a hit line in time");
    assert_eq!(line, format!("* #lab {seq} alice: <img src=x onerror=alert(1)> *Kiwi* pie"));
}

#[tokio::test]
async fn edits_deletes_and_pages_through_the_api() {
    let app = spawn_app().await;
    let t = app.user("bob").await;
    app.room(&t, "den", "public").await;
    let seq = send(&app, &t, "den", "walrus one").await;
    for i in 0..3 {
        send(&app, &t, "den", &format!("walrus more {i}")).await;
    }
    let (s, b) = app.get(Some(&t), "/api/v1/search?q=walrus&limit=3").await;
    assert_eq!(s, 200);
    assert_eq!(hits(&b).len(), 3);
    let cursor = b["next_cursor"].as_str().expect("a next page").to_owned();
    let (_, b2) = app.get(Some(&t), &format!("/api/v1/search?q=walrus&limit=3&cursor={cursor}")).await;
    assert_eq!(hits(&b2).len(), 1);
    assert!(b2.get("next_cursor").is_none());

    let resp = app
        .http
        .patch(app.url(&format!("/api/v1/rooms/den/messages/{seq}")))
        .bearer_auth(&t)
        .json(&json!({ "body": "narwhal one" }))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    assert_eq!(hits(&search(&app, &t, "narwhal").await.1).len(), 1, "an edit changes what matches");
    assert_eq!(hits(&search(&app, &t, "walrus").await.1).len(), 3);
    let resp =
        app.http.delete(app.url(&format!("/api/v1/rooms/den/messages/{seq}"))).bearer_auth(&t).send().await.unwrap();
    assert!(resp.status().is_success());
    assert!(hits(&search(&app, &t, "narwhal").await.1).is_empty(), "a deleted message never matches");
    let (s, b) = app.get(Some(&t), "/api/v1/search?q=").await;
    assert_eq!((s, b["error"]["code"].as_str()), (400, Some("bad_request")));
    let (s, _) = app.get(None, "/api/v1/search?q=walrus").await;
    assert_eq!(s, 401);
}
