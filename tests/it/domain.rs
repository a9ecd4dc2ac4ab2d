//! Issue 11, domain and API correctness: typing in private rooms, ownership, `last_seq` after room
//! updates, mentions on edit, the direct-conversation namespace, invitations, JSON refusals, display
//! names and the smaller rules. Each over every transport the rule concerns.

use serde_json::{Value, json};

use crate::harness::*;

fn code(b: &Value) -> Option<&str> {
    b["error"]["code"].as_str()
}

async fn patch(app: &TestApp, token: &str, path: &str, body: Value) -> (u16, Value) {
    let resp = app.http.patch(app.url(path)).bearer_auth(token).json(&body).send().await.unwrap();
    let s = resp.status().as_u16();
    (s, resp.json().await.unwrap_or(Value::Null))
}

// ---- item 2: typing ---------------------------------------------------------------------------

#[tokio::test]
async fn typing_in_a_private_room_answers_an_outsider_as_a_missing_room_every_time() {
    let app = spawn_app().await;
    let owner = app.user("tina").await;
    let outsider = app.user("tom").await;
    let id = app.room(&owner, "hush", "private").await;
    app.room(&owner, "open", "public").await;
    app.user("tina2").await;
    let (s, dm) = app.post(Some(&owner), "/api/v1/dms", json!({"username": "tina2"})).await;
    assert_eq!(s, 200, "{dm}");
    let dm_id = dm["room"]["id"].as_i64().unwrap();

    // REST: the same answer as a room that does not exist, however often (the rate limit window is 2 s).
    for room in ["hush".to_owned(), id.to_string(), dm_id.to_string(), "nosuchroom".to_owned()] {
        for _ in 0..3 {
            let (s, b) = app.post(Some(&outsider), &format!("/api/v1/rooms/{room}/typing"), json!({})).await;
            assert_eq!((s, code(&b)), (404, Some("room_not_found")), "typing in {room}");
        }
    }
    // A public room: a non-member is told so, every time.
    for _ in 0..2 {
        let (s, b) = app.post(Some(&outsider), "/api/v1/rooms/open/typing", json!({})).await;
        assert_eq!((s, code(&b)), (403, Some("not_a_member")));
    }
    // WebSocket: likewise, and nothing recorded.
    let mut ws = app.ws(&outsider).await;
    for i in 0..3 {
        ws.send(json!({"type": "typing", "room": id, "req": format!("t{i}")})).await;
        let e = ws.next_of("error").await;
        assert_eq!((e["code"].as_str(), e["req"].as_str()), (Some("room_not_found"), Some(format!("t{i}").as_str())));
    }
    let (s, b) = app.get(Some(&owner), "/api/v1/rooms/hush/typing").await;
    assert_eq!(s, 200);
    assert_eq!(b["users"], json!([]), "a refused typing records nobody");
    let (_, b) = app.get(Some(&owner), &format!("/api/v1/rooms/{dm_id}/typing")).await;
    assert_eq!(b["users"], json!([]));

    // A member's typing is still recorded.
    let (s, _) = app.post(Some(&owner), "/api/v1/rooms/hush/typing", json!({})).await;
    assert_eq!(s, 204);
    let (_, b) = app.get(Some(&owner), "/api/v1/rooms/hush/typing").await;
    assert_eq!(b["users"].as_array().unwrap().len(), 1);
}

// ---- item 11: last_seq after a room update -----------------------------------------------------

