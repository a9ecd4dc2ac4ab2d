//! Server-Sent Events: the WebSocket's server→client frames as an EventSource stream, for clients
//! behind proxies that only pass plain HTTP. Sending is by REST.
//!
//! - Each event's `event:` is the frame's `type`; its `data:` is the same JSON as on the WebSocket.
//! - `message` events carry an `id:` that encodes where the stream stands in every room
//!   (`room:seq,room:seq…`). A reconnecting EventSource sends it back as `Last-Event-ID`, and the
//!   stream resumes from there through the same [`Feed`] as the WebSocket: no gap, no duplicate.
//! - A comment line every keepalive period keeps proxies from closing an idle stream, and notices a
//!   client that went away.
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
use tokio::time::{Instant, MissedTickBehavior, interval_at};

use super::AppState;
use super::auth::Auth;
use super::error::ApiError;
use super::wire::*;
use crate::core::chat::{Chat, Identity};
use crate::core::cursor::{Feed, Out};
use crate::core::domain::{RoomId, Seq};
use crate::core::hub::{CloseReason, WireSlot};
use crate::core::limits::{Admission, Transport};
use tracing::Instrument;

/// Events buffered between the connection task and the HTTP body.
const BUFFER: usize = 64;

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
    tokio::spawn(run(app.chat.clone(), who, resume, tx, app.config.keepalive, admission).instrument(span));
    let stream =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (Ok::<_, Infallible>(e), rx)) });
    let mut resp = Sse::new(stream).into_response();
    // Tell proxies not to buffer the stream.
    resp.headers_mut().insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}

async fn run(
    chat: Arc<Chat>,
    who: Identity,
    resume: Option<String>,
    tx: mpsc::Sender<Event>,
    keepalive: std::time::Duration,
    _admission: Admission,
) {
    let Ok((mut reg, rooms)) = chat.connect(&who).await else { return };
    let mut feed = Feed::new(&rooms);
    let mut pos = Position(rooms.iter().map(|v| (v.room.id, v.room.last_seq)).collect());
    let hello = ServerFrame::Hello {
        v: PROTOCOL_VERSION,
        user: UserW::from(&who.user),
        rooms: rooms.iter().map(RoomViewW::from).collect(),
    };
    if tx.send(event("hello", &hello.encode()).retry(std::time::Duration::from_secs(2))).await.is_err() {
        return;
    }
    drop(rooms);

    if let Some(last_event_id) = resume {
        for (room, after) in parse_position(&last_event_id) {
            if !pos.0.contains_key(&room) {
                continue;
            }
            let mut out = Vec::new();
            let Ok(through) = feed.resume(&chat, &who, room, after, &mut out).await else { continue };
            pos.0.insert(room, after);
            if !send_outs(&tx, &mut pos, out).await {
                return;
            }
            let r = ServerFrame::Recovered { room: room.0, seq: through, req: None }.encode();
            if tx.send(event("recovered", &r)).await.is_err() {
                return;
            }
        }
    }

    let mut beat = interval_at(Instant::now() + keepalive, keepalive);
    beat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut batch = Vec::new();
    let delivered = metrics::counter!("parley_messages_delivered_total");
    loop {
        tokio::select! {
            biased;
            reason = reg.ctl.closed() => {
                let code = match reason {
                    CloseReason::SessionEnded => "session_ended",
                    CloseReason::TooSlow => "too_slow",
                    CloseReason::ShuttingDown => "shutting_down",
                };
                let data = Bytes::from(format!(r#"{{"type":"close","code":"{code}"}}"#));
                let _ = tx.send(event("close", &data)).await;
                return;
            }
            n = reg.rx.recv_many(&mut batch, 64) => {
                if n == 0 { return; }
                let mut out = Vec::new();
                for d in batch.drain(..) {
                    feed.deliver(&chat, &who, d, &mut out).await;
                }
                let n = out.len() as u64;
                if !send_outs(&tx, &mut pos, out).await { return; }
                delivered.increment(n);
            }
            _ = beat.tick() => {
                if tx.send(Event::default().comment("keepalive")).await.is_err() { return; }
            }
            _ = tx.closed() => return,
        }
    }
}

async fn send_outs(tx: &mpsc::Sender<Event>, pos: &mut Position, out: Vec<Out>) -> bool {
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
        if tx.send(e).await.is_err() {
            return false;
        }
    }
    true
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
