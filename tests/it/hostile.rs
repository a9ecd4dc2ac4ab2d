//! Hostile input: forged tokens, injection-looking text, path traversal, broken bodies and frames.
//! Whatever arrives, the answer is a documented 4xx (or a close code), never a 5xx or a panic.

use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use crate::harness::*;

const SECRET: &str = "hostile-test-secret-0123456789";

fn b64url(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, &x)| acc | (u32::from(x) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// A token signed with the server's secret (HS256) for the claims given.
fn sign(claims: &Value) -> String {
    use jsonwebtoken::{EncodingKey, Header, encode};
    encode(&Header::default(), claims, &EncodingKey::from_secret(SECRET.as_bytes())).unwrap()
}

/// The claims of a token the server issued (checked with the secret the test gave it).
fn claims_of(token: &str) -> Value {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
    decode::<Value>(token, &DecodingKey::from_secret(SECRET.as_bytes()), &Validation::new(Algorithm::HS256))
        .unwrap()
        .claims
}

async fn assert_refused_everywhere(app: &TestApp, what: &str, token: &str) {
    // REST, header and query.
    let (s, b) = app.get(Some(token), "/api/v1/me").await;
    assert_eq!((s, b["error"]["code"].as_str()), (401, Some("unauthorized")), "{what}: REST {b}");
    let (s, b) = app.get(None, &format!("/api/v1/me?token={token}")).await;
    assert_eq!((s, b["error"]["code"].as_str()), (401, Some("unauthorized")), "{what}: REST query {b}");
    // Server-Sent Events.
    let (s, b) = app.get(None, &format!("/api/v1/events?token={token}")).await;
    assert_eq!((s, b["error"]["code"].as_str()), (401, Some("unauthorized")), "{what}: SSE {b}");
    // WebSocket upgrade: a plain 401 with a JSON body.
    match app.ws_raw(&format!("/ws?token={token}")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 401, "{what}: WS");
            let body: Value = serde_json::from_slice(resp.body().as_deref().unwrap_or_default()).unwrap();
            assert_eq!(body["error"]["code"], "unauthorized", "{what}: WS");
        }
        other => panic!("{what}: WS upgrade should be refused, got {other:?}"),
    }
}

