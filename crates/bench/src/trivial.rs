//! A minimal in-memory server speaking just enough of Parley's protocol for the generator:
//! register, login, create and join rooms over REST, and over WebSocket `hello`, `send` → fan-out
//! of `message` frames to every connection of every member + `ack`, and `history` (`after`).
//!
//! It exists to measure the generator's own ceiling and to test the generator without the real
//! server. There is no persistence, no password check and tokens are `t<user id>`.

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use parking_lot::Mutex;
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_util::sync::CancellationToken;

/// Frames queued per connection before it counts as too slow (closed with 4008).
const SEND_QUEUE: usize = 4096;
/// Messages kept per room for `history`.
const KEEP: usize = 100_000;

#[derive(Clone)]
struct ConnHandle {
    id: u64,
    tx: mpsc::Sender<Utf8Bytes>,
    kill: CancellationToken,
}

struct UserRec {
    name: String,
    json: String,
    rooms: Vec<u64>,
    conns: Vec<ConnHandle>,
}

struct RoomInner {
    seq: u64,
    conns: Vec<ConnHandle>,
    /// Message objects (JSON) of the newest `KEEP` messages; the first has seq `seq - len + 1`.
    history: VecDeque<Arc<str>>,
    members: u64,
}

struct Room {
    id: u64,
    name: String,
    created_by: u64,
    inner: Mutex<RoomInner>,
}

impl Room {
    fn json(&self) -> String {
        let i = self.inner.lock();
        format!(
            r#"{{"id":{},"name":{},"visibility":"public","created_by":{},"last_seq":{},"member_count":{}}}"#,
            self.id,
            json_str(&self.name),
            self.created_by,
            i.seq,
            i.members
        )
    }
}

#[derive(Default)]
struct Inner {
    users: Vec<UserRec>,
    users_by_name: HashMap<String, u64>,
    rooms: Vec<Arc<Room>>,
    rooms_by_name: HashMap<String, u64>,
    next_conn: u64,
}

