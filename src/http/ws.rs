//! The WebSocket transport: one task per connection, reading client frames, writing hub deliveries.
//!
//! - Authentication and the connection caps are checked at the upgrade; a refused upgrade is a plain
//!   `401` or `429` with a JSON body.
//! - Reads never wait on the store: a `send` is queued for storage in read order (so each sender's
//!   messages keep their order) and its acknowledgement is awaited alongside other work; at most
//!   [`MAX_IN_FLIGHT`] sends wait at once, after which the connection stops reading (backpressure).
//! - Deliveries pass through the connection's [`Feed`](crate::core::cursor::Feed), which drops repeats and fills gaps from the
//!   store, and serves `resume`. Opened with `?resume=1`, the connection leaves deliveries queued until
//!   the client's first `resume`, so a reconnecting client gets stored messages before live ones.
//! - Writes are batched: after one delivery, everything already queued is written with one flush (the
//!   socket's layer below gathers frames up to [`COALESCE`](super::deadline::COALESCE) bytes between
//!   flushes and gives its buffer back after each; tungstenite's own write buffer is off, so a burst
//!   leaves no buffer behind), and so are the answers to sends that one commit acknowledged together,
//!   after the deliveries that are ready (issue 18: one write per wake, not per frame). With
//!   `--write-coalesce-ms`, a connection that
//!   wrote less than a window ago lets deliveries queue until the window ends (a timer branch: reads and
//!   acks go on meanwhile).
//! - The connection life cycle (session end, keepalive, slow-client bounds, shutdown drain) is
//!   [`crate::core::conn`]'s; this module maps its ends to close codes. Every write has a deadline; a
//!   connection silent for two keepalive periods is closed with 4002.
//! - The acting connection gets edit/delete/read/rename/topic results as replies only
//!   ([`crate::core::conn::Echo`]); its other connections get the broadcast.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as WsMessage, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::stream::{FuturesUnordered, SplitSink, SplitStream};
use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::time::{Instant, timeout};
use tracing::{Instrument, debug, info_span};

use super::AppState;
use super::auth::token_of;
use super::error::{ApiError, error_response};
use super::wire::*;
use crate::core::chat::{Identity, SendRequest};
use crate::core::conn::{CLOSE_NOTICE, Connection, Echo, End, Timing, Wake};
use crate::core::cursor::Out;
use crate::core::domain::*;
use crate::core::error::Error;
use crate::core::hub::WireSlot;
use crate::core::limits::{Admission, Transport};

/// Sends awaiting their acknowledgement, per connection, before reading pauses.
pub const MAX_IN_FLIGHT: usize = 64;
/// Deliveries written per flush, at most.
const WRITE_BATCH: usize = 64;
/// tungstenite's read buffer, held by every connection for its life.
const READ_BUFFER: usize = 256;
/// Deliveries the connection keeps room for between batches; a bigger batch's room is given back.
const OUT_KEPT: usize = 8;

pub const CLOSE_SESSION_ENDED: u16 = 4001;
pub const CLOSE_TOO_SLOW: u16 = 4008;
/// Nothing heard from the client (not even a Pong) for two keepalive periods.
pub const CLOSE_SILENT: u16 = 4002;

