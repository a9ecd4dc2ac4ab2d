//! The network layer: REST calls ([`Api`]) and the WebSocket task ([`spawn`]) that connects, reads frames,
//! writes what the state asks, and reconnects with backoff (logging in again when the session ended).

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until, timeout};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub use crate::proto::Login;
use crate::proto::{ClientFrame, FileRef, Member, Room, ServerFrame, User, answers};
use crate::state::{Action, NetEvent};
use parley_proto::rest::{CreateRoom, LoginReq, PatchMe, RegisterReq, SendReq};

/// A refused REST request: the protocol's error body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for ApiError {}

/// The `code` of an [`ApiError`] somewhere in `e`'s chain.
pub fn api_code(e: &anyhow::Error) -> Option<&str> {
    e.downcast_ref::<ApiError>().map(|a| a.code.as_str())
}

#[derive(Debug, Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// REST client for one server.
#[derive(Debug, Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    /// `server` is the server's base URL (`http://host:port`); a bare `host:port` means `http://`.
    pub fn new(server: &str) -> anyhow::Result<Api> {
        let server = server.trim().trim_end_matches('/');
        let base = if server.contains("://") { server.to_owned() } else { format!("http://{server}") };
        if base.starts_with("https://") {
            bail!("https:// servers are not supported by this build of the client (no TLS): use http://");
        }
        if !base.starts_with("http://") {
            bail!("the server URL must start with http:// (got {base})");
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .build()
            .context("building the HTTP client")?;
        Ok(Api { http, base })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// The WebSocket URL (`ws://…/ws`).
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", &self.base["http://".len()..])
    }

    async fn call<T: for<'de> Deserialize<'de>>(&self, req: reqwest::RequestBuilder) -> anyhow::Result<T> {
        let resp = req.send().await.with_context(|| format!("cannot reach {}", self.base))?;
        let status = resp.status();
        if status.is_success() {
            return resp.json::<T>().await.context("unreadable answer from the server");
        }
        #[derive(Deserialize)]
        struct Body {
            error: Inner,
        }
        #[derive(Deserialize)]
        struct Inner {
            code: String,
            message: String,
        }
        let text = resp.text().await.unwrap_or_default();
        Err(match serde_json::from_str::<Body>(&text) {
            Ok(b) => ApiError { status: status.as_u16(), code: b.error.code, message: b.error.message },
            Err(_) => ApiError { status: status.as_u16(), code: "http".into(), message: format!("HTTP {status}") },
        }
        .into())
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    pub async fn register(&self, creds: &Credentials) -> anyhow::Result<User> {
        let body =
            RegisterReq { username: creds.username.clone(), password: creds.password.clone(), display_name: None };
        self.call(self.http.post(self.url("/register")).json(&body)).await
    }

    pub async fn login(&self, creds: &Credentials) -> anyhow::Result<Login> {
        let body = LoginReq { username: creds.username.clone(), password: creds.password.clone() };
        self.call(self.http.post(self.url("/login")).json(&body)).await
    }

    pub async fn create_room(&self, token: &str, name: &str, private: bool) -> anyhow::Result<Room> {
        let visibility = if private { "private" } else { "public" };
        let body = CreateRoom { name: name.to_owned(), visibility: Some(visibility.to_owned()) };
        self.call(self.http.post(self.url("/rooms")).bearer_auth(token).json(&body)).await
    }

    pub async fn set_display_name(&self, token: &str, name: &str) -> anyhow::Result<User> {
        let body = PatchMe { display_name: name.to_owned() };
        self.call(self.http.patch(self.url("/me")).bearer_auth(token).json(&body)).await
    }

    pub async fn members(&self, token: &str, room: i64) -> anyhow::Result<Vec<Member>> {
        let m: answers::Members =
            self.call(self.http.get(self.url(&format!("/rooms/{room}/members"))).bearer_auth(token)).await?;
        Ok(m.members)
    }

    /// Uploads the file at `path` into `room` and sends a message (its name) sharing it. The file is
    /// read into memory first (at most the server's upload limit, 25 MiB by default).
    pub async fn upload(&self, token: &str, room: i64, path: &str) -> anyhow::Result<()> {
        let bytes = tokio::fs::read(path).await.with_context(|| format!("reading {path}"))?;
        let name = std::path::Path::new(path).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let f: FileRef = self
            .call(
                self.http
                    .post(self.url(&format!("/rooms/{room}/files")))
                    .query(&[("name", &name)])
                    .bearer_auth(token)
                    .body(bytes),
            )
            .await?;
        let body = SendReq { body: f.name, files: vec![f.id], ..SendReq::default() };
        let _: serde_json::Value = self
            .call(self.http.post(self.url(&format!("/rooms/{room}/messages"))).bearer_auth(token).json(&body))
            .await?;
        Ok(())
    }

    pub async fn public_rooms(&self, token: &str) -> anyhow::Result<Vec<Room>> {
        let r: answers::Rooms = self.call(self.http.get(self.url("/rooms")).bearer_auth(token)).await?;
        Ok(r.rooms)
    }

    pub async fn dms(&self, token: &str) -> anyhow::Result<Vec<Room>> {
        let d: answers::Conversations = self.call(self.http.get(self.url("/dms")).bearer_auth(token)).await?;
        Ok(d.conversations)
    }

    /// Ends the session; errors are ignored (the token expires anyway).
    pub async fn logout(&self, token: &str) {
        let _ = self.http.post(self.url("/logout")).bearer_auth(token).send().await;
    }
}

/// Reconnection and liveness settings.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// First wait after a drop; doubled after each failed attempt up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// How often to send an application `ping`.
    pub ping_every: Duration,
    /// Drop the connection when nothing at all was read for this long.
    pub idle_timeout: Duration,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(15),
            ping_every: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(50),
        }
    }
}