#[derive(Default)]
struct State {
    inner: Mutex<Inner>,
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl State {
    fn room(&self, r: &RoomRef<'_>) -> Option<Arc<Room>> {
        let i = self.inner.lock();
        let id = match r {
            RoomRef::Id(id) => *id,
            RoomRef::Name(n) => *i.rooms_by_name.get(&n.to_ascii_lowercase())?,
        };
        i.rooms.get((id as usize).checked_sub(1)?).cloned()
    }

    fn user_id(token: &str) -> Option<u64> {
        token.strip_prefix('t')?.parse().ok()
    }
}

/// Serves until `cancel` fires. Bind the listener yourself (port 0 is fine).
pub async fn serve(listener: TcpListener, cancel: CancellationToken) -> Result<()> {
    let state = Arc::new(State::default());
    loop {
        let (sock, _) = tokio::select! {
            r = listener.accept() => r?,
            _ = cancel.cancelled() => return Ok(()),
        };
        let _ = sock.set_nodelay(true);
        let state = state.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = handle_conn(sock, state) => {}
                _ = cancel.cancelled() => {}
            }
        });
    }
}

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Reads one HTTP/1.1 request from `sock`, keeping any bytes past it in `buf`.
async fn read_request(sock: &mut TcpStream, buf: &mut Vec<u8>) -> Result<Option<Request>> {
    loop {
        let mut hs = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut hs);
        if let httparse::Status::Complete(head) = req.parse(buf)? {
            let method = req.method.unwrap_or("").to_string();
            let path = req.path.unwrap_or("").to_string();
            let headers: Vec<(String, String)> = req
                .headers
                .iter()
                .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into_owned()))
                .collect();
            let len: usize = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse().ok())
                .unwrap_or(0);
            if len > 1 << 20 {
                bail!("request body too large");
            }
            while buf.len() < head + len {
                let mut chunk = [0u8; 4096];
                let n = sock.read(&mut chunk).await?;
                if n == 0 {
                    bail!("eof in body");
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = buf[head..head + len].to_vec();
            buf.drain(..head + len);
            return Ok(Some(Request { method, path, headers, body }));
        }
        if buf.len() > 64 * 1024 {
            bail!("request head too large");
        }
        let mut chunk = [0u8; 4096];
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn respond(sock: &mut TcpStream, status: u16, body: &str) -> Result<()> {
    let reason = match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        409 => "Conflict",
        _ => "Status",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    sock.write_all(head.as_bytes()).await?;
    sock.write_all(body.as_bytes()).await?;
    Ok(())
}

fn err_body(code: &str) -> String {
    format!(r#"{{"error":{{"code":"{code}","message":"{code}"}}}}"#)
}

#[derive(Deserialize)]
struct Creds {
    username: String,
}

#[derive(Deserialize)]
struct NewRoom {
    name: String,
}

async fn handle_conn(mut sock: TcpStream, state: Arc<State>) -> Result<()> {
    let mut buf = Vec::with_capacity(4096);
    while let Some(req) = read_request(&mut sock, &mut buf).await? {
        let (path, query) = req.path.split_once('?').unwrap_or((&req.path, ""));
        let path = path.to_string();
        if req.method == "GET" && path == "/ws" {
            let token =
                query.split('&').find_map(|kv| kv.strip_prefix("token=")).map(str::to_string).or_else(|| {
                    req.header("authorization").and_then(|v| v.strip_prefix("Bearer ")).map(str::to_string)
                });
            let user = token
                .as_deref()
                .and_then(State::user_id)
                .filter(|&u| u >= 1 && (u as usize) <= state.inner.lock().users.len());
            let (Some(user), Some(key)) = (user, req.header("sec-websocket-key")) else {
                respond(&mut sock, 401, &err_body("unauthorized")).await?;
                continue;
            };
            let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
            let proto = req
                .header("sec-websocket-protocol")
                .filter(|p| p.split(',').any(|x| x.trim() == "parley.v1"))
                .map(|_| "sec-websocket-protocol: parley.v1\r\n")
                .unwrap_or("");
            let head = format!(
                "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-accept: {accept}\r\n{proto}\r\n"
            );
            sock.write_all(head.as_bytes()).await?;
            let cfg = WebSocketConfig::default().read_buffer_size(16 * 1024);
            let ws = WebSocketStream::from_partially_read(sock, buf, Role::Server, Some(cfg)).await;
            return ws_session(ws, user, state).await;
        }
        let (status, body) = rest(&state, &req, &path);
        respond(&mut sock, status, &body).await?;
    }
    Ok(())
}

fn rest(state: &State, req: &Request, path: &str) -> (u16, String) {
    let auth = req.header("authorization").and_then(|v| v.strip_prefix("Bearer ")).and_then(State::user_id);
    match (req.method.as_str(), path) {
        ("POST", "/api/v1/register") => {
            let Ok(c) = serde_json::from_slice::<Creds>(&req.body) else {
                return (400, err_body("bad_request"));
            };
            let mut i = state.inner.lock();
            let key = c.username.to_ascii_lowercase();
            if i.users_by_name.contains_key(&key) {
                return (409, err_body("username_taken"));
            }
            let id = i.users.len() as u64 + 1;
            let json = format!(r#"{{"id":{id},"username":{n},"display_name":{n}}}"#, n = json_str(&c.username));
            i.users.push(UserRec { name: c.username, json: json.clone(), rooms: Vec::new(), conns: Vec::new() });
            i.users_by_name.insert(key, id);
            (201, json)
        }
        ("POST", "/api/v1/login") => {
            let Ok(c) = serde_json::from_slice::<Creds>(&req.body) else {
                return (400, err_body("bad_request"));
            };
            let i = state.inner.lock();
            match i.users_by_name.get(&c.username.to_ascii_lowercase()) {
                Some(&id) => {
                    (200, format!(r#"{{"token":"t{id}","expires_at":0,"user":{}}}"#, i.users[id as usize - 1].json))
                }
                None => (401, err_body("invalid_credentials")),
            }
        }
        ("POST", "/api/v1/rooms") => {
            let Some(uid) = auth else {
                return (401, err_body("unauthorized"));
            };
            let Ok(nr) = serde_json::from_slice::<NewRoom>(&req.body) else {
                return (400, err_body("bad_request"));
            };
            let mut i = state.inner.lock();
            if uid as usize > i.users.len() || uid == 0 {
                return (401, err_body("unauthorized"));
            }
            let key = nr.name.to_ascii_lowercase();
            if i.rooms_by_name.contains_key(&key) {
                return (409, err_body("room_name_taken"));
            }
            let id = i.rooms.len() as u64 + 1;
            let room = Arc::new(Room {
                id,
                name: nr.name,
                created_by: uid,
                inner: Mutex::new(RoomInner { seq: 0, conns: Vec::new(), history: VecDeque::new(), members: 0 }),
            });
            i.rooms.push(room.clone());
            i.rooms_by_name.insert(key, id);
            add_member(&mut i, uid, &room);
            (201, room.json())
        }
        ("POST", p) if p.starts_with("/api/v1/rooms/") && p.ends_with("/join") => {
            let Some(uid) = auth else {
                return (401, err_body("unauthorized"));
            };
            let r = &p["/api/v1/rooms/".len()..p.len() - "/join".len()];
            let rr = match r.parse::<u64>() {
                Ok(id) => RoomRef::Id(id),
                Err(_) => RoomRef::Name(Cow::Borrowed(r)),
            };
            let Some(room) = state.room(&rr) else {
                return (404, err_body("room_not_found"));
            };
            let mut i = state.inner.lock();
            if uid as usize > i.users.len() || uid == 0 {
                return (401, err_body("unauthorized"));
            }
            add_member(&mut i, uid, &room);
            (200, room.json())
        }
        _ => (404, err_body("not_found")),
    }
}

fn add_member(i: &mut Inner, uid: u64, room: &Arc<Room>) {
    let u = &mut i.users[uid as usize - 1];
    if u.rooms.contains(&room.id) {
        return;
    }
    u.rooms.push(room.id);
    let mut ri = room.inner.lock();
    ri.members += 1;
    ri.conns.extend(u.conns.iter().cloned());
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RoomRef<'a> {
    Id(u64),
    #[serde(borrow)]
    Name(Cow<'a, str>),
}

#[derive(Deserialize)]
struct ClientFrame<'a> {
    #[serde(rename = "type", borrow)]
    ty: Cow<'a, str>,
    #[serde(borrow)]
    room: Option<RoomRef<'a>>,
    #[serde(borrow)]
    body: Option<Cow<'a, str>>,
    #[serde(borrow)]
    client_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    req: Option<Cow<'a, str>>,
    after: Option<u64>,
    limit: Option<u64>,
}

async fn ws_session(ws: WebSocketStream<TcpStream>, uid: u64, state: Arc<State>) -> Result<()> {
    let (tx, mut rx) = mpsc::channel::<Utf8Bytes>(SEND_QUEUE);
    let kill = CancellationToken::new();
    let (conn_id, sender_json, hello) = {
        let mut i = state.inner.lock();
        i.next_conn += 1;
        let h = ConnHandle { id: i.next_conn, tx: tx.clone(), kill: kill.clone() };
        let u = &mut i.users[uid as usize - 1];
        u.conns.push(h.clone());
        let user_json = u.json.clone();
        let _ = &u.name;
        let room_ids = u.rooms.clone();
        let mut rooms_json = Vec::new();
        for rid in room_ids {
            let room = i.rooms[rid as usize - 1].clone();
            room.inner.lock().conns.push(h.clone());
            rooms_json.push(room.json());
        }
        let hello = format!(r#"{{"type":"hello","v":1,"user":{user_json},"rooms":[{}]}}"#, rooms_json.join(","));
        (h.id, user_json, hello)
    };
    let (mut sink, mut stream) = ws.split();
    let _ = tx.send(hello.into()).await;
    let wkill = kill.clone();
    let writer = tokio::spawn(async move {
        loop {
            let first = tokio::select! {
                biased;
                _ = wkill.cancelled() => {
                    let _ = sink.send(Message::Close(Some(CloseFrame {
                        code: CloseCode::Library(4008),
                        reason: "too slow".into(),
                    }))).await;
                    break;
                }
                m = rx.recv() => m,
            };
            let Some(f) = first else { break };
            if sink.feed(Message::Text(f)).await.is_err() {
                break;
            }
            let mut n = 0;
            while n < 256 {
                let Ok(f) = rx.try_recv() else { break };
                if sink.feed(Message::Text(f)).await.is_err() {
                    return;
                }
                n += 1;
            }
            if sink.flush().await.is_err() {
                break;
            }
        }
    });
    while let Some(m) = stream.next().await {
        let Ok(m) = m else { break };
        let t = match m {
            Message::Text(t) => t,
            Message::Close(_) => continue,
            _ => continue,
        };
        let reply = match serde_json::from_str::<ClientFrame<'_>>(&t) {
            Ok(f) => handle_frame(&state, uid, &sender_json, f),
            Err(_) => Some(err_frame("bad_frame", None)),
        };
        if let Some(r) = reply
            && tx.send(r.into()).await.is_err()
        {
            break;
        }
    }
    // Unregister.
    {
        let mut i = state.inner.lock();
        let u = &mut i.users[uid as usize - 1];
        u.conns.retain(|c| c.id != conn_id);
        let rooms = u.rooms.clone();
        for rid in rooms {
            i.rooms[rid as usize - 1].inner.lock().conns.retain(|c| c.id != conn_id);
        }
    }
    drop(tx);
    writer.abort();
    Ok(())
}

fn err_frame(code: &str, req: Option<&str>) -> String {
    match req {
        Some(r) => format!(r#"{{"type":"error","req":{},"code":"{code}","message":"{code}"}}"#, json_str(r)),
        None => format!(r#"{{"type":"error","code":"{code}","message":"{code}"}}"#),
    }
}

fn handle_frame(state: &State, uid: u64, sender_json: &str, f: ClientFrame<'_>) -> Option<String> {
    let req = f.req.as_deref();
    let req_field = req.map(|r| format!(r#","req":{}"#, json_str(r))).unwrap_or_default();
    match &*f.ty {
        "send" => {
            let (Some(rr), Some(body)) = (f.room.as_ref(), f.body.as_deref()) else {
                return Some(err_frame("bad_frame", req));
            };
            if body.trim().is_empty() {
                return Some(err_frame("empty_message", req));
            }
            let Some(room) = state.room(rr) else {
                return Some(err_frame("room_not_found", req));
            };
            let ts = now_ms();
            let cid = f.client_id.as_deref().map(json_str);
            let cid = cid.as_deref().unwrap_or("null");
            let mut ri = room.inner.lock();
            ri.seq += 1;
            let seq = ri.seq;
            let msg: Arc<str> = format!(
                r#"{{"room":{},"seq":{seq},"kind":"text","sender":{sender_json},"body":{},"client_id":{cid},"ts":{ts}}}"#,
                room.id,
                json_str(body)
            )
            .into();
            let frame: Utf8Bytes = format!(r#"{{"type":"message","message":{msg}}}"#).into();
            let mut slow = Vec::new();
            for c in &ri.conns {
                if c.tx.try_send(frame.clone()).is_err() {
                    c.kill.cancel();
                    slow.push(c.id);
                }
            }
            if !slow.is_empty() {
                ri.conns.retain(|c| !slow.contains(&c.id));
            }
            ri.history.push_back(msg);
            if ri.history.len() > KEEP {
                ri.history.pop_front();
            }
            drop(ri);
            let _ = uid;
            Some(format!(
                r#"{{"type":"ack"{req_field},"room":{},"seq":{seq},"ts":{ts},"client_id":{cid},"duplicate":false}}"#,
                room.id
            ))
        }
        "history" => {
            let Some(rr) = f.room.as_ref() else {
                return Some(err_frame("bad_frame", req));
            };
            let Some(room) = state.room(rr) else {
                return Some(err_frame("room_not_found", req));
            };
            let limit = f.limit.unwrap_or(50).clamp(1, 200) as usize;
            let ri = room.inner.lock();
            let first_kept = ri.seq + 1 - ri.history.len() as u64;
            let after = f.after.unwrap_or(0);
            let from = after.max(first_kept - 1) + 1; // first seq to return
            let start = (from - first_kept) as usize;
            let end = (start + limit).min(ri.history.len());
            let msgs: Vec<&str> = if start < ri.history.len() {
                ri.history.range(start..end).map(|m| &**m).collect()
            } else {
                Vec::new()
            };
            let has_more = end < ri.history.len();
            Some(format!(
                r#"{{"type":"history"{req_field},"room":{},"messages":[{}],"has_more":{has_more}}}"#,
                room.id,
                msgs.join(",")
            ))
        }
        "ping" => Some(format!(r#"{{"type":"pong"{req_field}}}"#)),
        other => Some(format!(
            r#"{{"type":"error"{req_field},"code":"unknown_type","message":{}}}"#,
            json_str(&format!("unknown frame type '{other}'"))
        )),
    }
}

/// Binds `addr`, prints `http://ADDR` on stdout and serves until Ctrl-C or `secs` elapse.
pub async fn run_standalone(addr: std::net::SocketAddr, secs: f64, quiet: bool) -> Result<()> {
    if !addr.ip().is_loopback() {
        bail!("the trivial server only listens on loopback addresses");
    }
    let listener = TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
    let local = listener.local_addr()?;
    println!("http://{local}");
    if !quiet {
        eprintln!("trivial server listening on http://{local} for up to {secs}s (Ctrl-C stops it)");
    }
    let cancel = CancellationToken::new();
    let srv = tokio::spawn(serve(listener, cancel.clone()));
    tokio::select! {
        _ = tokio::time::sleep(std::time::Duration::from_secs_f64(secs.max(0.0))) => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    cancel.cancel();
    let _ = srv.await;
    Ok(())
}