pub async fn upgrade(State(app): State<Arc<AppState>>, parts: Parts) -> Response {
    let mut parts = parts;
    let ws = match WebSocketUpgrade::from_request_parts(&mut parts, &app).await {
        Ok(ws) => ws,
        // Not a WebSocket handshake (a plain GET, a missing header): the documented JSON error, with
        // the status axum chose (400, 426, …).
        Err(r) => {
            let status = r.status();
            return error_response(
                status,
                "bad_request",
                &format!("/ws takes a WebSocket handshake: {}", r.body_text()),
            );
        }
    };
    let Some(token) = token_of(&parts) else { return ApiError(Error::Unauthorized).into_response() };
    let who = match app.chat.authenticate(&token).await {
        Ok(who) => who,
        Err(e) => return ApiError(e).into_response(),
    };
    // `?resume=1`: the client's first `resume` frame decides where live delivery starts (see
    // PROTOCOL.md, "reconnecting"); until it arrives deliveries wait in the bounded queue.
    let hold = parts.uri.query().is_some_and(|q| q.split('&').any(|p| p == "resume=1"));
    // Refused before the upgrade, so the client gets a 429 it can read.
    let admission = match app.chat.admit(&who, Transport::Ws) {
        Ok(a) => a,
        Err(e) => return ApiError(e).into_response(),
    };
    let cfg = &app.config;
    ws.protocols([SUBPROTOCOL])
        // tungstenite's default 128 KiB read buffer per connection dominates idle memory; client
        // frames are small (a larger one is read into a buffer reserved for its length), and every
        // idle connection holds this one: 256 bytes rather than 1 KiB (issue 18, memory per connection).
        .read_buffer_size(READ_BUFFER)
        // Each frame goes to the socket's layer as it is formatted: that layer (`http::deadline`)
        // gathers a batch's frames into one write per flush and gives its buffer back after it, where
        // tungstenite's write buffer, grown to the largest batch, would be kept for the connection's
        // life (issue 18, memory per connection). tungstenite still holds the frame being written.
        .write_buffer_size(0)
        .max_frame_size(cfg.max_frame_bytes)
        .max_message_size(cfg.max_frame_bytes)
        // One pointer captured: the upgrade's task keeps its callback's captures for the connection's
        // whole life (issue 18, memory per connection).
        .on_upgrade({
            let opening = Box::new(Opening { app, who, admission, hold });
            move |socket| {
                let span = info_span!("ws", conn = opening.admission.id, user = opening.who.user.id.0);
                let (sink, stream) = socket.split();
                run(sink, stream, opening).instrument(span)
            }
        })
}

/// `/ws` with a method other than GET: the documented JSON error.
pub async fn method_not_allowed() -> Response {
    error_response(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "/ws takes a WebSocket handshake (GET with Upgrade: websocket)",
    )
}

type Sink = SplitSink<WebSocket, WsMessage>;
type Stream = SplitStream<WebSocket>;

/// What a WebSocket is opened with, on the heap until the connection is open.
struct Opening {
    app: Arc<AppState>,
    who: Identity,
    admission: Admission,
    hold: bool,
}

fn text(bytes: Bytes) -> WsMessage {
    // Our own serde_json output is always UTF-8; the check is a cheap scan.
    WsMessage::Text(Utf8Bytes::try_from(bytes).unwrap_or_else(|_| Utf8Bytes::from_static("{}")))
}

fn encode_out(o: Out) -> Bytes {
    match o {
        Out::Shared(d) => d.encoded(WireSlot::Json, encode_event),
        Out::Stored(m) => encode_message(&m),
    }
}

