//! `spawn_app()`: a real server on port 0 with a fresh data directory, and clients that speak to it
//! over real sockets. Waits are on events, with a generous deadline only to fail instead of hanging.

use std::net::SocketAddr;
use std::sync::Arc;

use parley::core::ports::clock::ManualClock;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub use parley_testkit::DEADLINE;
pub use parley_testkit::wait;

pub struct TestApp {
    pub addr: SocketAddr,
    pub tcp_addr: SocketAddr,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
    /// For a node run as the real binary (see [`spawn_binary`]).
    process: Option<Process>,
}

/// A server process, killed when dropped so that a failing test leaves nothing running.
pub struct Process(pub std::process::Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Flags every test server gets: cheap password hashing, a fresh data directory.
pub fn base_flags(dir: &std::path::Path) -> Vec<String> {
    [
        "--listen",
        "127.0.0.1:0",
        "--tcp-listen",
        "127.0.0.1:0",
        "--argon2-memory-kib",
        "1024",
        "--argon2-iterations",
        "1",
        "--data-dir",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([dir.display().to_string()])
    .collect()
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

pub async fn spawn_app_with(extra: &[&str]) -> TestApp {
    spawn_in(tempfile::tempdir().unwrap(), extra).await
}

/// [`spawn_app_with`] on a clock the test moves: time-based rules (message times, sessions, retention
/// cutoffs) read it, so a test advances it instead of waiting for real time to pass.
pub async fn spawn_app_clocked(extra: &[&str]) -> (TestApp, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::default());
    let app = spawn_on(tempfile::tempdir().unwrap(), extra, Some(clock.clone())).await;
    (app, clock)
}

pub async fn spawn_in(dir: tempfile::TempDir, extra: &[&str]) -> TestApp {
    spawn_on(dir, extra, None).await
}

async fn spawn_on(dir: tempfile::TempDir, extra: &[&str], clock: Option<Arc<ManualClock>>) -> TestApp {
    let mut flags = base_flags(dir.path());
    flags.extend(extra.iter().map(|s| s.to_string()));
    let mut config = parley::config::Config::from_flags(flags).unwrap();
    if let Some(clock) = clock {
        config.clock = parley::config::NodeClock(clock);
    }
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (addr, tcp_addr) = (http.local_addr().unwrap(), tcp.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let listeners = parley::server::Listeners { http, tcp: Some(tcp) };
    let handle = tokio::spawn(parley::server::run(config, listeners, async move {
        let _ = stopped.await;
    }));
    TestApp { addr, tcp_addr, http: reqwest::Client::new(), dir, stop: Some(stop), handle: Some(handle), process: None }
}

/// Runs the real `parley` binary (so it can be SIGKILLed) with the test flags plus `extra`; its TCP
/// line port is off.
pub fn spawn_binary(extra: &[&str]) -> TestApp {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut flags = base_flags(dir.path());
    let tcp = flags.iter().position(|f| f == "--tcp-listen").unwrap();
    flags[tcp + 1] = "off".to_owned();
    flags.extend(extra.iter().map(|s| s.to_string()));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_parley"))
        .arg("serve")
        .args(flags)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let process = Process(child);
    let start = line.find("http://").unwrap_or_else(|| panic!("the server prints its URL, got {line:?}")) + 7;
    let addr: SocketAddr = line[start..].split('/').next().unwrap().parse().unwrap();
    TestApp {
        addr,
        tcp_addr: addr,
        http: reqwest::Client::new(),
        dir,
        stop: None,
        handle: None,
        process: Some(process),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn post(&self, token: Option<&str>, path: &str, body: Value) -> (u16, Value) {
        let mut req = self.http.post(self.url(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, token: Option<&str>, path: &str) -> (u16, Value) {
        let mut req = self.http.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Registers and logs in `name` (password "password-{name}"); returns the token.
    pub async fn user(&self, name: &str) -> String {
        let (s, b) = self
            .post(None, "/api/v1/register", json!({"username": name, "password": format!("password-{name}")}))
            .await;
        assert_eq!(s, 201, "register {name}: {b}");
        self.login(name).await
    }

    pub async fn login(&self, name: &str) -> String {
        let (s, b) =
            self.post(None, "/api/v1/login", json!({"username": name, "password": format!("password-{name}")})).await;
        assert_eq!(s, 200, "login {name}: {b}");
        b["token"].as_str().unwrap().to_owned()
    }

    /// Creates a room as `token`'s user; returns its id.
    pub async fn room(&self, token: &str, name: &str, visibility: &str) -> i64 {
        let (s, b) = self.post(Some(token), "/api/v1/rooms", json!({"name": name, "visibility": visibility})).await;
        assert_eq!(s, 201, "create room {name}: {b}");
        b["id"].as_i64().unwrap()
    }

    pub async fn join(&self, token: &str, room: &str) {
        let (s, b) = self.post(Some(token), &format!("/api/v1/rooms/{room}/join"), json!({})).await;
        assert_eq!(s, 200, "join {room}: {b}");
    }

    pub async fn ws(&self, token: &str) -> Ws {
        self.ws_query(token, "").await
    }

    /// A socket opened with `?resume=1`: live delivery waits for its first `resume` frame.
    pub async fn ws_resuming(&self, token: &str) -> Ws {
        self.ws_query(token, "&resume=1").await
    }

    async fn ws_query(&self, token: &str, extra: &str) -> Ws {
        let ws = self.ws_raw(&format!("/ws?token={token}{extra}")).await.expect("websocket upgrade");
        let mut ws = Ws { inner: ws };
        let hello = ws.next_json().await;
        assert_eq!(hello["type"], "hello", "{hello}");
        ws
    }

    pub async fn ws_raw(
        &self,
        path_and_query: &str,
    ) -> Result<WebSocketStream<MaybeTlsStream<TcpStream>>, tokio_tungstenite::tungstenite::Error> {
        let mut req = format!("ws://{}{}", self.addr, path_and_query).into_client_request().unwrap();
        req.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_static("parley.v1"));
        tokio_tungstenite::connect_async(req).await.map(|(ws, _)| ws)
    }

    /// SIGKILLs a node started with [`spawn_binary`].
    pub fn kill(&mut self) {
        drop(self.process.take().expect("a node run as a process"));
    }

    /// Runs the shutdown protocol and waits for it to finish.
    pub async fn stop(mut self) -> tempfile::TempDir {
        self.stop.take().unwrap().send(()).unwrap();
        tokio::time::timeout(DEADLINE, self.handle.take().unwrap()).await.expect("shutdown in time").unwrap().unwrap();
        self.dir
    }
}

pub struct Ws {
    pub inner: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Ws {
    pub async fn send(&mut self, v: Value) {
        self.inner.send(Message::text(v.to_string())).await.unwrap();
    }

    /// The next JSON frame; panics on close or after [`DEADLINE`].
    pub async fn next_json(&mut self) -> Value {
        loop {
            let m = tokio::time::timeout(DEADLINE, self.inner.next()).await.expect("a frame in time");
            match m {
                Some(Ok(Message::Text(t))) => return serde_json::from_str(t.as_str()).unwrap(),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// The next frame of `ty`, skipping others.
    pub async fn next_of(&mut self, ty: &str) -> Value {
        loop {
            let v = self.next_json().await;
            if v["type"] == ty {
                return v;
            }
        }
    }

    /// The next `message` frame's message whose kind is `text`.
    pub async fn next_text(&mut self) -> Value {
        loop {
            let v = self.next_of("message").await;
            if v["message"]["kind"] == "text" {
                return v["message"].clone();
            }
        }
    }

    /// Reads until the server closes; the close code (None when the connection just ended).
    pub async fn closed(&mut self) -> Option<u16> {
        loop {
            match tokio::time::timeout(DEADLINE, self.inner.next()).await.expect("close in time") {
                Some(Ok(Message::Close(f))) => {
                    return f.map(|f| u16::from(f.code)).or(Some(u16::from(CloseCode::Status)));
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    }
}
