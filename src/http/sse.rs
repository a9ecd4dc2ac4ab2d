//! Server-Sent Events: the WebSocket's server→client frames as an EventSource stream, for clients
//! behind proxies that only pass plain HTTP. Sending is by REST.
//!
//! - Each event's `event:` is the frame's `type`; its `data:` is the same JSON as on the WebSocket.
//! - `message` events carry an `id:` that encodes where the stream stands in every room
//!   (`room:seq,room:seq…`). A reconnecting EventSource sends it back as `Last-Event-ID`, and the
//!   stream resumes from there through the same [`Feed`](crate::core::cursor::Feed) as the WebSocket: no gap, no duplicate.
//!   An id only claims what was sent: a resumed stream stands at the id's positions in every room it
//!   names before anything is replayed, so an id sent while replaying room A does not claim room B.
//! - A comment line every keepalive period keeps proxies from closing an idle stream. The connection life
//!   cycle is [`crate::core::conn`]'s: events not taken within the write timeout end the stream as
//!   `too_slow`, and the task ends (freeing its place under the caps) whether or not the `close` event
//!   fits.
//! - Unlike designs that keep one stream per user (a new one replacing the old), every stream is its
//!   own connection: a user may follow from several devices at once.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{FromRequestParts, State};
use axum::http::HeaderValue;
use axum::http::request::Parts;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio::sync::mpsc;

use super::AppState;
use super::auth::Auth;
use super::error::ApiError;
use super::wire::*;
use crate::core::chat::{Chat, Identity};
use crate::core::conn::{CLOSE_NOTICE, Connection, End, Timing, Wake};
use crate::core::cursor::Out;
use crate::core::domain::{RoomId, Seq};
use crate::core::hub::WireSlot;
use crate::core::limits::{Admission, Transport};
use tracing::Instrument;

/// Events buffered between the connection task and the HTTP body. Small: they are outside the
/// queue's byte bound (like a batch being written on the other transports), so a stalled stream pins at
/// most this many events beyond it.
const BUFFER: usize = 16;

/// Parses `Last-Event-ID` (`room:seq,room:seq…`); malformed parts are ignored.
pub fn parse_position(s: &str) -> Vec<(RoomId, Seq)> {
    s.split(',')
        .filter_map(|p| {
            let (r, q) = p.trim().split_once(':')?;
            Some((RoomId(r.parse().ok()?), q.parse().ok()?))
        })
        .collect()
}

/// Where the client stands: per room, the last message it was sent. Only ever advanced by events
/// actually written, so an id the client holds never claims more than it received.
#[derive(Default)]
struct Position(std::collections::BTreeMap<RoomId, Seq>);

impl Position {
    fn id(&self) -> String {
        self.0.iter().map(|(r, s)| format!("{}:{s}", r.0)).collect::<Vec<_>>().join(",")
    }
}

fn event(kind: &str, data: &Bytes) -> Event {
    Event::default().event(kind).data(std::str::from_utf8(data).unwrap_or("{}"))
}

#[utoipa::path(get, path = "/api/v1/events", tag = "events", summary = "Server-Sent Events stream of your rooms (docs/PROTOCOL.md §5)",
    params(super::openapi::LastEventId),
    responses(
        (status = 200, description = "`text/event-stream`: the same events as the WebSocket (docs/PROTOCOL.md §5)", content_type = "text/event-stream", body = String),
        (status = 429, description = "`too_many_connections`", body = super::openapi::ErrorW, headers(("Retry-After" = u64, description = "seconds to wait before trying again"))),
    ))]
pub async fn events(State(app): State<Arc<AppState>>, parts: Parts) -> Response {
    let mut parts = parts;
    let who = match Auth::from_request_parts(&mut parts, &app).await {
        Ok(Auth(who)) => who,
        Err(e) => return e.into_response(),
    };
    let resume = parts.headers.get("last-event-id").and_then(|v| v.to_str().ok()).map(str::to_owned).or_else(|| {
        parts
            .uri
            .query()?
            .split('&')
            .find_map(|p| p.strip_prefix("last_event_id="))
            .map(|v| v.replace("%3A", ":").replace("%2C", ","))
    });
    let admission = match app.chat.admit(&who, Transport::Sse) {
        Ok(a) => a,
        Err(e) => return ApiError(e).into_response(),
    };
    let (tx, rx) = mpsc::channel::<Event>(BUFFER);
    let span = tracing::info_span!("sse", conn = admission.id, user = who.user.id.0);
    let timing =
        Timing { keepalive: app.config.keepalive, write_timeout: app.config.write_timeout, hears_client: false };
    tokio::spawn(run(app.chat.clone(), who, resume, tx, timing, admission).instrument(span));
    let stream =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (Ok::<_, Infallible>(e), rx)) });
    let mut resp = Sse::new(stream).into_response();
    // Tell proxies not to buffer the stream.
    resp.headers_mut().insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}

/// Why writing to the stream stopped.
enum Stop {
    /// The client did not take events within the write timeout.
    TooSlow,
    /// The client went away.
    Gone,
}