/// How a WebSocket ends.
enum Exit {
    /// The server ends it (see [`close_frame_for`]).
    End(End),
    /// The client broke the protocol: a close frame with this code and reason.
    Protocol(u16, &'static str),
    /// The client closed or vanished: nobody to tell.
    Gone,
}

/// Why a write did not complete.
enum WriteFail {
    /// Not taken within the write timeout: the client is too slow.
    TooSlow,
    /// The connection is broken.
    Gone,
}

impl From<WriteFail> for Exit {
    fn from(w: WriteFail) -> Self {
        match w {
            WriteFail::TooSlow => Exit::End(End::TooSlow),
            WriteFail::Gone => Exit::Gone,
        }
    }
}

/// Every open WebSocket holds this future for its whole life, idle or not, so what only a moment of the
/// connection needs (opening it, a command, a delivery, a reply's write, the close) runs in a boxed
/// future of its own: this one keeps the connection's state and the `select!` over what can wake it
/// (`tests::an_idle_connection_task_stays_small`; issue 18, memory per connection).
async fn run(mut sink: Sink, mut stream: Stream, opening: Box<Opening>) {
    let Some((mut conn, app)) = Box::pin(open(&mut sink, opening)).await else { return };
    let write_timeout = app.config.write_timeout;
    let mut acks = FuturesUnordered::new();
    // Grown on first use: an idle connection holds no buffers.
    let mut out = Vec::new();
    let delivered = metrics::counter!("parley_messages_delivered_total");
    let coalesce = app.config.write_coalesce;
    // When this connection last wrote deliveries; `None` until it has.
    let mut last_write: Option<Instant> = None;
    // While set, deliveries wait in the queue until it fires (coalescing); acks and reads go on
    // meanwhile. Made only for the window: an idle connection's task holds no timer for it.
    let mut window: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;

    let exit: Exit = loop {
        tokio::select! {
            // What the connection life cycle says (an end first) wins over everything else that is ready.
            biased;
            wake = conn.wake(), if window.is_none() => match wake {
                Wake::End(end) => break Exit::End(end),
                Wake::Keepalive => {
                    if let Err(w) = Box::pin(write_raw(&mut sink, write_timeout, WsMessage::Ping(Bytes::new()))).await {
                        break w.into();
                    }
                }
                Wake::Deliveries => {
                    // A busy connection (it wrote less than a window ago) holds these until the window
                    // closes, then writes all that came with one flush; a quiet one writes at once.
                    if let Some(at) = last_write.filter(|at| !coalesce.is_zero() && at.elapsed() < coalesce) {
                        window = Some(Box::pin(tokio::time::sleep_until(at + coalesce)));
                        continue;
                    }
                    // Answers to this connection's sends that are ready go out in the same write, after
                    // the deliveries (the store publishes a batch before it answers its senders).
                    let ready = std::iter::from_fn(|| acks.next().now_or_never().flatten());
                    match Box::pin(deliver(&mut conn, &mut out, &mut sink, write_timeout, ready)).await {
                        Ok(n) => delivered.increment(n),
                        Err(e) => break e,
                    }
                    last_write = Some(Instant::now());
                }
            },
            // The window closed: take what queued meanwhile (not woken per message) and write it.
            () = async { if let Some(w) = window.as_mut() { w.await } }, if window.is_some() => {
                window = None;
                conn.gather(WRITE_BATCH);
                match Box::pin(deliver(&mut conn, &mut out, &mut sink, write_timeout, std::iter::empty())).await {
                    Ok(n) => delivered.increment(n),
                    Err(e) => break e,
                }
                last_write = Some(Instant::now());
            }
            Some(reply) = acks.next(), if !acks.is_empty() => {
                // One batch commit answers many sends at once: every answer already there goes out
                // with this one, in one write (the select polls `acks` again, with its waker, next).
                let ready = std::iter::from_fn(|| acks.next().now_or_never().flatten());
                if let Err(w) = Box::pin(write_all(&mut sink, write_timeout, std::iter::once(reply).chain(ready))).await { break w.into(); }
            }
            frame = stream.next(), if acks.len() < MAX_IN_FLIGHT => {
                conn.heard();
                match frame {
                    Some(Ok(WsMessage::Text(t))) => {
                        if conn.live().is_err() {
                            break Exit::End(End::SessionEnded);
                        }
                        let replies = match Box::pin(handle_frame(&mut conn, t.as_str())).await {
                            Handled::Replies(r) => r,
                            Handled::Pending(fut) => { acks.push(fut); continue; }
                        };
                        if let Err(w) = Box::pin(write_all(&mut sink, write_timeout, replies.into_iter())).await { break w.into(); }
                    }
                    Some(Ok(WsMessage::Binary(_))) => {
                        let e = ServerFrame::error_with_code("bad_frame", "binary frames are not part of the protocol; send JSON text", None);
                        if let Err(w) = Box::pin(write_all(&mut sink, write_timeout, std::iter::once(e))).await { break w.into(); }
                    }
                    Some(Ok(WsMessage::Close(_))) => {
                        // The library queues its reply to a close and sends it on the next read:
                        // read on, so the closing handshake completes cleanly.
                        let _ = Box::pin(timeout(write_timeout, async { while let Some(Ok(_)) = stream.next().await {} })).await;
                        break Exit::Gone;
                    }
                    None => break Exit::Gone,
                    Some(Ok(_)) => {} // Ping (answered by the library) and Pong
                    Some(Err(e)) => {
                        debug!(error = %e, "websocket read failed");
                        // RFC 6455 §7.1.7: fail the connection with a close frame saying why.
                        break match e.into_inner().downcast_ref::<tungstenite::Error>() {
                            Some(tungstenite::Error::Capacity(_)) => Exit::Protocol(1009, "frame too large"),
                            Some(tungstenite::Error::Utf8(_)) => Exit::Protocol(1007, "text must be UTF-8"),
                            // The peer is gone: nobody to tell.
                            Some(tungstenite::Error::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake)) => Exit::Gone,
                            Some(tungstenite::Error::Protocol(_)) => Exit::Protocol(1002, "protocol error"),
                            _ => Exit::Gone,
                        };
                    }
                }
            }
        }
    };
    Box::pin(finish(exit, conn, sink, stream, acks, out, write_timeout)).await;
}