#[tokio::test]
async fn forged_expired_and_unsigned_tokens_are_refused_on_every_transport() {
    let app = spawn_app_with(&["--jwt-secret", SECRET]).await;
    let token = app.user("mallory").await;
    let real = claims_of(&token);
    let (sub, sid) = (real["sub"].clone(), real["sid"].clone());

    // Control: the test really knows the secret, so the refusals below are about the token alone.
    let good = sign(&json!({"sub": sub, "sid": sid, "iat": now_secs(), "exp": now_secs() + 600}));
    assert_eq!(app.get(Some(&good), "/api/v1/me").await.0, 200);

    let mut tampered = token.clone().into_bytes();
    let i = token.rfind('.').unwrap() + 3; // inside the signature, not its last (padding) character
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let expired = sign(&json!({"sub": sub, "sid": sid, "iat": now_secs() - 7200, "exp": now_secs() - 3600}));
    let payload =
        b64url(json!({"sub": sub, "sid": sid, "iat": now_secs(), "exp": now_secs() + 600}).to_string().as_bytes());
    let none_alg = format!("{}.{payload}.", b64url(br#"{"alg":"none","typ":"JWT"}"#));
    let none_alg_sig = format!("{none_alg}{}", token.rsplit('.').next().unwrap());
    let other_user = sign(&json!({"sub": "999", "sid": sid, "iat": now_secs(), "exp": now_secs() + 600}));
    for (what, t) in [
        ("tampered signature", &tampered),
        ("expired", &expired),
        ("alg none", &none_alg),
        ("alg none with a stolen signature", &none_alg_sig),
        ("another user's id", &other_user),
    ] {
        assert_refused_everywhere(&app, what, t).await;
    }

    // The TCP protocol logs in with a password only: a token in its place is a wrong password.
    let (r, mut w) = TcpStream::connect(app.tcp_addr).await.unwrap().into_split();
    let mut lines = BufReader::new(r).lines();
    for t in [&token, &tampered, &none_alg] {
        w.write_all(format!("/login mallory {t}\n").as_bytes()).await.unwrap();
        loop {
            let l = tokio::time::timeout(DEADLINE, lines.next_line()).await.unwrap().unwrap().unwrap();
            if l.starts_with("ERR") {
                assert!(l.starts_with("ERR invalid_credentials"), "{l}");
                break;
            }
            assert!(!l.starts_with("* Hello"), "logged in with a token as password: {l}");
        }
    }
    // The real token still works: nothing above disturbed the session.
    assert_eq!(app.get(Some(&token), "/api/v1/me").await.0, 200);
}

const NASTY: &[&str] = &[
    "'; DROP TABLE messages; --",
    "\" OR 1=1 --",
    "Robert'); DROP TABLE users;--",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "{{7*7}} ${7*7} %s%n \\x00 \\u0000",
    "\u{202e}evil\u{200b} 🙂 é",
];

#[tokio::test]
async fn injection_looking_text_round_trips_byte_for_byte_or_is_refused_by_the_rules() {
    let app = spawn_app().await;
    // Usernames and room names allow only [A-Za-z0-9_-]: refused with the validation error.
    for s in NASTY {
        let (st, b) = app.post(None, "/api/v1/register", json!({"username": s, "password": "password-x1"})).await;
        assert_eq!((st, b["error"]["code"].as_str()), (400, Some("invalid_username")), "{s}: {b}");
    }
    let t = app.user("sally").await;
    let watcher = app.user("walter").await;
    app.room(&t, "lobby", "public").await;
    app.join(&watcher, "lobby").await;
    for s in NASTY {
        let (st, b) = app.post(Some(&t), "/api/v1/rooms", json!({"name": s})).await;
        assert_eq!((st, b["error"]["code"].as_str()), (400, Some("invalid_room_name")), "{s}: {b}");
        let resp = app.http.patch(app.url("/api/v1/rooms/lobby")).bearer_auth(&t).json(&json!({"name": s}));
        let resp = resp.send().await.unwrap();
        assert_eq!(resp.status(), 400, "rename to {s}");
    }

    let mut ws = app.ws(&watcher).await;
    for (i, s) in NASTY.iter().enumerate() {
        // Display name (registration and change), checked through REST and the WebSocket.
        // Names with bidi controls or zero-width characters are refused (impersonation), the rest kept.
        let name = format!("evil{i}");
        let display_ok = !s.chars().any(parley::core::domain::is_invisible);
        let (st, b) = app
            .post(None, "/api/v1/register", json!({"username": name, "password": "password-x1", "display_name": s}))
            .await;
        let resp = app.http.patch(app.url("/api/v1/me")).bearer_auth(&t).json(&json!({"display_name": s}));
        let patched: Value = resp.send().await.unwrap().json().await.unwrap();
        if display_ok {
            assert_eq!(st, 201, "{b}");
            assert_eq!(b["display_name"].as_str(), Some(*s), "{b}");
            assert_eq!(patched["display_name"].as_str(), Some(*s), "{patched}");
            assert_eq!(app.get(Some(&t), "/api/v1/me").await.1["display_name"].as_str(), Some(*s));
        } else {
            assert_eq!((st, b["error"]["code"].as_str()), (400, Some("invalid_display_name")), "{s:?}");
            assert_eq!(patched["error"]["code"].as_str(), Some("invalid_display_name"), "{s:?}");
        }

        // Topic.
        let resp = app.http.patch(app.url("/api/v1/rooms/lobby")).bearer_auth(&t).json(&json!({"topic": s}));
        assert_eq!(resp.send().await.unwrap().status(), 200, "topic {s}");
        assert_eq!(app.get(Some(&t), "/api/v1/rooms/lobby").await.1["topic"].as_str(), Some(*s));
        let upd = ws.next_of("room_updated").await;
        assert_eq!(upd["room"]["topic"].as_str(), Some(*s));

        // Message bodies, sent over REST and over the WebSocket.
        let (st, b) = app.post(Some(&t), "/api/v1/rooms/lobby/messages", json!({"body": s})).await;
        assert_eq!(st, 201, "{b}");
        let live = ws.next_text().await;
        assert_eq!(live["body"].as_str(), Some(*s));
        if display_ok {
            assert_eq!(live["sender"]["display_name"].as_str(), Some(*s));
        }
        ws.send(json!({"type": "send", "room": "lobby", "body": s, "req": "q"})).await;
        assert_eq!(ws.next_text().await["body"].as_str(), Some(*s));
        ws.next_of("ack").await;
    }

    let (st, h) = app.get(Some(&watcher), "/api/v1/rooms/lobby/messages?limit=200").await;
    assert_eq!(st, 200);
    let bodies: Vec<&str> = h["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == "text")
        .filter_map(|m| m["body"].as_str())
        .collect();
    let expected: Vec<&str> = NASTY.iter().flat_map(|s| [*s, *s]).collect();
    assert_eq!(bodies[..expected.len()], expected[..]);

    // A NUL byte is text too (bodies forbid nothing but blankness and size).
    let (st, b) = app.post(Some(&t), "/api/v1/rooms/lobby/messages", json!({"body": "nul\u{0}inside"})).await;
    assert_eq!(st, 201, "{b}");
    assert_eq!(ws.next_text().await["body"].as_str(), Some("nul\u{0}inside"));
    let (_, h) = app.get(Some(&t), "/api/v1/rooms/lobby/messages?limit=1").await;
    assert_eq!(h["messages"][0]["body"].as_str(), Some("nul\u{0}inside"));

    // The tables are all still there and working.
    let fresh = app.user("afterwards").await;
    app.room(&fresh, "still-works", "public").await;
    let (st, _) = app.post(Some(&fresh), "/api/v1/rooms/still-works/messages", json!({"body": "fine"})).await;
    assert_eq!(st, 201);
    let (st, h) = app.get(Some(&fresh), "/api/v1/rooms/still-works/messages").await;
    assert_eq!((st, h["messages"].as_array().unwrap().last().unwrap()["body"].as_str()), (200, Some("fine")));
    let (st, rooms) = app.get(Some(&fresh), "/api/v1/rooms").await;
    assert_eq!((st, rooms["rooms"].as_array().map(|r| r.len())), (200, Some(2)));
}

/// One raw HTTP/1.1 request (clients would normalise the path); status and body.
async fn raw_get(app: &TestApp, target: &str) -> (u16, String) {
    let mut s = TcpStream::connect(app.addr).await.unwrap();
    let req = format!("GET {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", app.addr);
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(DEADLINE, s.read_to_end(&mut buf)).await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, text)
}

#[tokio::test]
async fn static_file_paths_never_reach_outside_web() {
    let app = spawn_app().await;
    let targets = [
        "/../Cargo.toml",
        "/../../../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/%2e%2e/Cargo.toml",
        "/..%2f..%2fetc/passwd",
        "/..%2fCargo.toml",
        "/static/../../etc/passwd",
        "/web/../Cargo.toml",
        "/..%5c..%5cCargo.toml",
        "/%5c..%5cCargo.toml",
        "/..%255c..%255cCargo.toml",
        "/%2e%2e%5cCargo.toml",
        "/..\\..\\Cargo.toml",
        "/index.html/../../Cargo.toml",
        "/api-docs.js/..%2f..%2fsrc%2fmain.rs",
        "/api/docs/..%2f..%2fCargo.toml",
        "/api/docs/../../Cargo.toml",
        "//etc/passwd",
        "/%00../Cargo.toml",
        "/....//....//etc/passwd",
        "/%c0%ae%c0%ae/Cargo.toml",
        "/src/main.rs",
        "/Cargo.toml",
    ];
    for t in targets {
        let (status, text) = raw_get(&app, t).await;
        assert!(matches!(status, 200 | 400 | 404), "{t}: {status}");
        for secret in ["[package]", "root:x:0", "fn main", "[dependencies]"] {
            assert!(!text.contains(secret), "{t} leaked a file: {text}");
        }
        if status == 200 {
            assert!(text.contains("<!doctype html>"), "{t}: 200 must be the page itself");
        }
    }
    // The real files are still served.
    let (status, text) = raw_get(&app, "/app.js").await;
    assert_eq!(status, 200, "{text}");
}

#[tokio::test]
async fn broken_request_bodies_get_json_errors_never_5xx() {
    let app = spawn_app_with(&["--max-body-bytes", "4096"]).await;
    let t = app.user("betty").await;
    app.room(&t, "bodies", "public").await;
    let send = |ct: Option<&'static str>, body: Vec<u8>| {
        let mut r = app.http.post(app.url("/api/v1/rooms/bodies/messages")).bearer_auth(&t).body(body);
        if let Some(ct) = ct {
            r = r.header("content-type", ct);
        }
        async move {
            let resp = r.send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let json = Some("application/json");
    let huge = format!(r#"{{"body":"{}"}}"#, "x".repeat(10_000)).into_bytes();
    let (s, b) = send(json, huge).await;
    assert_eq!((s, b["error"]["code"].as_str()), (413, Some("payload_too_large")), "{b}");

    let nested = "[".repeat(3000).into_bytes();
    let cases: Vec<(&str, Option<&'static str>, Vec<u8>, &str)> = vec![
        ("truncated", json, br#"{"body":"hel"#.to_vec(), "EOF"),
        ("not JSON", json, b"body=hello".to_vec(), "expected"),
        ("wrong field type", json, br#"{"body":5}"#.to_vec(), "body"),
        ("missing field", json, br#"{"client_id":"x"}"#.to_vec(), "body"),
        ("array", json, b"[1,2]".to_vec(), "expected"),
        ("empty", json, Vec::new(), "EOF"),
        ("invalid UTF-8", json, b"{\"body\":\"\xff\xfe\"}".to_vec(), ""),
        ("deep nesting", json, nested, ""),
        ("text/plain", Some("text/plain"), br#"{"body":"hi"}"#.to_vec(), "Content-Type"),
        ("no content type", None, br#"{"body":"hi"}"#.to_vec(), "Content-Type"),
        ("form", Some("application/x-www-form-urlencoded"), b"body=hi".to_vec(), "Content-Type"),
    ];
    for (what, ct, body, names) in cases {
        let (s, b) = send(ct, body).await;
        assert!(matches!(s, 400 | 415), "{what}: {s} {b}");
        assert_eq!(b["error"]["code"], "bad_request", "{what}: {b}");
        let msg = b["error"]["message"].as_str().unwrap_or_default();
        assert!(
            msg.to_lowercase().contains(&names.to_lowercase()),
            "{what}: the message should name the problem: {msg}"
        );
    }
    for path in ["/api/v1/register", "/api/v1/login", "/api/v1/rooms", "/api/v1/me"] {
        let resp = app.http.post(app.url(path)).bearer_auth(&t).header("content-type", "application/json");
        let status = resp.body(r#"{"username":"#).send().await.unwrap().status().as_u16();
        assert!((400..500).contains(&status), "{path}: {status}");
    }
    // Still serving.
    let (s, _) = app.post(Some(&t), "/api/v1/rooms/bodies/messages", json!({"body": "ok"})).await;
    assert_eq!(s, 201);
}

#[tokio::test]
async fn hostile_websocket_frames_get_errors_or_1009_and_nothing_else_breaks() {
    let app = spawn_app_with(&["--max-frame-bytes", "200000"]).await;
    let t = app.user("wendy").await;
    app.room(&t, "frames", "public").await;
    let mut ws = app.ws(&t).await;
    let deep_array = "[".repeat(100_000);
    let deep_object = format!(r#"{{"type":"send","room":"frames","body":{}}}"#, r#"{"a":"#.repeat(30_000));
    let deep_closed = format!("{}{}", "[".repeat(50_000), "]".repeat(50_000));
    let frames = [
        "not json at all",
        "{\"type\":\"send\",\"room\":\"frames\",\"body\":\"unterminated",
        "\u{0}\u{1}\u{2}",
        "{\"type\":\"send\",\"room\":\"frames\",\"body\":\"x\",\"body\":\"twice\"}",
        "{\"type\":\"history\",\"room\":\"frames\",\"limit\":99999999999999999999}",
        deep_array.as_str(),
        deep_object.as_str(),
        deep_closed.as_str(),
    ];
    for f in frames {
        ws.inner.send(Message::text(f)).await.unwrap();
        let e = ws.next_json().await;
        assert_eq!(e["type"], "error", "{}: {e}", &f[..f.len().min(40)]);
        assert_eq!(e["code"], "bad_frame", "{e}");
    }
    ws.send(json!({"type": "send", "room": "frames", "body": "<script>alert(1)</script>", "req": "s"})).await;
    assert_eq!(ws.next_of("ack").await["req"], "s");

    // Above --max-frame-bytes: closed with 1009, and the server goes on.
    ws.inner.send(Message::text("x".repeat(300_000))).await.unwrap();
    assert_eq!(ws.closed().await, Some(1009));
    let mut again = app.ws(&t).await;
    again.send(json!({"type": "ping", "req": "p"})).await;
    assert_eq!(again.next_of("pong").await["req"], "p");
    let (s, h) = app.get(Some(&t), "/api/v1/rooms/frames/messages").await;
    assert_eq!(s, 200);
    assert_eq!(h["messages"].as_array().unwrap().last().unwrap()["body"], "<script>alert(1)</script>");
}

#[tokio::test]
async fn the_api_docs_page_is_bundled_and_loads_nothing_from_elsewhere() {
    let app = spawn_app().await;
    // `/api/docs` redirects to the bundled Swagger UI at `/api/docs/`.
    let page = app.http.get(app.url("/api/docs")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.url().path().ends_with("/api/docs/"), "{}", page.url());
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"), "{csp}");
    let html = page.text().await.unwrap();
    let init = app.http.get(app.url("/api/docs/swagger-initializer.js")).send().await.unwrap().text().await.unwrap();
    // Try-it-out with a token box (the bearer scheme's "Authorize"), the document from this server.
    assert!(init.contains("\"url\": \"/api/v1/openapi.json\"") && init.contains("\"tryItOutEnabled\": true"), "{init}");
    assert!(init.contains("\"validatorUrl\": \"none\""), "{init}");
    for asset in ["swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css"] {
        assert!(html.contains(&format!("./{asset}")), "{asset}");
        let r = app.http.get(app.url(&format!("/api/docs/{asset}"))).send().await.unwrap();
        assert_eq!(r.status(), 200, "{asset} is bundled");
        assert!(r.headers().contains_key("content-security-policy"));
    }
    for (name, text) in [("page", &html), ("initializer", &init)] {
        // Same-origin only: no absolute URL, no protocol-relative one, no inline script.
        for bad in ["http://", "https://", "src=\"//", "href=\"//", "<script>"] {
            assert!(!text.contains(bad), "the {name} refers to another origin or inlines script ({bad})");
        }
    }
    let (s, doc) = app.get(None, "/api/v1/openapi.json").await;
    assert_eq!(s, 200);
    assert!(doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer", "a token box: {doc}");
}

/// The committed fuzz corpora (and seeds), replayed through the fuzz targets' checks on stable.
#[path = "../../fuzz/checks.rs"]
mod checks;

#[test]
fn the_fuzz_corpora_replay_cleanly() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    for (target, check) in [("ws_frame", checks::ws_frame as fn(&[u8])), ("tcp_line", checks::tcp_line)] {
        let mut n = 0;
        for dir in ["corpus", "seeds"] {
            let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else { continue };
            for e in entries {
                let path = e.unwrap().path();
                check(&std::fs::read(&path).unwrap());
                n += 1;
            }
        }
        assert!(n >= 4, "{target}: only {n} inputs found under fuzz/");
    }
}

#[tokio::test]
async fn websocket_closes_complete_the_handshake_and_protocol_errors_say_why() {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

    let app = spawn_app().await;
    let t = app.user("carol").await;

    // A client's close is answered with a close (RFC 6455 §5.5.1), not a dropped connection.
    let mut ws = app.ws(&t).await;
    ws.inner.close(None).await.unwrap();
    let reply = tokio::time::timeout(DEADLINE, ws.inner.next()).await.expect("a close reply in time");
    assert!(matches!(reply, Some(Ok(Message::Close(_)))), "{reply:?}");

    // Text that is not UTF-8: 1007. A reserved bit or opcode: 1002.
    let bad_utf8 = Frame::message(vec![b'{', 0xff, 0xfe, b'}'], OpCode::Data(Data::Text), true);
    let mut rsv = Frame::message(b"{}".to_vec(), OpCode::Data(Data::Text), true);
    rsv.header_mut().rsv1 = true;
    let reserved_op = Frame::message(b"x".to_vec(), OpCode::Data(Data::Reserved(3)), true);
    for (frame, code) in [(bad_utf8, 1007), (rsv, 1002), (reserved_op, 1002)] {
        let mut ws = app.ws(&t).await;
        ws.inner.send(Message::Frame(frame)).await.unwrap();
        assert_eq!(ws.closed().await, Some(code));
    }
    let mut ws = app.ws(&t).await;
    ws.send(json!({"type": "ping", "req": "after"})).await;
    assert_eq!(ws.next_of("pong").await["req"], "after");
}
