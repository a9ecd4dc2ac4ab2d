//! Attachments end to end: upload, share in a message, download (ranges, headers), who may see a file,
//! hostile uploads, and deletion, retention and the collector removing the bytes.

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::*;

/// The start of a PNG (signature and IHDR): 16 × 8. Enough for sniffing and dimensions.
pub(crate) fn png() -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10\0\0\0\x08\x08\x02\0\0\0\x90wS\xde".to_vec();
    b.extend((0..5000u32).map(|i| (i % 251) as u8));
    b
}

pub(crate) async fn upload(app: &TestApp, token: &str, room: &str, name: &str, bytes: Vec<u8>) -> (u16, Value) {
    let resp = app
        .http
        .post(app.url(&format!("/api/v1/rooms/{room}/files")))
        .query(&[("name", name)])
        .bearer_auth(token)
        .header("content-type", "image/png") // never believed
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn send_with(app: &TestApp, token: &str, room: &str, body: &str, files: &[&str]) -> (u16, Value) {
    app.post(Some(token), &format!("/api/v1/rooms/{room}/messages"), json!({"body": body, "files": files})).await
}

async fn download(app: &TestApp, token: &str, id: &str, range: Option<&str>) -> reqwest::Response {
    let mut req = app.http.get(app.url(&format!("/api/v1/files/{id}/content"))).bearer_auth(token);
    if let Some(r) = range {
        req = req.header("range", r);
    }
    req.send().await.unwrap()
}

async fn round_trip(app: TestApp) {
    let alice = app.user("alice").await;
    app.room(&alice, "pics", "public").await;
    let bytes = png();
    let (s, f) = upload(&app, &alice, "pics", "../../cat.png", bytes.clone()).await;
    assert_eq!(s, 201, "{f}");
    assert_eq!(f["name"], "cat.png");
    assert_eq!(f["content_type"], "image/png");
    assert_eq!((f["width"].as_i64(), f["height"].as_i64()), (Some(16), Some(8)));
    assert_eq!(f["inline"], true);
    assert_eq!(f["size"], bytes.len());
    let id = f["id"].as_str().unwrap().to_owned();
    assert_eq!(f["url"], format!("/api/v1/files/{id}/content"));

    let (s, ack) = send_with(&app, &alice, "pics", "look", &[&id]).await;
    assert_eq!(s, 201, "{ack}");
    let (_, h) = app.get(Some(&alice), "/api/v1/rooms/pics/messages").await;
    let m = h["messages"].as_array().unwrap().iter().find(|m| m["body"] == "look").unwrap().clone();
    assert_eq!(m["files"][0]["id"], id.as_str());
    assert_eq!(m["files"][0]["seq"], ack["seq"]);
    // Shared once: a second message cannot take it.
    let (s, b) = send_with(&app, &alice, "pics", "again", &[&id]).await;
    assert_eq!((s, &b["error"]["code"]), (404, &json!("file_not_found")), "{b}");

    let resp = download(&app, &alice, &id, None).await;
    assert_eq!(resp.status(), 200);
    let h = resp.headers().clone();
    assert_eq!(h["content-type"], "image/png");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(h["content-disposition"].to_str().unwrap().starts_with("inline; filename=\"cat.png\""));
    assert_eq!(h["accept-ranges"], "bytes");
    assert_eq!(resp.bytes().await.unwrap().to_vec(), bytes);

    let resp = download(&app, &alice, &id, Some("bytes=10-19")).await;
    assert_eq!(resp.status(), 206);
    assert_eq!(resp.headers()["content-range"], format!("bytes 10-19/{}", bytes.len()));
    assert_eq!(resp.bytes().await.unwrap().to_vec(), bytes[10..20]);
    let resp = download(&app, &alice, &id, Some("bytes=-5")).await;
    assert_eq!(resp.bytes().await.unwrap().to_vec(), bytes[bytes.len() - 5..]);
    let resp = download(&app, &alice, &id, Some("bytes=999999-")).await;
    assert_eq!(resp.status(), 416);
    assert_eq!(resp.headers()["content-range"], format!("bytes */{}", bytes.len()));

    // The live frame carries the files too.
    let mut ws = app.ws(&alice).await;
    let (s, f2) = upload(&app, &alice, "pics", "notes.txt", b"plain words".to_vec()).await;
    assert_eq!(s, 201);
    let id2 = f2["id"].as_str().unwrap().to_owned();
    ws.send(json!({"type": "send", "room": "pics", "body": "notes", "files": [id2]})).await;
    let live = ws.next_text().await;
    assert_eq!(live["files"][0]["name"], "notes.txt");
    assert_eq!(live["files"][0]["inline"], false);
    app.stop().await;
}

#[tokio::test]
async fn a_file_round_trips_on_sqlite() {
    round_trip(spawn_app().await).await;
}

#[tokio::test]
async fn a_file_round_trips_in_memory() {
    round_trip(spawn_app_with(&["--database-url", "memory:"]).await).await;
}

/// Who may read a private room's file: only its members, whatever else they once were.
#[tokio::test]
async fn a_file_is_visible_exactly_to_those_who_may_read_its_message() {
    let app = spawn_app().await;
    let owner = app.user("owner").await;
    app.room(&owner, "vault", "private").await;
    app.room(&owner, "lobby", "public").await;
    let mut tokens = vec![];
    for name in ["member", "outsider", "banned", "leaver"] {
        tokens.push((name, app.user(name).await));
    }
    for (name, t) in &tokens {
        if *name != "outsider" {
            let (s, b) = app.post(Some(&owner), "/api/v1/rooms/vault/invites", json!({"username": name})).await;
            assert!(s < 300, "{b}");
            let (_, me) = app.get(Some(t), "/api/v1/me/invites").await;
            let room = me["invites"][0]["room"]["id"].as_i64().unwrap();
            let (s, b) = app.post(Some(t), &format!("/api/v1/me/invites/{room}/accept"), json!({})).await;
            assert!(s < 300, "{b}");
            app.join(t, "lobby").await;
        }
    }
    let (_, f) = upload(&app, &owner, "vault", "plan.pdf", b"%PDF-1.4 secret plan".to_vec()).await;
    let id = f["id"].as_str().unwrap().to_owned();
    // Before it is sent, only its uploader sees it.
    let member = &tokens[0].1;
    let (s, b) = app.get(Some(member), &format!("/api/v1/files/{id}")).await;
    assert_eq!((s, &b["error"]["code"]), (404, &json!("file_not_found")));
    let (s, _) = send_with(&app, &owner, "vault", "the plan", &[&id]).await;
    assert_eq!(s, 201);
    let (_, pf) = upload(&app, &owner, "lobby", "open.txt", b"for all".to_vec()).await;
    let pid = pf["id"].as_str().unwrap().to_owned();
    assert_eq!(send_with(&app, &owner, "lobby", "open", &[&pid]).await.0, 201);

    let (s, b) = app.post(Some(&owner), "/api/v1/rooms/vault/ban", json!({"username": "banned"})).await;
    assert!(s < 300, "{b}");
    let (s, b) = app.post(Some(&owner), "/api/v1/rooms/lobby/ban", json!({"username": "banned"})).await;
    assert!(s < 300, "{b}");
    let (s, b) = app.post(Some(&tokens[3].1), "/api/v1/rooms/vault/leave", json!({})).await;
    assert!(s < 300, "{b}");

    // (who, private file: status and code, public room's file: status and code)
    let cases = [
        ("member", (200, None), (200, None)),
        ("outsider", (404, Some("room_not_found")), (200, None)),
        ("banned", (404, Some("room_not_found")), (403, Some("banned"))),
        ("leaver", (404, Some("room_not_found")), (200, None)),
    ];
    for ((who, private, public), (name, token)) in cases.iter().zip(&tokens) {
        assert_eq!(who, name);
        for (file, (status, code)) in [(&id, private), (&pid, public)] {
            let (s, b) = app.get(Some(token), &format!("/api/v1/files/{file}")).await;
            assert_eq!(s, *status, "{who} metadata of {file}: {b}");
            let resp = download(&app, token, file, None).await;
            assert_eq!(resp.status().as_u16(), *status, "{who} bytes of {file}");
            let body = resp.text().await.unwrap();
            if let Some(code) = code {
                assert_eq!(b["error"]["code"], *code, "{who}");
                assert!(body.contains(code) && !body.contains("secret"), "{who}: {body}");
            }
        }
    }
    // A made-up id is simply absent.
    let (s, b) = app.get(Some(member), "/api/v1/files/0123456789abcdef0123456789abcdef").await;
    assert_eq!((s, &b["error"]["code"]), (404, &json!("file_not_found")));
    app.stop().await;
}

#[tokio::test]
async fn hostile_uploads_are_refused_or_defused() {
    let app =
        spawn_app_with(&["--max-upload-bytes", "100000", "--upload-quota-bytes", "150000", "--upload-idle-secs", "1"])
            .await;
    let eve = app.user("eve").await;
    app.room(&eve, "den", "public").await;

    // HTML claiming to be an image, and SVG with script: stored as text, served as attachments.
    for (name, bytes) in [
        ("x.png", b"<html><script>alert(1)</script></html>".to_vec()),
        ("x.svg", b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>".to_vec()),
    ] {
        let (s, f) = upload(&app, &eve, "den", name, bytes).await;
        assert_eq!(s, 201, "{f}");
        assert_eq!(f["inline"], false, "{name}");
        assert_ne!(f["content_type"], "image/png");
        assert_ne!(f["content_type"], "image/svg+xml");
        let resp = download(&app, &eve, f["id"].as_str().unwrap(), None).await;
        let h = resp.headers();
        assert!(h["content-disposition"].to_str().unwrap().starts_with("attachment;"), "{name}");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert!(
            !h["content-type"].to_str().unwrap().contains("html")
                && !h["content-type"].to_str().unwrap().contains("svg")
        );
    }
    // Path separators, control characters and bidi overrides leave the name.
    let (_, f) = upload(&app, &eve, "den", "..\\..\\evil\u{202e}gpj.exe\r\n", b"MZ".to_vec()).await;
    assert_eq!(f["name"], "evilgpj.exe");
    let resp = download(&app, &eve, f["id"].as_str().unwrap(), None).await;
    let cd = resp.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert!(cd.starts_with("attachment; filename=\"evilgpj.exe\""), "{cd}");

    // Empty, too large (announced, and streamed without a length).
    let (s, b) = upload(&app, &eve, "den", "e", vec![]).await;
    assert_eq!((s, &b["error"]["code"]), (400, &json!("empty_file")));
    let (s, b) = upload(&app, &eve, "den", "big", vec![7u8; 100_001]).await;
    assert_eq!((s, &b["error"]["code"]), (413, &json!("file_too_large")));
    // Streamed without a length (chunked): refused once past the limit.
    let answer = raw_upload(&app, &eve, "Transfer-Encoding: chunked", |mut sock| async move {
        for _ in 0..30 {
            let mut chunk = b"1000\r\n".to_vec();
            chunk.extend(vec![1u8; 4096]);
            chunk.extend(b"\r\n");
            if sock.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = sock.write_all(b"0\r\n\r\n").await;
        sock
    })
    .await;
    assert!(answer.starts_with("HTTP/1.1 413") && answer.contains("file_too_large"), "{answer}");

    // The quota counts what is kept: 90 000 fits, the next 90 000 does not.
    let (s, _) = upload(&app, &eve, "den", "a", vec![3u8; 90_000]).await;
    assert_eq!(s, 201);
    let (s, b) = upload(&app, &eve, "den", "b", vec![4u8; 90_000]).await;
    assert_eq!((s, &b["error"]["code"]), (507, &json!("quota_exceeded")), "{b}");

    // Raw sockets: a body cut short, and one that stalls.
    let _ = raw_upload(&app, &eve, "Content-Length: 5000", |mut sock| async move {
        sock.write_all(&[9u8; 1000]).await.unwrap();
        sock.shutdown().await.unwrap();
        sock
    })
    .await;
    let answer = raw_upload(&app, &eve, "Content-Length: 5000", |mut sock| async move {
        sock.write_all(&[9u8; 1000]).await.unwrap();
        sock
    })
    .await;
    assert!(answer.starts_with("HTTP/1.1 408") && answer.contains("upload_stalled"), "{answer}");
    // Neither left a file behind: the quota is as before (one more 60 000 still fits).
    let (s, b) = upload(&app, &eve, "den", "c", vec![5u8; 59_000]).await;
    assert_eq!(s, 201, "{b}");
    let blobs_tmp = app.dir.path().join("blobs/tmp");
    assert_eq!(std::fs::read_dir(&blobs_tmp).unwrap().count(), 0, "no partial upload left in tmp/");
    app.stop().await;
}

/// Sends an upload's head with `framing`, lets `body` write (and return the socket), reads the answer.
async fn raw_upload<F, Fut>(app: &TestApp, token: &str, framing: &str, body: F) -> String
where
    F: FnOnce(tokio::net::TcpStream) -> Fut,
    Fut: std::future::Future<Output = tokio::net::TcpStream>,
{
    let mut sock = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /api/v1/rooms/den/files?name=raw HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n{framing}\r\n\r\n"
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    let mut sock = body(sock).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(DEADLINE, sock.read_to_end(&mut answer)).await.expect("an answer or a close");
    String::from_utf8_lossy(&answer).into_owned()
}

fn blob_count(app: &TestApp) -> usize {
    let root = app.dir.path().join("blobs");
    std::fs::read_dir(&root)
        .unwrap()
        .filter_map(|d| d.ok())
        .filter(|d| d.file_name().len() == 2)
        .map(|d| std::fs::read_dir(d.path()).unwrap().count())
        .sum()
}

/// The blob directory is all there is to watch: a bounded poll.
async fn wait_for(what: &str, ok: impl FnMut() -> bool) {
    wait::until(what, DEADLINE, ok).await
}

#[tokio::test]
async fn deleting_or_purging_a_message_removes_its_files_and_then_their_bytes() {
    let (app, clock) =
        spawn_app_clocked(&["--blob-gc-secs", "1", "--blob-gc-grace-secs", "0", "--retention-sweep-secs", "1"]).await;
    let alice = app.user("alice").await;
    app.room(&alice, "tmp", "public").await;
    let (_, f) = upload(&app, &alice, "tmp", "one.bin", vec![1u8; 3000]).await;
    let id = f["id"].as_str().unwrap().to_owned();
    let (_, ack) = send_with(&app, &alice, "tmp", "one", &[&id]).await;
    let (_, kept) = upload(&app, &alice, "tmp", "kept.bin", vec![2u8; 3000]).await;
    let kept_id = kept["id"].as_str().unwrap().to_owned();
    assert_eq!(blob_count(&app), 2);

    let resp = app
        .http
        .delete(app.url(&format!("/api/v1/rooms/tmp/messages/{}", ack["seq"])))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    let (s, b) = app.get(Some(&alice), &format!("/api/v1/files/{id}")).await;
    assert_eq!((s, &b["error"]["code"]), (404, &json!("file_not_found")));
    assert_eq!(download(&app, &alice, &id, None).await.status(), 404);
    let (_, h) = app.get(Some(&alice), "/api/v1/rooms/tmp/messages").await;
    assert!(h["messages"][0]["files"].is_null(), "the tombstone shares nothing: {h}");
    wait_for("the deleted message's blob to be collected", || blob_count(&app) == 1).await;

    // Retention: the message and its file go, then the bytes.
    let (_, ack2) = send_with(&app, &alice, "tmp", "kept for a second", &[&kept_id]).await;
    assert!(ack2["seq"].is_i64());
    clock.advance(3_600_000); // the message must be older than the period, by the node's clock
    let resp = app
        .http
        .patch(app.url("/api/v1/rooms/tmp"))
        .bearer_auth(&alice)
        .json(&json!({"retention_secs": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    wait_for("the purged message's blob to be collected", || blob_count(&app) == 0).await;
    let (s, _) = app.get(Some(&alice), &format!("/api/v1/files/{kept_id}")).await;
    assert_eq!(s, 404);
    app.stop().await;
}

/// An upload never sent is dropped once it is older than a day by the node's clock, then its bytes go.
#[tokio::test]
async fn an_unsent_upload_is_dropped_after_a_day_by_the_nodes_clock() {
    let (app, clock) = spawn_app_clocked(&["--blob-gc-secs", "1", "--blob-gc-grace-secs", "0"]).await;
    let alice = app.user("alice").await;
    app.room(&alice, "tmp", "public").await;
    let (s, _) = upload(&app, &alice, "tmp", "never-sent.bin", vec![3u8; 3000]).await;
    assert_eq!((s, blob_count(&app)), (201, 1));
    // Its bytes go only once no row names them: the row was dropped by the node's (moved) clock.
    clock.advance(24 * 3_600_000 + 60_000);
    wait_for("the unsent upload's blob to be collected", || blob_count(&app) == 0).await;
    app.stop().await;
}

/// Shares a fresh upload in a message, then deletes the message: its blob is left with no file naming it.
async fn orphan_a_blob(app: &TestApp, token: &str, room: &str, bytes: Vec<u8>) {
    let (_, f) = upload(app, token, room, "gone.bin", bytes).await;
    let id = f["id"].as_str().unwrap().to_owned();
    let (_, ack) = send_with(app, token, room, "soon gone", &[&id]).await;
    let path = format!("/api/v1/rooms/{room}/messages/{}", ack["seq"]);
    let resp = app.http.delete(app.url(&path)).bearer_auth(token).send().await.unwrap();
    assert!(resp.status().is_success());
}

/// The collector's grace period is measured on the node's clock, which stamps blobs: a blob no file names
/// stays until it is older than the grace by that clock, then goes.
#[tokio::test]
async fn an_unnamed_blob_is_collected_once_older_than_the_grace_by_the_nodes_clock() {
    let (app, clock) = spawn_app_clocked(&["--blob-gc-secs", "1", "--blob-gc-grace-secs", "3600"]).await;
    let alice = app.user("alice").await;
    app.room(&alice, "tmp", "public").await;
    orphan_a_blob(&app, &alice, "tmp", vec![1u8; 3000]).await;
    clock.advance(1_800_000);
    orphan_a_blob(&app, &alice, "tmp", vec![2u8; 3000]).await;
    assert_eq!(blob_count(&app), 2);
    // The first is an hour and a second old by the node's clock, the second half an hour and a second:
    // passes take the first only, and the second stays for as long as the clock does not move.
    clock.advance(1_801_000);
    wait_for("the blob older than the grace to be collected", || blob_count(&app) == 1).await;
    let second = app.dir.path().join("blobs").join(hex_sha256(&[2u8; 3000]));
    assert!(second.exists(), "the blob younger than the grace is kept");
    clock.advance(1_800_000);
    wait_for("the second blob to be collected once older than the grace", || blob_count(&app) == 0).await;
    app.stop().await;
}

/// Where a blob of `bytes` lives under the blob directory (`ab/cdef…` of their SHA-256).
fn hex_sha256(bytes: &[u8]) -> std::path::PathBuf {
    use sha2::Digest;
    let h = hex::encode(sha2::Sha256::digest(bytes));
    std::path::Path::new(&h[..2]).join(&h[2..])
}

/// The TCP line protocol shows a shared file as an indented line with its name, size and download path.
#[tokio::test]
async fn tcp_readers_get_file_lines_with_the_download_path() {
    use tokio::io::AsyncBufReadExt;
    let app = spawn_app().await;
    let alice = app.user("alice").await;
    app.user("tara").await;
    app.room(&alice, "mix", "public").await;
    let tara = app.login("tara").await;
    app.join(&tara, "mix").await;
    let (r, mut w) = tokio::net::TcpStream::connect(app.tcp_addr).await.unwrap().into_split();
    let mut lines = tokio::io::BufReader::new(r).lines();
    let until = async |prefix: &str, lines: &mut tokio::io::Lines<_>| loop {
        let l: String =
            tokio::time::timeout(DEADLINE, lines.next_line()).await.expect("a line").unwrap().expect("open");
        if l.contains(prefix) {
            return l;
        }
    };
    w.write_all(b"/login tara password-tara\n").await.unwrap();
    until("* Hello", &mut lines).await;
    let (_, f) = upload(&app, &alice, "mix", "report.pdf", vec![b'%'; 2048]).await;
    let id = f["id"].as_str().unwrap().to_owned();
    assert_eq!(send_with(&app, &alice, "mix", "the report", &[&id]).await.0, 201);
    let text = until("alice: the report", &mut lines).await;
    assert!(text.starts_with("[#mix]"), "{text}");
    let file = until("[file]", &mut lines).await;
    assert_eq!(file, format!("    [file] report.pdf (2.0 KiB) /api/v1/files/{id}/content"));
    app.stop().await;
}

/// A reply that also shares files: the message keeps both (`reply_to`/`thread` and `files`) in its
/// acknowledgement, its live frame, history and the thread page; the files download for a member,
/// search finds the reply with `has:file`, and a non-member of the private room sees none of it.
#[tokio::test]
async fn a_reply_that_shares_files_carries_both_everywhere() {
    let app = spawn_app().await;
    let (a, b, outsider) = (app.user("ann").await, app.user("ben").await, app.user("ozzy").await);
    app.room(&a, "desk", "private").await;
    let (s, r) = app.post(Some(&a), "/api/v1/rooms/desk/invites", json!({"username": "ben"})).await;
    assert!(s < 300, "{r}");
    let (_, me) = app.get(Some(&b), "/api/v1/me/invites").await;
    let room = me["invites"][0]["room"]["id"].as_i64().unwrap();
    let (s, r) = app.post(Some(&b), &format!("/api/v1/me/invites/{room}/accept"), json!({})).await;
    assert!(s < 300, "{r}");
    let (s, root) = send_with(&app, &a, "desk", "which logo do we take?", &[]).await;
    assert_eq!(s, 201, "{root}");
    let root = root["seq"].as_i64().unwrap();

    let mut ws = app.ws(&a).await;
    let (s, img) = upload(&app, &b, "desk", "logo.png", png()).await;
    assert_eq!(s, 201, "{img}");
    let (s, doc) = upload(&app, &b, "desk", "brief.txt", b"the brief, in words".to_vec()).await;
    assert_eq!(s, 201, "{doc}");
    let ids = [img["id"].as_str().unwrap().to_owned(), doc["id"].as_str().unwrap().to_owned()];
    let (s, ack) = app
        .post(
            Some(&b),
            "/api/v1/rooms/desk/messages",
            json!({"body": "this logoreply one", "reply_to": root, "files": ids}),
        )
        .await;
    assert_eq!(s, 201, "{ack}");
    let seq = ack["seq"].as_i64().unwrap();
    let both = |m: &Value, what: &str| {
        assert_eq!((m["reply_to"].as_i64(), m["thread"].as_i64()), (Some(root), Some(root)), "{what}: {m}");
        let got: Vec<&str> = m["files"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap()).collect();
        assert_eq!(got, ids.iter().map(String::as_str).collect::<Vec<_>>(), "{what}: {m}");
        assert!(m["files"].as_array().unwrap().iter().all(|f| f["seq"].as_i64() == Some(seq)), "{what}: {m}");
    };
    let live = ws.next_text().await;
    both(&live, "live frame");
    let (_, h) = app.get(Some(&a), "/api/v1/rooms/desk/messages").await;
    both(h["messages"].as_array().unwrap().iter().find(|m| m["seq"] == seq).unwrap(), "history");
    let (s, th) = app.get(Some(&a), &format!("/api/v1/rooms/desk/threads/{root}")).await;
    assert_eq!(s, 200, "{th}");
    assert_eq!(th["root"]["seq"].as_i64(), Some(root));
    both(th["messages"].as_array().unwrap().iter().find(|m| m["seq"] == seq).unwrap(), "thread page");
    for id in &ids {
        let resp = download(&app, &a, id, None).await;
        assert_eq!(resp.status(), 200, "{id}");
    }
    assert_eq!(download(&app, &a, &ids[0], None).await.bytes().await.unwrap().to_vec(), png());
    let (s, found) = app.get(Some(&a), "/api/v1/search?q=logoreply%20has:file").await;
    assert_eq!(s, 200, "{found}");
    assert_eq!(found["hits"][0]["seq"].as_i64(), Some(seq), "{found}");
    assert_eq!(found["hits"][0]["message"]["reply_to"].as_i64(), Some(root), "{found}");
    // Not a member of the private room: neither the thread nor the files.
    let (s, _) = app.get(Some(&outsider), &format!("/api/v1/rooms/desk/threads/{root}")).await;
    assert_eq!(s, 404);
    for id in &ids {
        let (s, m) = app.get(Some(&outsider), &format!("/api/v1/files/{id}")).await;
        assert_eq!((s, &m["error"]["code"]), (404, &json!("room_not_found")), "{m}");
    }
    app.stop().await;
}

fn encoded(img: image::DynamicImage, format: image::ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

fn photo(w: u32, h: u32) -> image::DynamicImage {
    image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 7])
    }))
}

async fn thumbnail(app: &TestApp, token: &str, id: &str) -> reqwest::Response {
    app.http.get(app.url(&format!("/api/v1/files/{id}/thumbnail"))).bearer_auth(token).send().await.unwrap()
}

/// Server-made thumbnails: a real PNG and JPEG get one (bounded, a valid image, listed in the metadata
/// with its dimensions); a decompression bomb and a truncated image get none but stay downloadable;
/// the thumbnail answers exactly like the file to members and outsiders.
#[tokio::test]
async fn images_get_thumbnails_and_hostile_images_do_not() {
    let app = spawn_app().await;
    let (owner, member, outsider) = (app.user("tina").await, app.user("tom").await, app.user("trudy").await);
    app.room(&owner, "gallery", "private").await;
    let (s, r) = app.post(Some(&owner), "/api/v1/rooms/gallery/invites", json!({"username": "tom"})).await;
    assert!(s < 300, "{r}");
    let (_, me) = app.get(Some(&member), "/api/v1/me/invites").await;
    let room = me["invites"][0]["room"]["id"].as_i64().unwrap();
    assert!(app.post(Some(&member), &format!("/api/v1/me/invites/{room}/accept"), json!({})).await.0 < 300);

    let png_bytes = encoded(photo(1200, 600), image::ImageFormat::Png);
    let jpeg_bytes = encoded(photo(500, 900), image::ImageFormat::Jpeg);
    // A bomb: a real PNG whose header claims 100,000 × 100,000 pixels (CRC fixed so only the size is wrong).
    let mut bomb = encoded(photo(4, 4), image::ImageFormat::Png);
    bomb[16..24].copy_from_slice(&[0, 1, 0x86, 0xa0, 0, 1, 0x86, 0xa0]);
    let crc = {
        let mut c = 0xffff_ffffu32;
        for &b in &bomb[12..29] {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 == 1 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 };
            }
        }
        !c
    };
    bomb[29..33].copy_from_slice(&crc.to_be_bytes());
    let truncated = png_bytes[..png_bytes.len() / 2].to_vec();

    let mut ids = vec![];
    for (name, bytes) in
        [("wide.png", &png_bytes), ("tall.jpg", &jpeg_bytes), ("bomb.png", &bomb), ("cut.png", &truncated)]
    {
        let (s, f) = upload(&app, &owner, "gallery", name, bytes.clone()).await;
        assert_eq!(s, 201, "{name}: {f}");
        assert_eq!(f["inline"], true, "{name}: {f}");
        ids.push(f["id"].as_str().unwrap().to_owned());
    }
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    assert_eq!(send_with(&app, &owner, "gallery", "pictures", &refs).await.0, 201);

    for (id, want) in ids.iter().zip([Some((320, 160, "image/jpeg")), Some((178, 320, "image/jpeg")), None, None]) {
        let (s, meta) = app.get(Some(&member), &format!("/api/v1/files/{id}")).await;
        assert_eq!(s, 200, "{meta}");
        let resp = thumbnail(&app, &member, id).await;
        match want {
            Some((w, h, ty)) => {
                let t = &meta["thumbnail"];
                assert_eq!(t["url"], format!("/api/v1/files/{id}/thumbnail"), "{meta}");
                assert_eq!((t["width"].as_i64(), t["height"].as_i64()), (Some(w), Some(h)), "{meta}");
                assert_eq!(resp.status(), 200);
                assert_eq!(resp.headers()["content-type"], ty);
                assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
                let img = image::load_from_memory(&resp.bytes().await.unwrap()).expect("a valid image");
                assert_eq!((i64::from(img.width()), i64::from(img.height())), (w, h));
            }
            None => {
                assert!(meta.get("thumbnail").is_none(), "no thumbnail: {meta}");
                assert_eq!(resp.status(), 404);
                let body: Value = resp.json().await.unwrap();
                assert_eq!(body["error"]["code"], "thumbnail_not_found", "{body}");
            }
        }
        // Thumbnail or not, the file itself downloads, whole.
        let full = download(&app, &member, id, None).await;
        assert_eq!(full.status(), 200);
        let size = meta["size"].as_u64().unwrap();
        assert_eq!(full.bytes().await.unwrap().len() as u64, size);
        // An outsider gets the private room's answer for the thumbnail as for the file.
        let resp = thumbnail(&app, &outsider, id).await;
        assert_eq!(resp.status(), 404);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "room_not_found", "{body}");
    }
    // The history's file list carries the thumbnail too.
    let (_, h) = app.get(Some(&member), "/api/v1/rooms/gallery/messages").await;
    let m = h["messages"].as_array().unwrap().iter().find(|m| m["body"] == "pictures").unwrap();
    assert_eq!(m["files"][0]["thumbnail"]["width"], 320, "{m}");
    app.stop().await;
}