/// Opens the connection (registered with the hub, following its rooms) and greets the client; `None`
/// when either failed (the client was told, if it could be).
async fn open(sink: &mut Sink, opening: Box<Opening>) -> Option<(Connection, Arc<AppState>)> {
    let Opening { app, who, admission, hold } = *opening;
    let write_timeout = app.config.write_timeout;
    let timing = Timing { keepalive: app.config.keepalive, write_timeout, hears_client: true };
    let (mut conn, rooms) = match Connection::open(&app.chat, who, admission, timing).await {
        Ok(x) => x,
        Err(e) => {
            let _ = sink.send(text(ServerFrame::error(&e, None))).await;
            return None;
        }
    };
    // `?resume=1`: the client's first `resume` frame decides where live delivery starts (see
    // PROTOCOL.md, "reconnecting"); until it arrives deliveries wait in the bounded queue.
    conn.hold(hold);
    let hello = ServerFrame::Hello {
        v: PROTOCOL_VERSION,
        user: UserW::from(&conn.who.user),
        rooms: rooms.iter().map(RoomViewW::from).collect(),
    };
    write_all(sink, write_timeout, std::iter::once(hello.encode())).await.ok()?;
    Some((conn, app))
}

/// How the connection ends: on a server-side end, the drain (answers to what was accepted, and at
/// shutdown what is queued), then the close frame, bounded by [`CLOSE_NOTICE`].
async fn finish(
    exit: Exit,
    mut conn: Connection,
    mut sink: Sink,
    mut stream: Stream,
    mut acks: FuturesUnordered<AckFuture>,
    mut out: Vec<Out>,
    write_timeout: Duration,
) {
    let (code, reason) = match exit {
        Exit::Gone => return,
        Exit::Protocol(code, reason) => (code, reason),
        Exit::End(end) => {
            debug!(end = end.code(), "closing");
            if matches!(end, End::ShuttingDown | End::SessionEnded) {
                // Drain: reading has stopped; what was accepted is stored and acknowledged, and what is
                // queued is written, before the close (all bounded by the write timeout).
                let answers = async {
                    let mut replies = Vec::new();
                    while let Some(r) = acks.next().await {
                        replies.push(r);
                    }
                    replies
                };
                let replies = timeout(write_timeout, answers).await.unwrap_or_default();
                let _ = write_all(&mut sink, write_timeout, replies.into_iter()).await;
                if end == End::ShuttingDown {
                    conn.drain(&mut out).await;
                    let _ = write_all(&mut sink, write_timeout, out.drain(..).map(encode_out)).await;
                }
            }
            close_frame_for(end)
        }
    };
    let frame = CloseFrame { code, reason: Utf8Bytes::from(reason) };
    // Told when it can be: a client too slow to read gets it if it catches up within the notice.
    let _ = timeout(CLOSE_NOTICE, sink.send(WsMessage::Close(Some(frame)))).await;
    // Give the client a moment to answer the close, without waiting on a dead peer.
    let _ = timeout(CLOSE_NOTICE, async { while let Some(Ok(_)) = stream.next().await {} }).await;
    drop(conn);
}