enum Cmd {
    Frame(ClientFrame),
    Shutdown,
}

/// Handle on the network task.
pub struct Network {
    cmds: mpsc::UnboundedSender<Cmd>,
    events: mpsc::UnboundedSender<NetEvent>,
    api: Api,
    token: Arc<Mutex<String>>,
    task: JoinHandle<()>,
}

impl Network {
    /// Performs the state's actions (`Quit` is the caller's business and ignored here).
    pub fn dispatch(&self, actions: impl IntoIterator<Item = Action>) {
        for a in actions {
            match a {
                Action::Send(f) => {
                    let _ = self.cmds.send(Cmd::Frame(f));
                }
                Action::CreateRoom { name, private } => {
                    let (api, token, events) = (self.api.clone(), self.token(), self.events.clone());
                    tokio::spawn(async move {
                        let ev = match api.create_room(&token, &name, private).await {
                            Ok(room) => NetEvent::RoomCreated(room),
                            Err(e) => {
                                NetEvent::RestError { what: format!("cannot create #{name}"), error: e.to_string() }
                            }
                        };
                        let _ = events.send(ev);
                    });
                }
                Action::SetDisplayName(name) => {
                    let (api, token, events) = (self.api.clone(), self.token(), self.events.clone());
                    tokio::spawn(async move {
                        let ev = match api.set_display_name(&token, &name).await {
                            Ok(user) => NetEvent::DisplayNameSet(user),
                            Err(e) => {
                                NetEvent::RestError { what: "cannot change display name".into(), error: e.to_string() }
                            }
                        };
                        let _ = events.send(ev);
                    });
                }
                Action::LoadMembers { room } => self.rest(
                    move |api, token| async move { api.members(&token, room).await },
                    move |members| NetEvent::Members { room, members },
                    "cannot list the members",
                ),
                Action::LoadPublicRooms => self.rest(
                    |api, token| async move { api.public_rooms(&token).await },
                    NetEvent::PublicRooms,
                    "cannot list rooms",
                ),
                Action::LoadDms => self.rest(
                    |api, token| async move { api.dms(&token).await },
                    NetEvent::Dms,
                    "cannot list conversations",
                ),
                Action::Upload { room, path } => self.rest(
                    move |api, token| async move { api.upload(&token, room, &path).await },
                    |_| NetEvent::Uploaded,
                    "cannot upload",
                ),
                Action::Quit | Action::Bell => {}
            }
        }
    }