/// The event body: events not taken within `deadline` make the client too slow.
struct Body {
    tx: mpsc::Sender<Event>,
    deadline: std::time::Duration,
}

impl Body {
    async fn send(&self, e: Event) -> Result<(), Stop> {
        match tokio::time::timeout(self.deadline, self.tx.send(e)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Stop::Gone),
            Err(_) => Err(Stop::TooSlow),
        }
    }
}

async fn run(
    chat: Arc<Chat>,
    who: Identity,
    resume: Option<String>,
    tx: mpsc::Sender<Event>,
    timing: Timing,
    admission: Admission,
) {
    let Ok((mut conn, rooms)) = Connection::open(&chat, who, admission, timing).await else { return };
    let body = Body { tx, deadline: timing.write_timeout };
    // A fresh stream stands at each room's `last_seq` in `hello` (older messages are history).
    let mut pos = Position(rooms.iter().map(|v| (v.room.id, v.room.last_seq)).collect());
    let hello = ServerFrame::Hello {
        v: PROTOCOL_VERSION,
        user: UserW::from(&conn.who.user),
        rooms: rooms.iter().map(RoomViewW::from).collect(),
    };
    if body.send(event("hello", &hello.encode()).retry(std::time::Duration::from_secs(2))).await.is_err() {
        return;
    }
    drop(rooms);

    let stop = async {
        if let Some(last_event_id) = resume {
            // A resumed stream stands where the id says in every room it names, before anything is
            // replayed: an id sent while replaying one room must not claim another's unsent messages.
            let claimed: Vec<(RoomId, Seq)> =
                parse_position(&last_event_id).into_iter().filter(|(r, _)| pos.0.contains_key(r)).collect();
            for (room, after) in &claimed {
                pos.0.insert(*room, *after);
            }
            for (room, after) in claimed {
                let mut out = Vec::new();
                let Ok(through) = conn.resume(room, after, &mut out).await else { continue };
                send_outs(&body, &mut pos, out).await?;
                let r = ServerFrame::Recovered { room: room.0, seq: through, req: None }.encode();
                body.send(event("recovered", &r)).await?;
            }
        }
        let delivered = metrics::counter!("parley_messages_delivered_total");
        loop {
            tokio::select! {
                biased;
                wake = conn.wake() => match wake {
                    Wake::End(end) => return Ok(end),
                    Wake::Keepalive => body.send(Event::default().comment("keepalive")).await?,
                    Wake::Deliveries => {
                        let mut out = Vec::new();
                        if let Err(end) = conn.take(&mut out).await {
                            return Ok(end);
                        }
                        let n = out.len() as u64;
                        send_outs(&body, &mut pos, out).await?;
                        delivered.increment(n);
                    }
                },
                _ = body.tx.closed() => return Err(Stop::Gone),
            }
        }
    };
    let end = match stop.await {
        Ok(end) => end,
        Err(Stop::Gone) => return,
        Err(Stop::TooSlow) => conn.too_slow(),
    };
    if end == End::ShuttingDown {
        // Drain: what is queued goes out before the close.
        let mut out = Vec::new();
        conn.drain(&mut out).await;
        let _ = send_outs(&body, &mut pos, out).await;
    }
    let data = Bytes::from(format!(r#"{{"type":"close","code":"{}"}}"#, end.code()));
    // Told when it can be; the stream ends either way, and the connection's place is released now.
    let _ = tokio::time::timeout(CLOSE_NOTICE, body.tx.send(event("close", &data))).await;
}

async fn send_outs(body: &Body, pos: &mut Position, out: Vec<Out>) -> Result<(), Stop> {
    use crate::core::hub::HubEvent;
    for o in out {
        let (kind, data, message) = match &o {
            Out::Shared(d) => {
                let data = d.encoded(WireSlot::Json, encode_event);
                match &d.event {
                    HubEvent::Message(m) => ("message".to_owned(), data, Some((m.room, m.seq))),
                    HubEvent::Joined(r) => {
                        pos.0.entry(r.id).or_insert(r.last_seq);
                        (frame_type(&data), data, None)
                    }
                    HubEvent::Left(r) => {
                        pos.0.remove(r);
                        (frame_type(&data), data, None)
                    }
                    _ => (frame_type(&data), data, None),
                }
            }
            Out::Stored(m) => ("message".to_owned(), encode_message(m), Some((m.room, m.seq))),
        };
        let mut e = event(&kind, &data);
        if let Some((room, seq)) = message {
            pos.0.insert(room, seq);
            e = e.id(pos.id());
        }
        body.send(e).await?;
    }
    Ok(())
}

/// The `type` of an encoded frame (always its first field).
fn frame_type(data: &[u8]) -> String {
    let s = std::str::from_utf8(data).unwrap_or("");
    s.strip_prefix(r#"{"type":""#).and_then(|r| r.split('"').next()).unwrap_or("message").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_and_tolerate_junk() {
        assert_eq!(parse_position("3:10, 5:0,x:1,7"), vec![(RoomId(3), 10), (RoomId(5), 0)]);
        assert_eq!(frame_type(br#"{"type":"presence","user":{}}"#), "presence");
    }
}