/// Passes the deliveries the connection took through its feed and writes the result, then `after`
/// (answers that are ready), with one flush; the number of deliveries written.
async fn deliver(
    conn: &mut Connection,
    out: &mut Vec<Out>,
    sink: &mut Sink,
    write_timeout: Duration,
    after: impl Iterator<Item = Bytes>,
) -> Result<u64, Exit> {
    conn.take(out).await.map_err(Exit::End)?;
    let n = out.len() as u64;
    write_all(sink, write_timeout, out.drain(..).map(encode_out).chain(after)).await.map_err(|w| match w {
        WriteFail::TooSlow => Exit::End(conn.too_slow()),
        WriteFail::Gone => Exit::Gone,
    })?;
    // A burst's room is not kept for the rest of the connection's life.
    if out.capacity() > OUT_KEPT {
        *out = Vec::new();
    }
    Ok(n)
}

pub fn close_frame_for(end: End) -> (u16, &'static str) {
    match end {
        End::SessionEnded => (CLOSE_SESSION_ENDED, "session ended"),
        End::TooSlow => (CLOSE_TOO_SLOW, "too slow: the client did not keep up with its deliveries"),
        End::ShuttingDown => (1001, "server shutting down"),
        End::Silent => (CLOSE_SILENT, "no answer to keepalive"),
    }
}

/// Writes frames then flushes once, within `deadline`.
async fn write_all(sink: &mut Sink, deadline: Duration, frames: impl Iterator<Item = Bytes>) -> Result<(), WriteFail> {
    let work = async {
        for f in frames {
            sink.feed(text(f)).await?;
        }
        sink.flush().await
    };
    match timeout(deadline, work).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(WriteFail::Gone),
        Err(_) => Err(WriteFail::TooSlow),
    }
}

async fn write_raw(sink: &mut Sink, deadline: Duration, m: WsMessage) -> Result<(), WriteFail> {
    match timeout(deadline, sink.send(m)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(WriteFail::Gone),
        Err(_) => Err(WriteFail::TooSlow),
    }
}

type AckFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Bytes> + Send>>;

enum Handled {
    Replies(Vec<Bytes>),
    Pending(AckFuture),
}

fn one(b: Bytes) -> Result<Handled, Error> {
    Ok(Handled::Replies(vec![b]))
}