    /// Runs one REST call on its own task and reports its answer (or failure) as an event.
    fn rest<T, F, Fut>(&self, call: F, ok: impl FnOnce(T) -> NetEvent + Send + 'static, what: &'static str)
    where
        T: Send + 'static,
        F: FnOnce(Api, String) -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<T>> + Send + 'static,
    {
        let (api, token, events) = (self.api.clone(), self.token(), self.events.clone());
        tokio::spawn(async move {
            let ev = match call(api, token).await {
                Ok(v) => ok(v),
                Err(e) => NetEvent::RestError { what: what.to_owned(), error: e.to_string() },
            };
            let _ = events.send(ev);
        });
    }

    /// The current session token (it changes when the client has to log in again).
    pub fn token(&self) -> String {
        self.token.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// Closes the WebSocket cleanly and stops the task.
    pub async fn shutdown(self) {
        let _ = self.cmds.send(Cmd::Shutdown);
        let _ = timeout(Duration::from_secs(2), self.task).await;
    }
}

/// Starts the network task for a logged-in user. Events (frames first of all) arrive on the receiver.
pub fn spawn(
    api: Api,
    creds: Credentials,
    token: String,
    config: NetConfig,
) -> (Network, mpsc::UnboundedReceiver<NetEvent>) {
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let token = Arc::new(Mutex::new(token));
    let task = tokio::spawn(
        Conn { api: api.clone(), creds, token: token.clone(), config, cmds: cmd_rx, events: ev_tx.clone() }.run(),
    );
    (Network { cmds: cmd_tx, events: ev_tx, api, token, task }, ev_rx)
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

enum Ended {
    Shutdown,
    Dropped { reason: String, relogin: bool, got_hello: bool },
}

struct Conn {
    api: Api,
    creds: Credentials,
    token: Arc<Mutex<String>>,
    config: NetConfig,
    cmds: mpsc::UnboundedReceiver<Cmd>,
    events: mpsc::UnboundedSender<NetEvent>,
}

/// `d` scaled by a factor in [0.75, 1.25), so many clients do not come back all at once.
fn jitter(d: Duration) -> Duration {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|t| t.subsec_nanos()).unwrap_or(0);
    d.mul_f64(0.75 + f64::from(nanos % 1000) / 2000.0)
}

impl Conn {
    fn emit(&self, e: NetEvent) {
        let _ = self.events.send(e);
    }

    fn token(&self) -> String {
        self.token.lock().map(|t| t.clone()).unwrap_or_default()
    }

    async fn connect(&self) -> Result<Ws, (String, bool)> {
        let mut req = self.api.ws_url().into_client_request().map_err(|e| (e.to_string(), false))?;
        req.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static("parley.v1"));
        let bearer = HeaderValue::from_str(&format!("Bearer {}", self.token())).map_err(|e| (e.to_string(), true))?;
        req.headers_mut().insert("Authorization", bearer);
        match timeout(Duration::from_secs(10), tokio_tungstenite::connect_async(req)).await {
            Err(_) => Err(("connection timed out".into(), false)),
            Ok(Ok((ws, _))) => Ok(ws),
            Ok(Err(tungstenite::Error::Http(resp))) if resp.status().as_u16() == 401 => {
                Err(("session no longer valid".into(), true))
            }
            Ok(Err(e)) => Err((e.to_string(), false)),
        }
    }

    async fn run(mut self) {
        let mut backoff = self.config.initial_backoff;
        let mut attempt = 0u32;
        let mut relogin = false;
        loop {
            attempt += 1;
            self.emit(NetEvent::Connecting { attempt });
            if relogin {
                match self.api.login(&self.creds).await {
                    Ok(login) => {
                        if let Ok(mut t) = self.token.lock() {
                            *t = login.token;
                        }
                    }
                    Err(e) if matches!(api_code(&e), Some("invalid_credentials" | "invalid_username")) => {
                        self.emit(NetEvent::Fatal(format!("cannot log in again: {e}")));
                        self.idle_until_shutdown().await;
                        return;
                    }
                    Err(e) => {
                        let reason = format!("logging in again: {e}");
                        if self.wait(&reason, &mut backoff).await {
                            return;
                        }
                        continue;
                    }
                }
            }
            let reason = match self.connect().await {
                Ok(ws) => match self.serve(ws).await {
                    Ended::Shutdown => return,
                    Ended::Dropped { reason, relogin: again, got_hello } => {
                        if got_hello {
                            backoff = self.config.initial_backoff;
                            attempt = 0;
                        }
                        relogin = again;
                        reason
                    }
                },
                Err((reason, again)) => {
                    relogin = again;
                    reason
                }
            };
            if self.wait(&reason, &mut backoff).await {
                return;
            }
        }
    }

