//! Production hardening: metrics, readiness, request ids in logs, abuse limits, TLS, and a flood that
//! does not starve anyone else. Metric values are shared by every server in this process, so tests
//! assert on presence and growth, never on exact values.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::harness::*;

/// The value of one series (`name` or `name{labels}`) in a text exposition.
fn series(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

async fn metrics_text(app: &TestApp) -> String {
    let resp = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("text/plain"), "{ct}");
    resp.text().await.unwrap()
}

#[tokio::test]
async fn metrics_expose_every_series_and_grow_with_traffic() {
    let app = spawn_app().await;
    let before = metrics_text(&app).await;
    for name in [
        "parley_connections_open{transport=\"ws\"}",
        "parley_connections_open{transport=\"sse\"}",
        "parley_connections_open{transport=\"tcp\"}",
        "parley_connections_total{transport=\"ws\"}",
        "parley_messages_received_total",
        "parley_messages_delivered_total",
        "parley_slow_client_disconnects_total",
        "parley_jobs_queued",
    ] {
        assert!(series(&before, name).is_some(), "{name} missing from:\n{before}");
    }
    let received = series(&before, "parley_messages_received_total").unwrap();
    let delivered = series(&before, "parley_messages_delivered_total").unwrap();
    let connections = series(&before, "parley_connections_total{transport=\"ws\"}").unwrap();

    let a = app.user("metra").await;
    app.room(&a, "metered", "public").await;
    let mut ws = app.ws(&a).await;
    ws.send(json!({"type": "send", "room": "metered", "body": "count me", "req": "m1"})).await;
    // The delivery and the ack come in either order.
    let (mut acked, mut got) = (false, false);
    while !(acked && got) {
        let v = ws.next_json().await;
        acked |= v["type"] == "ack";
        got |= v["type"] == "message" && v["message"]["body"] == "count me";
    }

    let after = metrics_text(&app).await;
    assert!(series(&after, "parley_messages_received_total").unwrap() > received);
    // The delivery is counted after its write; the ack above came before or after it, so look again
    // until the counter moves (each look is a real scrape).
    let mut after = after;
    while series(&after, "parley_messages_delivered_total").unwrap() <= delivered {
        after = timeout(DEADLINE, metrics_text(&app)).await.expect("delivery counted");
    }
    assert!(series(&after, "parley_connections_total{transport=\"ws\"}").unwrap() > connections);
    for name in
        ["parley_ack_latency_seconds_count", "parley_store_append_seconds_count", "parley_broker_publish_seconds_count"]
    {
        assert!(series(&after, name).unwrap_or(0.0) >= 1.0, "{name} in:\n{after}");
    }
    assert!(after.contains("parley_ack_latency_seconds_bucket{le=\""), "{after}");
    app.stop().await;
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = spawn_app().await;
    let resp = app.http.get(app.url("/healthz")).send().await.unwrap();
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 16, "{id}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    // A proxy's id is kept and echoed.
    let resp = app.http.get(app.url("/api/v1/me")).header("x-request-id", "from-proxy-42").send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["x-request-id"], "from-proxy-42");
    app.stop().await;
}