async fn handle_frame(conn: &mut Connection, text: &str) -> Handled {
    let frame = match decode_client_frame(text) {
        Ok(f) => f,
        Err(FrameError::Bad(why)) => {
            return Handled::Replies(vec![ServerFrame::error_with_code(
                "bad_frame",
                &format!("malformed frame: {why}"),
                frame_req(text).as_deref(),
            )]);
        }
        Err(FrameError::UnknownType(t)) => {
            return Handled::Replies(vec![ServerFrame::error_with_code(
                "unknown_type",
                &format!("unknown frame type '{t}'"),
                frame_req(text).as_deref(),
            )]);
        }
    };
    let chat = &conn.chat().clone();
    let who = &conn.who.clone();
    let req = frame.req().map(str::to_owned);
    let req_s = req.as_deref();
    let result: Result<Handled, Error> = async {
        match frame {
            ClientFrame::Send { room, body, client_id, files, reply_to, .. } => {
                let body = MessageBody::parse(&body, chat.limits.max_message_bytes)?;
                let client_id = client_id.as_deref().map(ClientMsgId::parse).transpose()?;
                let pending =
                    chat.submit(who, SendRequest { room: room.into(), body, client_id, reply_to, files }).await?;
                let (chat, who, req) = (chat.clone(), who.clone(), req.clone());
                Ok(Handled::Pending(Box::pin(async move {
                    match chat.finish_send(&who, pending).await {
                        Ok(ack) => ServerFrame::Ack { ack: AckW::from(&ack), req: req.as_deref() }.encode(),
                        Err(e) => ServerFrame::error(&e, req.as_deref()),
                    }
                })))
            }
            ClientFrame::Join { room, .. } => {
                let room = chat.join(who, &room.into()).await?;
                one(ServerFrame::Joined { room: RoomW::from(&room), req: req_s }.encode())
            }
            ClientFrame::Leave { room, .. } => {
                let room = chat.leave(who, &room.into()).await?;
                one(ServerFrame::Left { room: room.id.0, req: req_s }.encode())
            }
            ClientFrame::History { room, before, after, limit, .. } => {
                let q = HistoryQuery::new(before, after, limit)?;
                let (room, page) = chat.history(who, &room.into(), q).await?;
                one(ServerFrame::History { room: room.id.0, page: HistoryW::from(&page), req: req_s }.encode())
            }
            ClientFrame::Ping { .. } => one(ServerFrame::Pong { req: req_s }.encode()),
            ClientFrame::Resume { rooms, .. } => {
                // Deliveries held for this resume are written after its replies; the feed drops the
                // ones the resume already sent.
                conn.hold(false);
                let mut replies = Vec::new();
                for r in rooms {
                    let mut out = Vec::new();
                    let through = conn.resume(RoomId(r.room), r.after, &mut out).await?;
                    replies.extend(out.into_iter().map(encode_out));
                    replies.push(ServerFrame::Recovered { room: r.room, seq: through, req: req_s }.encode());
                }
                Ok(Handled::Replies(replies))
            }
            ClientFrame::Typing { room, .. } => {
                chat.typing(who, &room.into()).await?;
                Ok(Handled::Replies(if req.is_some() { vec![ServerFrame::Ok { req: req_s }.encode()] } else { vec![] }))
            }
            ClientFrame::Read { room, seq, .. } => {
                let (room, seq) = chat.mark_read(who, &room.into(), seq).await?;
                conn.expect_echo(Echo::Read(room, seq));
                one(ServerFrame::Read { room: room.0, seq, req: req_s }.encode())
            }
            ClientFrame::Edit { room, seq, body, .. } => {
                let body = MessageBody::parse(&body, chat.limits.max_message_bytes)?;
                let m = chat.edit(who, &room.into(), seq, body).await?;
                conn.expect_echo(Echo::Updated(m.clone()));
                one(ServerFrame::MessageUpdated { message: MessageW::from(&*m), req: req_s }.encode())
            }
            ClientFrame::Delete { room, seq, .. } => {
                let m = chat.delete(who, &room.into(), seq).await?;
                conn.expect_echo(Echo::Updated(m.clone()));
                one(ServerFrame::MessageUpdated { message: MessageW::from(&*m), req: req_s }.encode())
            }
            ClientFrame::Dm { username, .. } => {
                let (room, _) = chat.open_direct(who, &username).await?;
                one(ServerFrame::Joined { room: RoomW::from(&room), req: req_s }.encode())
            }
            ClientFrame::Invite { room, username, .. } => {
                chat.invite(who, &room.into(), &username).await?;
                one(ServerFrame::Ok { req: req_s }.encode())
            }
            ClientFrame::Kick { room, username, .. } => {
                chat.kick(who, &room.into(), &username).await?;
                one(ServerFrame::Ok { req: req_s }.encode())
            }
            ClientFrame::Ban { room, username, .. } => {
                chat.ban(who, &room.into(), &username).await?;
                one(ServerFrame::Ok { req: req_s }.encode())
            }
            ClientFrame::Unban { room, username, .. } => {
                chat.unban(who, &room.into(), &username).await?;
                one(ServerFrame::Ok { req: req_s }.encode())
            }
            ClientFrame::SetRole { room, username, role, .. } => {
                chat.set_role(who, &room.into(), &username, Role::parse_assignable(&role)?).await?;
                one(ServerFrame::Ok { req: req_s }.encode())
            }
            ClientFrame::Rename { room, name, .. } => {
                let room = chat.rename(who, &room.into(), RoomName::parse(&name)?).await?;
                conn.expect_echo(Echo::Room(room.clone()));
                one(ServerFrame::RoomUpdated { room: RoomW::from(&room), req: req_s }.encode())
            }
            ClientFrame::Topic { room, topic, .. } => {
                let room = chat.set_topic(who, &room.into(), Topic::parse(&topic)?).await?;
                conn.expect_echo(Echo::Room(room.clone()));
                one(ServerFrame::RoomUpdated { room: RoomW::from(&room), req: req_s }.encode())
            }
            ClientFrame::Transfer { room, username, .. } => {
                chat.transfer_ownership(who, &room.into(), &username).await?;
                one(ServerFrame::Ok { req: req_s }.encode())
            }
            ClientFrame::Invites { .. } => {
                let invites = chat.invites(who).await?;
                one(ServerFrame::Invites { invites: invites.iter().map(InviteW::from).collect(), req: req_s }.encode())
            }
            ClientFrame::AcceptInvite { room, .. } => {
                let room = chat.accept_invite(who, &room.into()).await?;
                one(ServerFrame::Joined { room: RoomW::from(&room), req: req_s }.encode())
            }
            ClientFrame::DeclineInvite { room, .. } => {
                chat.decline_invite(who, &room.into()).await?;
                one(ServerFrame::Ok { req: req_s }.encode())
            }
            ClientFrame::React { room, seq, emoji, .. } => {
                let (room, reactions) = chat.react(who, &room.into(), seq, &Emoji::parse(&emoji)?, true).await?;
                one(encode_convo(&ConvoEvent::Reactions { room, seq, reactions }, req_s))
            }
            ClientFrame::Unreact { room, seq, emoji, .. } => {
                let (room, reactions) = chat.react(who, &room.into(), seq, &Emoji::parse(&emoji)?, false).await?;
                one(encode_convo(&ConvoEvent::Reactions { room, seq, reactions }, req_s))
            }
            ClientFrame::Thread { room, seq, before, after, limit, .. } => {
                let q = HistoryQuery::new(before, after, limit)?;
                let (room, root, page) = chat.thread(who, &room.into(), seq, q).await?;
                one(ServerFrame::Thread {
                    room: room.id.0,
                    root: MessageW::from(&*root),
                    page: HistoryW::from(&page),
                    req: req_s,
                }
                .encode())
            }
            ClientFrame::Pin { room, seq, .. } => {
                chat.set_pinned(who, &room.into(), seq, true).await?;
                one(ServerFrame::Ok { req: req_s }.encode())
            }
            ClientFrame::Unpin { room, seq, .. } => {
                chat.set_pinned(who, &room.into(), seq, false).await?;
                one(ServerFrame::Ok { req: req_s }.encode())
            }
            ClientFrame::Pins { room, .. } => {
                let (room, pins) = chat.pins(who, &room.into()).await?;
                one(ServerFrame::Pins { room: room.0, pins: pins.iter().map(PinW::from).collect(), req: req_s }
                    .encode())
            }
            ClientFrame::Notify { room, level, muted, .. } => {
                let level = level.as_deref().map(NotifyLevel::parse).transpose()?;
                let (room, level, muted) = chat.set_notify(who, &room.into(), level, muted).await?;
                one(encode_convo(&ConvoEvent::Notify { room, level, muted }, req_s))
            }
            ClientFrame::Search { q, cursor, limit, .. } => {
                let found = chat.search(who, &q, cursor.as_deref(), limit).await?;
                one(ServerFrame::SearchResults { results: SearchResultsW::from(&found), req: req_s }.encode())
            }
        }
    }
    .await;
    result.unwrap_or_else(|e| {
        if let Error::Internal(cause) = &e {
            tracing::error!(error = format!("{cause:#}"), "websocket command failed");
        }
        Handled::Replies(vec![ServerFrame::error(&e, req_s)])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future an `async fn` returns, without calling it.
    fn future_size<A, B, C, F: std::future::Future>(_: fn(A, B, C) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    #[test]
    fn an_idle_connection_task_stays_small() {
        // Every open WebSocket holds one `run` future for its whole life, idle or not: its size is a
        // floor under memory per connection (issue 18: ≤ 6 KiB RSS per idle connection). Opening,
        // commands, deliveries, replies and the close run in boxed futures of their own, so none of
        // them sets this size: 944 bytes in a debug build when this was written (3,096 before).
        let size = future_size(run);
        assert!(size <= 1_024, "the connection task's future is {size} bytes");
    }
}