    /// Reports the drop and waits out the backoff; true when asked to shut down meanwhile.
    async fn wait(&mut self, reason: &str, backoff: &mut Duration) -> bool {
        let d = jitter(*backoff);
        self.emit(NetEvent::Disconnected { reason: reason.to_owned(), retry_in: d });
        *backoff = (*backoff * 2).min(self.config.max_backoff);
        let deadline = Instant::now() + d;
        loop {
            tokio::select! {
                _ = sleep_until(deadline) => return false,
                cmd = self.cmds.recv() => match cmd {
                    // Frames asked for while offline are dropped: the state resends what matters on `hello`.
                    Some(Cmd::Frame(_)) => {}
                    Some(Cmd::Shutdown) | None => return true,
                },
            }
        }
    }

    async fn idle_until_shutdown(&mut self) {
        while let Some(cmd) = self.cmds.recv().await {
            if matches!(cmd, Cmd::Shutdown) {
                return;
            }
        }
    }

    async fn serve(&mut self, ws: Ws) -> Ended {
        let (mut sink, mut stream) = ws.split();
        let mut got_hello = false;
        let mut last_read = Instant::now();
        let mut next_ping = Instant::now() + self.config.ping_every;
        let mut close: Option<(u16, String)> = None;
        loop {
            tokio::select! {
                msg = stream.next() => {
                    last_read = Instant::now();
                    match msg {
                        Some(Ok(WsMessage::Text(text))) => {
                            if let Some(frame) = ServerFrame::decode(text.as_str()) {
                                got_hello |= matches!(frame, ServerFrame::Hello { .. });
                                self.emit(NetEvent::Frame(frame));
                            }
                        }
                        Some(Ok(WsMessage::Close(frame))) => {
                            close = Some(frame.map(|f| (u16::from(f.code), f.reason.to_string())).unwrap_or((1005, String::new())));
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => {
                            let reason = match &close { Some(c) => describe_close(c), None => e.to_string() };
                            return Ended::Dropped { reason, relogin: close.as_ref().is_some_and(|c| c.0 == 4001), got_hello };
                        }
                        None => {
                            let reason = close.as_ref().map(describe_close).unwrap_or_else(|| "connection lost".into());
                            return Ended::Dropped { reason, relogin: close.as_ref().is_some_and(|c| c.0 == 4001), got_hello };
                        }
                    }
                }
                cmd = self.cmds.recv() => match cmd {
                    Some(Cmd::Frame(f)) => {
                        if let Err(e) = sink.send(WsMessage::Text(f.encode().into())).await {
                            return Ended::Dropped { reason: e.to_string(), relogin: false, got_hello };
                        }
                    }
                    Some(Cmd::Shutdown) | None => {
                        let _ = timeout(Duration::from_secs(1), async {
                            let _ = sink.send(WsMessage::Close(Some(tungstenite::protocol::CloseFrame {
                                code: CloseCode::Normal,
                                reason: "bye".into(),
                            }))).await;
                            while let Some(Ok(_)) = stream.next().await {}
                        }).await;
                        return Ended::Shutdown;
                    }
                },
                _ = sleep_until(next_ping) => {
                    next_ping = Instant::now() + self.config.ping_every;
                    let ping = ClientFrame::Ping { req: None }.encode();
                    if let Err(e) = sink.send(WsMessage::Text(ping.into())).await {
                        return Ended::Dropped { reason: e.to_string(), relogin: false, got_hello };
                    }
                }
                _ = sleep_until(last_read + self.config.idle_timeout) => {
                    return Ended::Dropped { reason: "the server went silent".into(), relogin: false, got_hello };
                }
            }
        }
    }
}

fn describe_close((code, reason): &(u16, String)) -> String {
    let what = match code {
        1000 => "closed by the server",
        1001 => "the server is shutting down",
        1009 => "frame too large",
        4001 => "session ended",
        4008 => "too slow: the server dropped us",
        _ => "closed",
    };
    if reason.is_empty() { format!("{what} ({code})") } else { format!("{what} ({code}: {reason})") }
}