#[tokio::test]
async fn room_updates_carry_the_last_seq_of_the_system_message_they_wrote() {
    let app = spawn_app().await;
    let owner = app.user("una").await;
    app.room(&owner, "news", "public").await;
    let mut ws = app.ws(&owner).await;
    let mut sse = app.sse(&owner, None).await;

    let (s, room) = patch(&app, &owner, "/api/v1/rooms/news", json!({"topic": "today"})).await;
    assert_eq!(s, 200, "{room}");
    let (_, hist) = app.get(Some(&owner), "/api/v1/rooms/news/messages").await;
    let last = hist["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["kind"], "topic");
    assert_eq!(room["last_seq"], last["seq"], "the PATCH answer counts its own topic message");
    let update = ws.next_of("room_updated").await;
    assert_eq!(update["room"]["last_seq"], last["seq"], "so does the room_updated event");
    assert_eq!(sse.next_of("room_updated").await["room"]["last_seq"], last["seq"]);

    let (_, room) = patch(&app, &owner, "/api/v1/rooms/news", json!({"name": "news2", "topic": "again"})).await;
    let (_, hist) = app.get(Some(&owner), "/api/v1/rooms/news2/messages").await;
    assert_eq!(room["last_seq"], hist["messages"].as_array().unwrap().last().unwrap()["seq"]);

    // The WebSocket's own rename/topic replies too.
    ws.send(json!({"type": "topic", "room": "news2", "topic": "ws", "req": "t"})).await;
    let reply = loop {
        let f = ws.next_of("room_updated").await;
        if f["req"] == "t" {
            break f;
        }
    };
    let (_, hist) = app.get(Some(&owner), "/api/v1/rooms/news2/messages").await;
    assert_eq!(reply["room"]["last_seq"], hist["messages"].as_array().unwrap().last().unwrap()["seq"]);
}

// ---- item 12: mentions on edit -----------------------------------------------------------------

#[tokio::test]
async fn edits_update_mentions_and_mention_counts() {
    let app = spawn_app().await;
    let a = app.user("vera").await;
    let b = app.user("walt").await;
    let c = app.user("xena").await;
    app.room(&a, "talk", "public").await;
    app.join(&b, "talk").await;
    app.join(&c, "talk").await;
    let (_, ack) = app.post(Some(&a), "/api/v1/rooms/talk/messages", json!({"body": "hey @walt"})).await;
    let seq = ack["seq"].as_i64().unwrap();
    let mentions = |v: &Value| {
        v["rooms"].as_array().unwrap().iter().find(|r| r["name"] == "talk").unwrap()["mentions"].as_i64().unwrap()
    };
    assert_eq!(mentions(&app.get(Some(&b), "/api/v1/me/rooms").await.1), 1);

    let (s, m) = patch(&app, &a, &format!("/api/v1/rooms/talk/messages/{seq}"), json!({"body": "hey @xena"})).await;
    assert_eq!(s, 200, "{m}");
    let c_id = app.get(Some(&c), "/api/v1/me").await.1["id"].clone();
    assert_eq!(m["mentions"], json!([c_id]));
    assert_eq!(mentions(&app.get(Some(&b), "/api/v1/me/rooms").await.1), 0, "walt is no longer mentioned");
    assert_eq!(mentions(&app.get(Some(&c), "/api/v1/me/rooms").await.1), 1, "xena now is");

    // Over the WebSocket too: the mention goes away.
    let mut ws = app.ws(&a).await;
    ws.send(json!({"type": "edit", "room": "talk", "seq": seq, "body": "hey all", "req": "e"})).await;
    let upd = ws.next_of("message_updated").await;
    assert!(upd["message"].get("mentions").is_none(), "{upd}");
    assert_eq!(mentions(&app.get(Some(&c), "/api/v1/me/rooms").await.1), 0);
}

// ---- item 18 and 19 ----------------------------------------------------------------------------

#[tokio::test]
async fn display_names_refuse_invisible_characters_on_every_path() {
    let app = spawn_app().await;
    let t = app.user("yuri").await;
    for bad in ["adm\u{202E}nimda", "yu\u{200B}ri", "\u{2066}x\u{2069}"] {
        let (s, b) = patch(&app, &t, "/api/v1/me", json!({"display_name": bad})).await;
        assert_eq!((s, code(&b)), (400, Some("invalid_display_name")), "{bad:?}");
        let (s, b) = app
            .post(None, "/api/v1/register", json!({"username": "zed", "password": "password-zed", "display_name": bad}))
            .await;
        assert_eq!((s, code(&b)), (400, Some("invalid_display_name")), "{bad:?}");
    }
    let mut tcp = app.tcp("yuri").await;
    tcp.send("/nick evil\u{202E}name").await;
    assert!(tcp.until("ERR").await.starts_with("ERR invalid_display_name"));
}

#[tokio::test]
async fn client_ids_may_hold_spaces_and_role_changes_name_the_owner() {
    let app = spawn_app().await;
    let a = app.user("abel").await;
    let b = app.user("bart").await;
    app.room(&a, "cafe", "public").await;
    app.join(&b, "cafe").await;
    let (s, ack) =
        app.post(Some(&a), "/api/v1/rooms/cafe/messages", json!({"body": "x", "client_id": "id with space"})).await;
    assert_eq!((s, ack["client_id"].as_str()), (201, Some("id with space")));
    let (s, b2) =
        app.post(Some(&a), "/api/v1/rooms/cafe/messages", json!({"body": "x", "client_id": "tab\there"})).await;
    assert_eq!((s, code(&b2)), (400, Some("bad_request")));

    let (s, e) = app.post(Some(&b), "/api/v1/rooms/cafe/roles", json!({"username": "abel", "role": "admin"})).await;
    assert_eq!((s, code(&e)), (403, Some("forbidden")));
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(msg.contains("owner") && !msg.contains("admin"), "{msg}");
}

// ---- item 16: every refusal is JSON -------------------------------------------------------------

#[tokio::test]
async fn refusals_from_extractors_are_json_too() {
    let app = spawn_app().await;
    let t = app.user("carl").await;
    let cases: Vec<(&str, &str, Option<&str>)> = vec![
        ("GET", "/api/v1/rooms/%ff/members", None),
        ("GET", "/api/v1/rooms/%ff", None),
        ("POST", "/api/v1/rooms/%c3%28/join", Some("{}")),
        ("PATCH", "/api/v1/rooms/%ff/messages/1", Some(r#"{"body":"x"}"#)),
        ("GET", "/api/v1/rooms/general/messages?limit=abc", None),
        ("POST", "/api/v1/rooms", Some("not json")),
        ("PUT", "/api/v1/rooms", Some("{}")),
        ("GET", "/api/v1/nowhere", None),
        ("GET", "/ws", None),
        ("POST", "/ws", Some("{}")),
    ];
    for (method, path, body) in cases {
        let mut req = app.http.request(method.parse().unwrap(), app.url(path)).bearer_auth(&t);
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b.to_owned());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let ct = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        assert!(ct.starts_with("application/json"), "{method} {path}: {status} {ct}");
        let b: Value = resp.json().await.unwrap();
        assert!(b["error"]["code"].is_string() && b["error"]["message"].is_string(), "{method} {path}: {b}");
        assert!((400..500).contains(&status), "{method} {path}: {status}");
    }
    let (s, b) = app.get(Some(&t), "/api/v1/rooms/%ff/members").await;
    assert_eq!((s, code(&b)), (400, Some("bad_request")));
}

// ---- item 10: ownership -------------------------------------------------------------------------

#[tokio::test]
async fn the_owner_hands_the_room_over_before_leaving_on_every_transport() {
    let app = spawn_app().await;
    let a = app.user("olive").await;
    let b = app.user("oren").await;
    let c = app.user("otto").await;
    app.room(&a, "club", "public").await;
    app.join(&b, "club").await;
    app.join(&c, "club").await;

    // Leaving with others in the room is refused until ownership moves.
    let (s, e) = app.post(Some(&a), "/api/v1/rooms/club/leave", json!({})).await;
    assert_eq!((s, code(&e)), (403, Some("forbidden")), "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("transfer ownership"));
    // Only the owner transfers, only to a member.
    let (s, e) = app.post(Some(&b), "/api/v1/rooms/club/owner", json!({"username": "otto"})).await;
    assert_eq!((s, code(&e)), (403, Some("forbidden")));
    app.user("nonmember").await;
    let (s, e) = app.post(Some(&a), "/api/v1/rooms/club/owner", json!({"username": "nonmember"})).await;
    assert_eq!((s, code(&e)), (403, Some("forbidden")));

    let mut ws_b = app.ws(&b).await;
    let (s, e) = app.post(Some(&a), "/api/v1/rooms/club/owner", json!({"username": "oren"})).await;
    assert_eq!(s, 204, "{e}");
    let m = ws_b.next_of("message").await;
    assert_eq!(m["message"]["kind"], "owner_changed");
    assert_eq!(
        (m["message"]["sender"]["username"].as_str(), m["message"]["target"]["username"].as_str()),
        (Some("olive"), Some("oren"))
    );
    let (_, members) = app.get(Some(&a), "/api/v1/rooms/club/members").await;
    let role = |n: &str| {
        members["members"].as_array().unwrap().iter().find(|m| m["username"] == n).unwrap()["role"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!((role("olive"), role("oren"), role("otto")), ("admin".into(), "owner".into(), "member".into()));
    // The old owner may leave now.
    let (s, _) = app.post(Some(&a), "/api/v1/rooms/club/leave", json!({})).await;
    assert_eq!(s, 204);

    // WebSocket `transfer`: oren hands it to otto.
    ws_b.send(json!({"type": "transfer", "room": "club", "username": "otto", "req": "x"})).await;
    let ok = ws_b.next_of("ok").await;
    assert_eq!(ok["req"], "x");
    // TCP `/owner`: otto hands it back to oren.
    let mut tcp = app.tcp("otto").await;
    tcp.send("/owner club oren").await;
    assert!(tcp.until("* oren owns").await.contains("club"));
    tcp.send("/owner club nonmember").await;
    assert!(tcp.until("ERR").await.starts_with("ERR forbidden"));
    let (_, h) = app.get(Some(&b), "/api/v1/rooms/club/messages").await;
    let owners: Vec<&str> = h["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == "owner_changed")
        .map(|m| m["target"]["username"].as_str().unwrap())
        .collect();
    assert_eq!(owners, ["oren", "otto", "oren"], "every transfer is recorded");

    // The last member may leave; whoever joins next owns the room.
    let solo = app.room(&c, "solo", "public").await;
    let (s, _) = app.post(Some(&c), "/api/v1/rooms/solo/leave", json!({})).await;
    assert_eq!(s, 204);
    app.join(&b, &solo.to_string()).await;
    let (_, members) = app.get(Some(&b), "/api/v1/rooms/solo/members").await;
    assert_eq!(members["members"][0]["role"], "owner");
}

// ---- contracts: bans list, visibility ----------------------------------------------------------

#[tokio::test]
async fn moderators_list_bans_and_the_owner_sets_visibility() {
    let app = spawn_app().await;
    let a = app.user("bea").await;
    let b = app.user("bob").await;
    let c = app.user("cyd").await;
    app.room(&a, "yard", "public").await;
    app.join(&b, "yard").await;
    app.join(&c, "yard").await;
    let (s, _) = app.post(Some(&a), "/api/v1/rooms/yard/roles", json!({"username": "bob", "role": "admin"})).await;
    assert_eq!(s, 204);
    let (s, _) = app.post(Some(&b), "/api/v1/rooms/yard/ban", json!({"username": "cyd"})).await;
    assert_eq!(s, 204);
    for t in [&a, &b] {
        let (s, list) = app.get(Some(t), "/api/v1/rooms/yard/bans").await;
        assert_eq!(s, 200);
        assert_eq!(list["bans"][0]["user"]["username"], "cyd");
        assert!(list["bans"][0]["banned_at"].as_i64().unwrap() > 0);
    }
    let d = app.user("dee").await;
    app.join(&d, "yard").await;
    let (s, e) = app.get(Some(&d), "/api/v1/rooms/yard/bans").await;
    assert_eq!((s, code(&e)), (403, Some("forbidden")), "members do not see bans");

    // Visibility: the owner only, never a direct conversation.
    let (s, e) = patch(&app, &b, "/api/v1/rooms/yard", json!({"visibility": "private"})).await;
    assert_eq!((s, code(&e)), (403, Some("forbidden")), "an admin may not");
    let (s, e) = patch(&app, &a, "/api/v1/rooms/yard", json!({"visibility": "secret"})).await;
    assert_eq!((s, code(&e)), (400, Some("bad_request")));
    let (s, r) = patch(&app, &a, "/api/v1/rooms/yard", json!({"visibility": "private"})).await;
    assert_eq!((s, r["visibility"].as_str()), (200, Some("private")));
    let outsider = app.user("eve").await;
    let (s, e) = app.get(Some(&outsider), "/api/v1/rooms/yard").await;
    assert_eq!((s, code(&e)), (404, Some("room_not_found")), "private now");
    let (s, r) = patch(&app, &a, "/api/v1/rooms/yard", json!({"visibility": "public"})).await;
    assert_eq!((s, r["visibility"].as_str()), (200, Some("public")));
    let (_, dm) = app.post(Some(&a), "/api/v1/dms", json!({"username": "bob"})).await;
    let (s, e) = patch(&app, &a, "/api/v1/rooms/@bob", json!({"visibility": "public"})).await;
    assert_eq!((s, code(&e)), (403, Some("forbidden")), "{dm} {e}");
}

// ---- item 14: direct-conversation namespace ----------------------------------------------------

#[tokio::test]
async fn direct_conversations_are_addressed_as_at_peer_and_cannot_be_squatted() {
    let app = spawn_app().await;
    let a = app.user("dana").await;
    let b = app.user("dirk").await;
    let sq = app.user("squat").await;
    let (s, dm) = app.post(Some(&a), "/api/v1/dms", json!({"username": "dirk"})).await;
    assert_eq!(s, 200);
    let (dm_id, dm_name) = (dm["room"]["id"].as_i64().unwrap(), dm["room"]["name"].as_str().unwrap().to_owned());

    // Group rooms cannot take a direct name, nor an `@` one.
    for bad in [dm_name.as_str(), "dm-1-2", "DM-7-9", "@dirk"] {
        let (s, e) = app.post(Some(&sq), "/api/v1/rooms", json!({"name": bad})).await;
        assert_eq!((s, code(&e)), (400, Some("invalid_room_name")), "{bad}");
    }
    app.room(&sq, "lobby", "public").await;
    let (s, e) = patch(&app, &sq, "/api/v1/rooms/lobby", json!({"name": "dm-1-2"})).await;
    assert_eq!((s, code(&e)), (400, Some("invalid_room_name")));
    // A name of the direct form never resolves, for anyone.
    for t in [&a, &b, &sq] {
        let (s, e) = app.get(Some(t), &format!("/api/v1/rooms/{dm_name}")).await;
        assert_eq!((s, code(&e)), (404, Some("room_not_found")));
    }

    // REST: `@peer`, literal or percent-encoded, from either side.
    for (t, path) in [(&a, "/api/v1/rooms/@dirk"), (&a, "/api/v1/rooms/%40DIRK"), (&b, "/api/v1/rooms/@dana")] {
        let (s, r) = app.get(Some(t), path).await;
        assert_eq!((s, r["id"].as_i64()), (200, Some(dm_id)), "{path}");
    }
    let (s, ack) = app.post(Some(&a), "/api/v1/rooms/@dirk/messages", json!({"body": "hi dirk"})).await;
    assert_eq!((s, ack["room"].as_i64()), (201, Some(dm_id)));
    let (_, h) = app.get(Some(&b), "/api/v1/rooms/%40dana/messages").await;
    assert_eq!(h["messages"].as_array().unwrap().last().unwrap()["body"], "hi dirk");
    // An outsider addressing someone else's peer, or a user without a conversation: no such room.
    for (t, path) in [
        (&sq, "/api/v1/rooms/@dirk"),
        (&sq, "/api/v1/rooms/@dana"),
        (&a, "/api/v1/rooms/@squat"),
        (&a, "/api/v1/rooms/@dana"),
        (&a, "/api/v1/rooms/@nobody"),
    ] {
        let (s, e) = app.get(Some(t), path).await;
        assert_eq!((s, code(&e)), (404, Some("room_not_found")), "{path}");
    }

    // WebSocket: the `room` field.
    let mut ws = app.ws(&b).await;
    ws.send(json!({"type": "send", "room": "@dana", "body": "hi dana", "client_id": "w1", "req": "s"})).await;
    let ack = ws.next_of("ack").await;
    assert_eq!((ack["room"].as_i64(), ack["req"].as_str()), (Some(dm_id), Some("s")));
    ws.send(json!({"type": "history", "room": "@Dana", "limit": 5, "req": "h"})).await;
    assert_eq!(ws.next_of("history").await["room"].as_i64(), Some(dm_id));

    // TCP: the argument.
    let mut tcp = app.tcp("dana").await;
    tcp.send("/go @dirk").await;
    assert!(tcp.until("* Current room:").await.contains("@dirk"));
    tcp.send("from tcp").await;
    let (s, _) = app.get(Some(&b), "/api/v1/rooms/@dana").await;
    assert_eq!(s, 200);
    tcp.send("/who @dirk").await;
    let who = tcp.until("* ").await;
    assert!(who.contains("dana") && who.contains("dirk"), "{who}");
}

// ---- item 15: invitations ----------------------------------------------------------------------

#[tokio::test]
async fn invitees_hear_of_invitations_on_every_transport_and_accept_or_decline_them() {
    let app = spawn_app().await;
    let a = app.user("ivan").await;
    let b = app.user("iris").await;
    app.room(&a, "den", "private").await;
    app.room(&a, "attic", "private").await;
    app.room(&a, "porch", "public").await;
    let mut ws = app.ws(&b).await;
    let mut sse = app.sse(&b, None).await;
    let mut tcp = app.tcp("iris").await;

    let (s, _) = app.post(Some(&a), "/api/v1/rooms/den/invites", json!({"username": "iris"})).await;
    assert_eq!(s, 204);
    let ev = ws.next_of("invited").await;
    assert_eq!((ev["room"]["name"].as_str(), ev["invited_by"]["username"].as_str()), (Some("den"), Some("ivan")));
    assert!(ev["at"].as_i64().unwrap() > 0);
    let ev = sse.next_of("invited").await;
    assert_eq!(ev["room"]["name"], "den");
    let line = tcp.until("* ivan invited you").await;
    assert!(line.contains("#den") && line.contains("/accept den"), "{line}");

    for room in ["attic", "porch"] {
        let (s, _) = app.post(Some(&a), &format!("/api/v1/rooms/{room}/invites"), json!({"username": "iris"})).await;
        assert_eq!(s, 204);
    }
    let (s, list) = app.get(Some(&b), "/api/v1/me/invites").await;
    assert_eq!(s, 200);
    let names: Vec<&str> =
        list["invites"].as_array().unwrap().iter().map(|i| i["room"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["den", "attic", "porch"]);
    assert_eq!(list["invites"][0]["invited_by"]["username"], "ivan");
    let (_, none) = app.get(Some(&a), "/api/v1/me/invites").await;
    assert_eq!(none["invites"], json!([]));

    // Accept over REST: joins, the room answers.
    let (s, room) = app.post(Some(&b), "/api/v1/me/invites/den/accept", json!({})).await;
    assert_eq!((s, room["name"].as_str()), (200, Some("den")));
    assert_eq!(ws.next_of("joined").await["room"]["name"], "den");
    let (s, e) = app.post(Some(&b), "/api/v1/me/invites/den/accept", json!({})).await;
    assert_eq!((s, code(&e)), (404, Some("invite_not_found")), "used up");

    // Decline over the WebSocket: gone, and the private room is invisible again.
    ws.send(json!({"type": "invites", "req": "l"})).await;
    let l = ws.next_of("invites").await;
    assert_eq!((l["req"].as_str(), l["invites"].as_array().unwrap().len()), (Some("l"), 2));
    ws.send(json!({"type": "decline_invite", "room": "attic", "req": "d"})).await;
    assert_eq!(ws.next_of("ok").await["req"], "d");
    let (s, e) = app.get(Some(&b), "/api/v1/rooms/attic").await;
    assert_eq!((s, code(&e)), (404, Some("room_not_found")));
    ws.send(json!({"type": "accept_invite", "room": "attic", "req": "a"})).await;
    let e = ws.next_of("error").await;
    assert_eq!((e["code"].as_str(), e["req"].as_str()), (Some("invite_not_found"), Some("a")));

    // TCP: list and accept.
    tcp.send("/invites").await;
    assert!(tcp.until("* #porch").await.contains("ivan"));
    tcp.send("/accept porch").await;
    assert!(tcp.until("* Current room:").await.contains("#porch"));
    let (_, list) = app.get(Some(&b), "/api/v1/me/invites").await;
    assert_eq!(list["invites"], json!([]));

    // Decline over REST, and without an invitation every room answers alike.
    let (s, _) = app.post(Some(&a), "/api/v1/rooms/attic/invites", json!({"username": "iris"})).await;
    assert_eq!(s, 204);
    let (s, _) = app.post(Some(&b), "/api/v1/me/invites/attic/decline", json!({})).await;
    assert_eq!(s, 204);
    for room in ["attic", "nosuch", "99999"] {
        let (s, e) = app.post(Some(&b), &format!("/api/v1/me/invites/{room}/decline"), json!({})).await;
        assert_eq!((s, code(&e)), (404, Some("invite_not_found")), "{room}");
    }
}