#[tokio::test]
async fn json_logs_carry_the_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_parley"))
        .arg("serve")
        .args(base_flags(dir.path()))
        .args(["--log-format", "json"])
        .env("PARLEY_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // In JSON mode the banner is a log line too, with the URL as a field; stdout stays empty.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("Parley is running") {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "the banner line");
    }
    let banner: Value = serde_json::from_str(&line).expect("the banner is a JSON log line");
    let url = banner["fields"]["url"].as_str().expect("a url field").trim_end_matches('/').to_owned();
    let resp = reqwest::Client::new()
        .post(format!("{url}/api/v1/register"))
        .header("x-request-id", "trace-me-7")
        .json(&json!({"username": "logan", "password": "password-logan"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    // The "registered" event is logged inside the request's span.
    let mut reader = tokio::task::spawn_blocking(move || {
        stderr.lines().map_while(Result::ok).find(|l| l.contains("\"registered\""))
    });
    let found = timeout(DEADLINE, &mut reader).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let line = found.expect("the log line in time").unwrap().expect("a registered line");
    let v: Value = serde_json::from_str(&line).expect("a JSON log line");
    let spans = v["spans"].as_array().expect("span list");
    assert!(spans.iter().any(|s| s["request_id"] == "trace-me-7"), "{v}");
}

#[tokio::test]
async fn oversize_bodies_are_413_with_a_json_error() {
    let app = spawn_app_with(&["--max-body-bytes", "1024"]).await;
    let big = "x".repeat(4096);
    let resp = app
        .http
        .post(app.url("/api/v1/register"))
        .header("content-type", "application/json")
        .body(format!(r#"{{"username":"big","password":"{big}"}}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "payload_too_large", "{v}");
    // Also where no JSON extractor reads the body.
    let resp = app.http.post(app.url("/api/v1/logout")).body(big.clone()).send().await.unwrap();
    assert!(resp.status() == 413 || resp.status() == 401, "{}", resp.status());
    app.stop().await;
}

fn assert_rate_limited(resp_status: u16, retry_after: Option<&str>, body: &Value) {
    assert_eq!(resp_status, 429, "{body}");
    assert!(retry_after.and_then(|s| s.parse::<u64>().ok()).is_some_and(|s| s >= 1), "{retry_after:?}");
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    assert!(body["error"]["retry_after_ms"].as_u64().is_some_and(|ms| ms >= 1), "{body}");
}

/// A TCP line session: reads lines, writes commands.
struct Lines<S> {
    r: tokio::io::BufReader<tokio::io::ReadHalf<S>>,
    w: tokio::io::WriteHalf<S>,
}

impl<S: AsyncRead + AsyncWrite> Lines<S> {
    fn new(s: S) -> Self {
        let (r, w) = tokio::io::split(s);
        Lines { r: tokio::io::BufReader::new(r), w }
    }
    async fn send(&mut self, line: &str) {
        self.w.write_all(format!("{line}\n").as_bytes()).await.unwrap();
    }
    /// The next line; `None` when the server closed.
    async fn next(&mut self) -> Option<String> {
        let mut l = String::new();
        let n = timeout(DEADLINE, self.r.read_line(&mut l)).await.expect("a line in time").ok()?;
        (n > 0).then(|| l.trim_end().to_owned())
    }
    /// Reads until a line starting with `prefix`.
    async fn until(&mut self, prefix: &str) -> String {
        loop {
            let l = self.next().await.unwrap_or_else(|| panic!("closed before {prefix:?}"));
            if l.starts_with(prefix) {
                return l;
            }
        }
    }
}

#[tokio::test]
async fn login_and_registration_are_limited_per_address() {
    let app = spawn_app_with(&["--auth-per-minute", "0.01", "--auth-burst", "3"]).await;
    let (s, _) = app.post(None, "/api/v1/register", json!({"username": "ipuser", "password": "password-ip"})).await;
    assert_eq!(s, 201);
    for _ in 0..2 {
        let (s, b) = app.post(None, "/api/v1/login", json!({"username": "ipuser", "password": "wrong-pass"})).await;
        assert_eq!(s, 401, "{b}");
    }
    let resp = app
        .http
        .post(app.url("/api/v1/login"))
        .json(&json!({"username": "ipuser", "password": "password-ip"}))
        .send()
        .await
        .unwrap();
    let (status, ra) =
        (resp.status().as_u16(), resp.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned()));
    assert_rate_limited(status, ra.as_deref(), &resp.json().await.unwrap());
    let (s, b) = app.post(None, "/api/v1/register", json!({"username": "another", "password": "password-x"})).await;
    assert_eq!((s, b["error"]["code"].as_str()), (429, Some("rate_limited")), "{b}");
    // The same address over the line protocol shares the budget.
    let mut tcp = Lines::new(TcpStream::connect(app.tcp_addr).await.unwrap());
    tcp.until("* Welcome").await;
    tcp.send("/login ipuser password-ip").await;
    assert!(tcp.until("ERR").await.starts_with("ERR rate_limited "));
    app.stop().await;
}

#[tokio::test]
async fn messages_per_user_share_one_budget_across_transports() {
    let app = spawn_app_with(&["--messages-per-sec", "0.01", "--message-burst", "3"]).await;
    let t = app.user("chatty").await;
    app.room(&t, "budget", "public").await;
    for i in 0..3 {
        let (s, b) = app.post(Some(&t), "/api/v1/rooms/budget/messages", json!({"body": format!("m{i}")})).await;
        assert_eq!(s, 201, "{b}");
    }
    let resp = app
        .http
        .post(app.url("/api/v1/rooms/budget/messages"))
        .bearer_auth(&t)
        .json(&json!({"body": "one too many"}))
        .send()
        .await
        .unwrap();
    let (status, ra) =
        (resp.status().as_u16(), resp.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned()));
    assert_rate_limited(status, ra.as_deref(), &resp.json().await.unwrap());

    let mut ws = app.ws(&t).await;
    ws.send(json!({"type": "send", "room": "budget", "body": "ws too", "req": "w1"})).await;
    let e = ws.next_of("error").await;
    assert_eq!((e["code"].as_str(), e["req"].as_str()), (Some("rate_limited"), Some("w1")), "{e}");
    assert!(e["retry_after_ms"].as_u64().is_some_and(|ms| ms >= 1), "{e}");

    let mut tcp = Lines::new(TcpStream::connect(app.tcp_addr).await.unwrap());
    tcp.send("/login chatty password-chatty").await;
    tcp.until("* Hello").await;
    tcp.send("/go budget").await;
    tcp.until("* Current room").await;
    tcp.send("tcp too").await;
    assert!(tcp.until("ERR").await.starts_with("ERR rate_limited "));
    let metrics = metrics_text(&app).await;
    assert!(series(&metrics, "parley_rate_limited_total{limit=\"messages\"}").unwrap_or(0.0) >= 3.0, "{metrics}");
    app.stop().await;
}

#[tokio::test]
async fn connections_are_capped_per_user_and_in_total() {
    let app = spawn_app_with(&["--max-connections-per-user", "2", "--max-connections", "3"]).await;
    let a = app.user("capa").await;
    let b = app.user("capb").await;
    let c = app.user("capc").await;
    let mut a1 = app.ws(&a).await;
    let _a2 = app.ws(&a).await;
    match app.ws_raw(&format!("/ws?token={a}")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 429);
            assert!(resp.headers().contains_key("retry-after"));
            let body: Value = serde_json::from_slice(resp.body().as_deref().unwrap_or(b"null")).unwrap();
            assert_eq!(body["error"]["code"], "too_many_connections", "{body}");
        }
        other => panic!("expected a 429 refusal, got {:?}", other.map(|_| ())),
    }
    let resp = app.http.get(app.url("/api/v1/events")).bearer_auth(&a).send().await.unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"]["code"], "too_many_connections");
    let mut tcp = Lines::new(TcpStream::connect(app.tcp_addr).await.unwrap());
    tcp.send("/login capa password-capa").await;
    assert!(tcp.until("ERR").await.starts_with("ERR too_many_connections "));
    while tcp.next().await.is_some() {} // then closed

    let _b1 = app.ws(&b).await; // the third connection: the total is reached
    assert!(matches!(
        app.ws_raw(&format!("/ws?token={c}")).await,
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 429
    ));

    // A closed connection frees its place (the server notices the close, then releases it).
    a1.inner.close(None).await.unwrap();
    a1.closed().await;
    let mut attempts = 0;
    loop {
        attempts += 1;
        match app.ws_raw(&format!("/ws?token={c}")).await {
            Ok(_) => break,
            Err(_) if attempts < 10_000 => tokio::task::yield_now().await,
            Err(e) => panic!("the place was never freed: {e}"),
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn a_flooding_user_is_refused_while_others_are_served_in_order() {
    const FLOOD: usize = 400;
    const CALM: usize = 8;
    let app = spawn_app_with(&["--messages-per-sec", "0.5", "--message-burst", "10"]).await;
    let owner = app.user("host").await;
    let room = app.room(&owner, "commons", "public").await;
    let flooder = app.user("flooder").await;
    let calm = app.user("calm").await;
    app.join(&flooder, "commons").await;
    app.join(&calm, "commons").await;
    let mut watcher = app.ws(&owner).await;
    let mut f = app.ws(&flooder).await;
    let mut c = app.ws(&calm).await;

    let flood = tokio::spawn(async move {
        for i in 0..FLOOD {
            f.send(json!({"type": "send", "room": room, "body": format!("spam{i}"), "req": format!("f{i}")})).await;
        }
        let (mut acked, mut limited) = (0, 0);
        while acked + limited < FLOOD {
            let v = f.next_json().await;
            match v["type"].as_str() {
                Some("ack") => acked += 1,
                Some("error") => {
                    assert_eq!(v["code"], "rate_limited", "{v}");
                    limited += 1;
                }
                _ => {}
            }
        }
        (acked, limited)
    });
    // Meanwhile the calm user sends one message at a time; each is acknowledged.
    let mut calm_seqs = Vec::new();
    for i in 0..CALM {
        c.send(json!({"type": "send", "room": room, "body": format!("calm{i}"), "client_id": format!("c{i}")})).await;
        let v = loop {
            let v = c.next_json().await;
            if v["type"] == "ack" || v["type"] == "error" {
                break v;
            }
        };
        assert_eq!(v["type"], "ack", "calm message {i}: {v}");
        calm_seqs.push(v["seq"].as_i64().unwrap());
    }
    let (acked, limited) = timeout(DEADLINE * 2, flood).await.expect("flood answered").unwrap();
    // The burst and a little refill get through; the rest is refused.
    assert!((10..FLOOD / 4).contains(&acked), "the flooder got {acked} acks");
    assert_eq!(acked + limited, FLOOD);

    // Every calm message reaches the room, in order, among the flooder's accepted ones.
    let mut seen = Vec::new();
    while seen.len() < CALM {
        let m = watcher.next_text().await;
        if m["sender"]["username"] == "calm" {
            assert_eq!(m["body"], format!("calm{}", seen.len()));
            seen.push(m["seq"].as_i64().unwrap());
        }
    }
    assert_eq!(seen, calm_seqs);
    app.stop().await;
}

// ---- readiness ---------------------------------------------------------------------------------

/// A TCP forwarder to PostgreSQL that the test can take down (closing every forwarded connection) and
/// bring back on the same port.
struct Proxy {
    addr: SocketAddr,
    upstream: String,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Proxy {
    async fn start(addr: SocketAddr, upstream: String) -> Proxy {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = upstream.clone();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((mut client, _)) = listener.accept().await else { continue };
                let up = up.clone();
                conns.spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&up).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                while conns.try_join_next().is_some() {}
            }
        });
        Proxy { addr, upstream, task: Some(task) }
    }

    /// Stops accepting and cuts every forwarded connection (dropping the task drops its JoinSet).
    async fn down(&mut self) {
        let task = self.task.take().unwrap();
        task.abort();
        let _ = task.await;
    }

    async fn up(&mut self) {
        *self = Proxy::start(self.addr, self.upstream.clone()).await;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

async fn readyz(app: &TestApp) -> (u16, Value) {
    app.get(None, "/readyz").await
}

#[tokio::test]
async fn readiness_fails_while_the_store_is_unreachable_and_recovers() {
    use sqlx::Connection;
    use sqlx::postgres::{PgConnectOptions, PgConnection};
    use std::str::FromStr;

    let Some(url) = std::env::var("PARLEY_TEST_POSTGRES_URL").ok().filter(|u| !u.trim().is_empty()) else {
        eprintln!(
            "SKIPPED readiness_fails_while_the_store_is_unreachable_and_recovers: set PARLEY_TEST_POSTGRES_URL \
             (e.g. postgres://postgres@127.0.0.1:5432/test)"
        );
        return;
    };
    let opts = PgConnectOptions::from_str(&url).expect("PARLEY_TEST_POSTGRES_URL is a URL");
    let upstream = format!("{}:{}", opts.get_host(), opts.get_port());
    let mut admin = PgConnection::connect_with(&opts).await.expect("PostgreSQL reachable");
    let schema = format!("parley_ready_{}", hex::encode(rand::random::<[u8; 6]>()));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&mut admin).await.unwrap();

    let mut proxy = Proxy::start("127.0.0.1:0".parse().unwrap(), upstream).await;
    // The same database through the proxy, in this test's own schema.
    let user = opts.get_username();
    let db = opts.get_database().unwrap_or("postgres");
    let server_url = format!("postgres://{user}@{}/{db}?options=-c%20search_path%3D{schema}", proxy.addr);
    let app = spawn_app_with(&["--database-url", &server_url]).await;

    let (s, b) = readyz(&app).await;
    assert_eq!((s, b["status"].as_str()), (200, Some("ready")), "{b}");
    assert_eq!(b["checks"]["store"], "ok");

    proxy.down().await;
    let (s, b) = readyz(&app).await;
    assert_eq!(s, 503, "{b}");
    assert_eq!(b["error"]["code"], "not_ready", "{b}");
    assert_eq!(b["checks"]["store"], "unreachable", "{b}");
    assert_eq!(b["checks"]["broker"], "ok", "{b}");
    assert!(b["error"]["message"].as_str().unwrap().contains("store"), "{b}");

    proxy.up().await;
    // The pool reconnects on its next use; each look is a real readiness check.
    let mut last = (0, Value::Null);
    for _ in 0..20 {
        last = readyz(&app).await;
        if last.0 == 200 {
            break;
        }
    }
    assert_eq!(last.0, 200, "not ready again after the store came back: {}", last.1);
    // And it works: a user can register through the recovered pool.
    app.user("phoenix").await;

    app.stop().await;
    drop(proxy);
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE"))).execute(&mut admin).await.unwrap();
    let _ = admin.close().await;
}

// ---- TLS ---------------------------------------------------------------------------------------

struct Tls {
    connector: tokio_rustls::TlsConnector,
}

impl Tls {
    fn trusting(cert_der: rustls_pki_types::CertificateDer<'static>) -> Tls {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert_der).unwrap();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Tls { connector: tokio_rustls::TlsConnector::from(Arc::new(config)) }
    }

    async fn connect(&self, addr: SocketAddr) -> tokio_rustls::client::TlsStream<TcpStream> {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        self.connector.connect(name, tcp).await.expect("TLS handshake")
    }

    /// One HTTP/1.1 request over TLS; the status and the body.
    async fn request(&self, addr: SocketAddr, method: &str, path: &str, body: Option<Value>) -> (u16, String) {
        let mut s = self.connect(addr).await;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        // A peer that closes without close_notify still gave us the whole response.
        let _ = timeout(DEADLINE, s.read_to_end(&mut raw)).await.expect("a response in time");
        let text = String::from_utf8_lossy(&raw).into_owned();
        let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status line");
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
        (status, body)
    }
}

#[tokio::test]
async fn tls_serves_https_wss_and_the_line_protocol() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let app = spawn_app_with(&["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()]).await;
    let tls = Tls::trusting(certified.cert.der().clone());

    let (s, body) = tls.request(app.addr, "GET", "/healthz", None).await;
    assert_eq!((s, body.as_str()), (200, "ok"));
    let (s, _) = tls
        .request(app.addr, "POST", "/api/v1/register", Some(json!({"username": "tilly", "password": "password-tilly"})))
        .await;
    assert_eq!(s, 201);
    let (s, body) = tls
        .request(app.addr, "POST", "/api/v1/login", Some(json!({"username": "tilly", "password": "password-tilly"})))
        .await;
    assert_eq!(s, 200, "{body}");
    let token = serde_json::from_str::<Value>(&body).unwrap()["token"].as_str().unwrap().to_owned();

    // WSS: the WebSocket handshake over our own TLS stream.
    let stream = tls.connect(app.addr).await;
    let mut req = format!("wss://localhost:{}/ws?token={token}", app.addr.port()).into_client_request().unwrap();
    req.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_static("parley.v1"));
    let (mut ws, _) = tokio_tungstenite::client_async(req, stream).await.expect("WSS handshake");
    let hello = match timeout(DEADLINE, ws.next()).await.unwrap() {
        Some(Ok(Message::Text(t))) => serde_json::from_str::<Value>(t.as_str()).unwrap(),
        other => panic!("expected hello, got {other:?}"),
    };
    assert_eq!((hello["type"].as_str(), hello["user"]["username"].as_str()), (Some("hello"), Some("tilly")));
    ws.send(Message::text(json!({"type": "ping", "req": "p"}).to_string())).await.unwrap();

    // Plain text on the TLS port gets no HTTP answer.
    let mut plain = TcpStream::connect(app.addr).await.unwrap();
    plain.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = Vec::new();
    let _ = timeout(DEADLINE, plain.read_to_end(&mut buf)).await;
    assert!(!String::from_utf8_lossy(&buf).contains("200 OK"));

    // The line protocol over TLS.
    let mut lines = Lines::new(tls.connect(app.tcp_addr).await);
    lines.until("* Welcome").await;
    lines.send("/login tilly password-tilly").await;
    lines.until("* Hello").await;
    lines.send("/quit").await;
    lines.until("* Bye").await;
    drop(ws);
    app.stop().await;
}
