//! Talking to the server: the target address, REST setup calls and WebSocket connects.

use anyhow::{Context, Result, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use parley_proto::rest::{CreateRoom, LoginReq, RegisterReq};
use serde::Serialize;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

pub type Ws = WebSocketStream<TcpStream>;

/// Where the server is. Only loopback addresses are accepted: the generator never sends load
/// anywhere else.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    /// `host:port` as given, for the Host header.
    pub authority: String,
    /// Path prefix before `/api/v1` and `/ws` (usually empty).
    pub prefix: String,
}

impl Target {
    pub async fn parse(url: &str) -> Result<Target> {
        let rest = url.strip_prefix("http://").ok_or_else(|| anyhow!("--url must start with http:// (got {url})"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        let with_port =
            if authority.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) && !authority.ends_with(']') {
                authority.to_string()
            } else {
                format!("{authority}:80")
            };
        let addrs: Vec<SocketAddr> =
            tokio::net::lookup_host(&with_port).await.with_context(|| format!("resolving {authority}"))?.collect();
        let addr = addrs.iter().copied().find(|a| a.ip().is_loopback()).ok_or_else(|| {
            anyhow!("{authority} does not resolve to a loopback address; parley bench only targets 127.0.0.0/8 or ::1")
        })?;
        Ok(Target { addr, authority: authority.to_string(), prefix: path.to_string() })
    }

    pub fn api(&self, path: &str) -> String {
        format!("http://{}{}/api/v1{}", self.authority, self.prefix, path)
    }

    pub fn ws_url(&self, token: &str) -> String {
        format!("ws://{}{}/ws?token={}", self.authority, self.prefix, token)
    }
}

pub const PASSWORD: &str = "bench-password-0123";

/// The login body of a load-test user (every one has [`PASSWORD`]).
pub fn credentials(username: &str) -> LoginReq {
    LoginReq { username: username.to_owned(), password: PASSWORD.to_owned() }
}

#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    target: Target,
}

impl Api {
    pub fn new(target: Target, concurrency: usize) -> Result<Api> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(concurrency.max(1))
            .timeout(Duration::from_secs(60))
            .no_proxy()
            .build()?;
        Ok(Api { http, target })
    }

    /// Sends a request, retrying a bounded number of times on 429 (rate limits) and 503.
    async fn call(&self, path: &str, token: Option<&str>, body: &impl Serialize) -> Result<(u16, String)> {
        let url = self.target.api(path);
        for attempt in 0..30 {
            let mut req = self.http.post(&url).json(body);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let resp = req.send().await.with_context(|| format!("POST {url}"))?;
            let status = resp.status().as_u16();
            if (status == 429 || status == 503) && attempt < 29 {
                let wait = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(0.5)
                    .clamp(0.05, 10.0);
                tokio::time::sleep(Duration::from_secs_f64(wait)).await;
                continue;
            }
            let text = resp.text().await.unwrap_or_default();
            return Ok((status, text));
        }
        unreachable!("the last attempt returns")
    }

    pub async fn register(&self, username: &str) -> Result<()> {
        let (st, text) = self
            .call(
                "/register",
                None,
                &RegisterReq { username: username.to_owned(), password: PASSWORD.to_owned(), display_name: None },
            )
            .await?;
        if st != 201 && st != 200 {
            bail!("register {username}: HTTP {st}: {text}");
        }
        Ok(())
    }

    pub async fn login(&self, username: &str) -> Result<String> {
        let (st, text) = self.call("/login", None, &credentials(username)).await?;
        if st != 200 {
            bail!("login {username}: HTTP {st}: {text}");
        }
        Ok(serde_json::from_str::<parley_proto::client::Login>(&text)
            .with_context(|| format!("login reply: {text}"))?
            .token)
    }

    pub async fn create_room(&self, token: &str, name: &str) -> Result<u64> {
        let (st, text) = self
            .call("/rooms", Some(token), &CreateRoom { name: name.to_owned(), visibility: Some("public".to_owned()) })
            .await?;
        if st != 201 && st != 200 {
            bail!("create room {name}: HTTP {st}: {text}");
        }
        let room =
            serde_json::from_str::<parley_proto::client::Room>(&text).with_context(|| format!("room reply: {text}"))?;
        u64::try_from(room.id).with_context(|| format!("room reply: negative id {}", room.id))
    }

    pub async fn join(&self, token: &str, room: u64) -> Result<()> {
        let (st, text) = self.call(&format!("/rooms/{room}/join"), Some(token), &serde_json::json!({})).await?;
        if st != 200 && st != 201 && st != 204 {
            bail!("join room {room}: HTTP {st}: {text}");
        }
        Ok(())
    }
}

/// Options for opening WebSocket connections.
#[derive(Debug, Clone)]
pub struct WsOpts {
    pub subprotocol: String,
    pub read_buffer: usize,
    pub timeout: Duration,
}

impl WsOpts {
    fn config(&self) -> WebSocketConfig {
        WebSocketConfig::default().read_buffer_size(self.read_buffer.max(256))
    }
}

/// Opens a TCP connection to `addr` from `source` (if given), with `TCP_NODELAY`.
pub async fn connect_tcp(addr: SocketAddr, source: Option<IpAddr>) -> Result<TcpStream> {
    let tcp = match source {
        Some(ip) => {
            let sock = if ip.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
            sock.bind(SocketAddr::new(ip, 0)).with_context(|| format!("binding source address {ip}"))?;
            sock.connect(addr).await?
        }
        None => TcpStream::connect(addr).await?,
    };
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

/// Connects from `source` (if given), upgrades to WebSocket and waits for the `hello` frame,
/// which is returned.
pub async fn open_ws(target: &Target, token: &str, source: Option<IpAddr>, opts: &WsOpts) -> Result<(Ws, Utf8Bytes)> {
    let fut = async {
        let tcp = connect_tcp(target.addr, source).await?;
        let mut req = target.ws_url(token).into_client_request()?;
        if !opts.subprotocol.is_empty() {
            req.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_str(&opts.subprotocol)?);
        }
        let (mut ws, _resp) = tokio_tungstenite::client_async_with_config(req, tcp, Some(opts.config())).await?;
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    if crate::payload::classify(t.as_bytes()) == crate::payload::Frame::Hello {
                        return Ok::<_, anyhow::Error>((ws, t));
                    }
                    bail!("first frame was not hello: {}", truncate(&t, 200));
                }
                Some(Ok(Message::Close(f))) => bail!("closed before hello: {f:?}"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.into()),
                None => bail!("connection ended before hello"),
            }
        }
    };
    tokio::time::timeout(opts.timeout, fut)
        .await
        .map_err(|_| anyhow!("timed out after {:?} opening WebSocket", opts.timeout))?
}

pub fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Sends a text frame and flushes.
pub async fn send_text(ws: &mut Ws, text: String) -> Result<()> {
    ws.send(Message::Text(text.into())).await?;
    Ok(())
}
