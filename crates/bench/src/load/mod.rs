//! The `load` and `idle` scenarios: users, rooms, N connections (senders on WebSocket, receivers over
//! `--transport`), S open-loop senders. This file is the connections (their tasks, read loops and
//! writers) and the progress line; [`run`] is the run itself: a plan, then its phases.

mod run;
pub use run::run_load;

use crate::accounting::{ConnTracker, Seen, expected_deliveries, loss};
use crate::client::{Api, PASSWORD, Target, WsOpts, open_ws};
use crate::lines::{LineConn, Transport, classify_tcp_line, open_sse, open_tcp, sse_data, too_slow};
use crate::payload::{Frame, Stamp, classify, send_frame};
use crate::report::{self, Connections, Errors, Generator, Load, Report, Server, Setup, Slow};
use crate::schedule::Schedule;
use crate::stats::{DelayedAckBand, Pct, ProcSample, Recorder, Shared, new_hist, sample_proc};
use crate::{BenchArgs, Scenario};
use anyhow::{Result, bail};
use futures_util::{SinkExt, Stream, StreamExt};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_util::sync::CancellationToken;

/// How connections map onto rooms, users, senders and slow readers.
#[derive(Debug, Clone)]
pub struct Layout {
    pub rooms: usize,
    pub users_per_room: usize,
    pub connections: usize,
    pub senders: usize,
    pub slow_fraction: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Sends on a schedule and also receives (it follows its room like everyone else).
    Sender(u32),
    Receiver,
    /// Stops reading right after `hello`.
    Slow,
}

impl Layout {
    /// Connection `i` is in room `i % rooms`.
    pub fn room_of(&self, i: usize) -> usize {
        i % self.rooms
    }

    /// The global user index of connection `i`: users of room `r` are `r*U .. r*U+U`, and the
    /// room's connections cycle through them.
    pub fn user_of(&self, i: usize) -> usize {
        let r = i % self.rooms;
        let k = (i / self.rooms) % self.users_per_room;
        r * self.users_per_room + k
    }

    /// Connections `0..senders` are the senders (so sender `s` is in room `s % rooms`); slow
    /// readers are spread evenly over the rest.
    pub fn role(&self, i: usize) -> Role {
        if i < self.senders {
            return Role::Sender(i as u32);
        }
        let j = (i - self.senders) as f64;
        let f = self.slow_fraction;
        if f > 0.0 && ((j + 1.0) * f).floor() > (j * f).floor() { Role::Slow } else { Role::Receiver }
    }

    pub fn users(&self) -> usize {
        self.rooms * self.users_per_room
    }
}

/// Registered users (with one login token each) and created rooms.
pub struct Population {
    pub names: Vec<String>,
    pub tokens: Vec<Arc<str>>,
    pub room_ids: Vec<u64>,
}

/// Registers and logs in `rooms * users_per_room` users, has user 0 of each room create it and
/// the others join, all with bounded parallelism.
pub async fn setup(
    api: &Api,
    prefix: &str,
    rooms: usize,
    users_per_room: usize,
    concurrency: usize,
) -> Result<Population> {
    let n = rooms * users_per_room;
    let names: Vec<String> = (0..n).map(|u| format!("{prefix}u{u}")).collect();
    let mut tokens: Vec<Option<Arc<str>>> = vec![None; n];
    {
        let mut s = futures_util::stream::iter(0..n)
            .map(|u| {
                let api = api.clone();
                let name = names[u].clone();
                async move {
                    api.register(&name).await?;
                    let t = api.login(&name).await?;
                    Ok::<_, anyhow::Error>((u, t))
                }
            })
            .buffer_unordered(concurrency.max(1));
        while let Some(r) = s.next().await {
            let (u, t) = r?;
            tokens[u] = Some(t.into());
        }
    }
    let tokens: Vec<Arc<str>> = tokens.into_iter().map(|t| t.expect("all set")).collect();
    let mut room_ids = vec![0u64; rooms];
    {
        let mut s = futures_util::stream::iter(0..rooms)
            .map(|r| {
                let api = api.clone();
                let token = tokens[r * users_per_room].clone();
                let name = format!("{prefix}r{r}");
                async move { Ok::<_, anyhow::Error>((r, api.create_room(&token, &name).await?)) }
            })
            .buffer_unordered(concurrency.max(1));
        while let Some(r) = s.next().await {
            let (r, id) = r?;
            room_ids[r] = id;
        }
    }
    {
        let joins: Vec<(usize, u64)> = (0..rooms)
            .flat_map(|r| (1..users_per_room).map(move |k| (r * users_per_room + k, r)))
            .map(|(u, r)| (u, room_ids[r]))
            .collect();
        let mut s = futures_util::stream::iter(joins)
            .map(|(u, room)| {
                let api = api.clone();
                let token = tokens[u].clone();
                async move { api.join(&token, room).await }
            })
            .buffer_unordered(concurrency.max(1));
        while let Some(r) = s.next().await {
            r?;
        }
    }
    Ok(Population { names, tokens, room_ids })
}

/// A random, letter-first prefix so that runs never collide on user or room names.
pub fn random_prefix() -> String {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    let mut x = nanos ^ (u64::from(std::process::id()) << 40) ^ 0x9e37_79b9_7f4a_7c15;
    // splitmix64
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    const A: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut s = String::from("b");
    for _ in 0..7 {
        s.push(A[(x % 36) as usize] as char);
        x /= 36;
    }
    s
}

const PHASE_CONNECT: u8 = 0;
const PHASE_RUN: u8 = 1;
const PHASE_DRAIN: u8 = 2;
const PHASE_HOLD: u8 = 3;

struct Ctx {
    shared: Arc<Shared>,
    target: Target,
    receiver_target: Target,
    opts: WsOpts,
    /// How receivers (non-senders) connect; for `Tcp`, the line port's address.
    transport: Transport,
    tcp_addr: Option<SocketAddr>,
    /// User names, indexed like the tokens (TCP receivers log in with name and password).
    names: Vec<String>,
    layout: Layout,
    room_ids: Vec<u64>,
    rate: f64,
    body_bytes: usize,
    late_ns: u64,
    cancel: CancellationToken,
    start: watch::Receiver<Option<(u64, u64)>>,
    sem: Semaphore,
    opened: AtomicUsize,
    failed: AtomicUsize,
    ended_early: AtomicUsize,
    writers_done: AtomicUsize,
}

struct Ready {
    i: usize,
    result: std::result::Result<Duration, String>,
}

#[derive(Debug)]
enum End {
    /// Still open when the run stopped it.
    Stopped,
    /// Closed by the server (close code, 0 when there was no close frame) or failed.
    Closed(u16),
}

struct Outcome {
    opened: bool,
    role: Role,
    end: End,
}

fn close_code(f: &Option<tokio_tungstenite::tungstenite::protocol::CloseFrame>) -> u16 {
    f.as_ref().map(|f| u16::from(f.code)).unwrap_or(u16::from(CloseCode::Status)).max(1)
}

async fn conn_task(
    ctx: Arc<Ctx>,
    i: usize,
    token: Arc<str>,
    source: Option<IpAddr>,
    ready: mpsc::UnboundedSender<Ready>,
) -> Outcome {
    let role = ctx.layout.role(i);
    let permit = tokio::select! {
        p = ctx.sem.acquire() => p.ok(),
        _ = ctx.cancel.cancelled() => None,
    };
    let t = Instant::now();
    let r = if permit.is_some() {
        let transport = if matches!(role, Role::Sender(_)) { Transport::Ws } else { ctx.transport };
        let timeout = ctx.opts.timeout;
        match transport {
            Transport::Ws => {
                let target = if matches!(role, Role::Sender(_)) { &ctx.target } else { &ctx.receiver_target };
                open_ws(target, &token, source, &ctx.opts).await.map(|(ws, _hello)| Conn::Ws(ws))
            }
            Transport::Sse => open_sse(&ctx.receiver_target, &token, source, timeout).await.map(Conn::Lines),
            Transport::Tcp => match ctx.tcp_addr {
                Some(addr) => {
                    let name = &ctx.names[ctx.layout.user_of(i)];
                    open_tcp(addr, name, PASSWORD, source, timeout).await.map(Conn::Lines)
                }
                None => Err(anyhow::anyhow!("--transport tcp needs --tcp-addr")),
            },
        }
    } else {
        Err(anyhow::anyhow!("cancelled"))
    };
    drop(permit);
    let conn = match r {
        Ok(conn) => {
            ctx.opened.fetch_add(1, Ordering::Relaxed);
            let _ = ready.send(Ready { i, result: Ok(t.elapsed()) });
            conn
        }
        Err(e) => {
            ctx.failed.fetch_add(1, Ordering::Relaxed);
            let _ = ready.send(Ready { i, result: Err(format!("{e:#}")) });
            return Outcome { opened: false, role, end: End::Closed(0) };
        }
    };
    drop(ready);
    let end = match (role, conn) {
        (Role::Slow, Conn::Ws(ws)) => slow_hold(ws, &ctx.cancel).await,
        (Role::Slow, Conn::Lines(c)) => slow_hold_lines(c, &ctx.cancel).await,
        (Role::Receiver, Conn::Ws(mut ws)) => read_loop(&mut ws, &ctx, i, None).await,
        (Role::Receiver, Conn::Lines(c)) => line_loop(c, &ctx, i).await,
        (Role::Sender(_), Conn::Lines(_)) => unreachable!("senders connect over WebSocket"),
        (Role::Sender(s), Conn::Ws(ws)) => {
            let (sink, mut stream) = ws.split();
            let wctx = ctx.clone();
            tokio::spawn(async move {
                writer(sink, &wctx, i, s).await;
                wctx.writers_done.fetch_add(1, Ordering::Relaxed);
            });
            read_loop(&mut stream, &ctx, i, Some(s)).await
        }
    };
    if matches!(end, End::Closed(_)) && role != Role::Slow {
        ctx.ended_early.fetch_add(1, Ordering::Relaxed);
    }
    Outcome { opened: true, role, end }
}

/// An open connection: WebSocket, or a line stream (SSE or TCP).
enum Conn {
    Ws(crate::client::Ws),
    Lines(LineConn),
}

/// Counts one delivered message carrying our stamp: deliveries, duplicates / re-orderings, and
/// end-to-end latency for first deliveries.
fn record_delivery(shared: &Shared, r: &mut Recorder, tracker: &mut ConnTracker, st: Stamp, now: u64) {
    r.c.deliveries += 1;
    match tracker.record(st.sender, st.n) {
        None => r.c.foreign += 1,
        Some(Seen::Duplicate) => r.c.duplicates += 1,
        Some(seen) => {
            r.c.unique += 1;
            if seen == Seen::Reordered {
                r.c.reordered += 1;
            }
            let us = (now.saturating_sub(st.sent_ns) / 1000).max(1);
            r.e2e_interval.saturating_record(us);
            if shared.in_window(st.sent_ns) {
                r.e2e.saturating_record(us);
            }
        }
    }
}

/// The receive loop of an SSE or TCP receiver: every `data:` line (SSE) or line (TCP) is
/// classified and fed to the same accounting as WebSocket frames.
async fn line_loop(mut conn: LineConn, ctx: &Ctx, i: usize) -> End {
    let room = ctx.layout.room_of(i);
    let mut tracker = ConnTracker::new(room, ctx.layout.rooms, ctx.layout.senders);
    let shared = &*ctx.shared;
    let shard = shared.shard(i);
    let sse = ctx.transport == Transport::Sse;
    let cancelled = ctx.cancel.cancelled();
    tokio::pin!(cancelled);
    loop {
        let r = tokio::select! {
            biased;
            _ = &mut cancelled => return End::Stopped,
            r = conn.next_line() => r,
        };
        let line = match r {
            Ok(Some(r)) => conn.line(r),
            Ok(None) | Err(_) => return End::Closed(0),
        };
        let frame = if sse {
            let Some(data) = sse_data(line) else { continue };
            classify(data)
        } else {
            classify_tcp_line(line)
        };
        let now = shared.now_ns();
        match frame {
            Frame::Message(Some(st)) => record_delivery(shared, &mut shard.lock(), &mut tracker, st, now),
            Frame::Message(None) => shard.lock().c.other_messages += 1,
            Frame::Error | Frame::Other if too_slow(line) => return End::Closed(CLOSE_TOO_SLOW),
            Frame::Error => shard.lock().c.error_frames += 1,
            Frame::Unparsable => shard.lock().c.unparsable_frames += 1,
            _ => {}
        }
    }
}

/// Close code reported for an SSE or TCP receiver the server dropped as too slow (the WebSocket
/// close code for the same reason).
pub const CLOSE_TOO_SLOW: u16 = 4008;

/// [`slow_hold`] for SSE and TCP: after the run, reads what is left to see whether the server
/// closed the stream (and whether it said `too_slow`).
async fn slow_hold_lines(mut conn: LineConn, cancel: &CancellationToken) -> End {
    cancel.cancelled().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut slow = false;
    loop {
        let step = (tokio::time::Instant::now() + Duration::from_secs(1)).min(deadline);
        match tokio::time::timeout_at(step, conn.next_line()).await {
            Err(_) => return End::Stopped,
            Ok(Ok(Some(r))) => {
                let l = conn.line(r);
                slow |= (l.starts_with(b"ERR ") || l.starts_with(b"data:")) && too_slow(l);
            }
            Ok(Ok(None)) | Ok(Err(_)) => return End::Closed(if slow { CLOSE_TOO_SLOW } else { 0 }),
        }
    }
}

/// A slow reader never reads while the run lasts; afterwards it reads what is left to find out
/// whether the server closed it.
async fn slow_hold(mut ws: crate::client::Ws, cancel: &CancellationToken) -> End {
    cancel.cancelled().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let step = (tokio::time::Instant::now() + Duration::from_secs(1)).min(deadline);
        match tokio::time::timeout_at(step, ws.next()).await {
            Err(_) => return End::Stopped,
            Ok(None) | Ok(Some(Err(_))) => return End::Closed(0),
            Ok(Some(Ok(Message::Close(f)))) => return End::Closed(close_code(&f)),
            Ok(Some(Ok(_))) => {}
        }
    }
}

async fn read_loop<S>(stream: &mut S, ctx: &Ctx, i: usize, sender: Option<u32>) -> End
where
    S: Stream<Item = Result<Message, WsError>> + Unpin,
{
    let room = ctx.layout.room_of(i);
    let mut tracker = ConnTracker::new(room, ctx.layout.rooms, ctx.layout.senders);
    let shared = &*ctx.shared;
    let shard = shared.shard(i);
    let cancelled = ctx.cancel.cancelled();
    tokio::pin!(cancelled);
    loop {
        let m = tokio::select! {
            biased;
            _ = &mut cancelled => return End::Stopped,
            m = stream.next() => m,
        };
        let t = match m {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Close(f))) => return End::Closed(close_code(&f)),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return End::Closed(0),
        };
        let now = shared.now_ns();
        match classify(t.as_bytes()) {
            Frame::Message(Some(st)) => record_delivery(shared, &mut shard.lock(), &mut tracker, st, now),
            Frame::Message(None) => shard.lock().c.other_messages += 1,
            Frame::Ack { stamp: Some(st), duplicate } if Some(st.sender) == sender => {
                if !duplicate {
                    shared.acks_per_room[room].fetch_add(1, Ordering::Relaxed);
                }
                let mut r = shard.lock();
                r.c.acks += 1;
                if duplicate {
                    r.c.duplicate_acks += 1;
                }
                if shared.in_window(st.sent_ns) {
                    r.ack.saturating_record((now.saturating_sub(st.sent_ns) / 1000).max(1));
                }
            }
            Frame::Error => shard.lock().c.error_frames += 1,
            Frame::Unparsable => shard.lock().c.unparsable_frames += 1,
            _ => {}
        }
    }
}

async fn writer<K>(mut sink: K, ctx: &Ctx, i: usize, sender: u32)
where
    K: futures_util::Sink<Message, Error = WsError> + Unpin,
{
    let mut start = ctx.start.clone();
    let (t0, end) = tokio::select! {
        v = start.wait_for(|v| v.is_some()) => match v {
            Ok(v) => v.expect("checked"),
            Err(_) => return,
        },
        _ = ctx.cancel.cancelled() => return,
    };
    let shared = &*ctx.shared;
    let room = ctx.layout.room_of(i);
    let room_id = ctx.room_ids[room];
    let phase = sender as f64 / ctx.layout.senders.max(1) as f64;
    let mut sched = Schedule::new(t0, end, ctx.rate, phase);
    let shard = shared.shard(i);
    let mut buf = String::with_capacity(96 + 2 * ctx.body_bytes);
    let mut lags: Vec<u64> = Vec::with_capacity(64);
    while let Some(due) = sched.next_due() {
        if due > shared.now_ns() {
            let at = shared.base + Duration::from_nanos(due);
            tokio::select! {
                _ = tokio::time::sleep_until(at.into()) => {}
                _ = ctx.cancel.cancelled() => break,
            }
        }
        let now = shared.now_ns();
        lags.clear();
        let mut failed = false;
        while let Some((n, t)) = sched.pop_due(now) {
            let st = Stamp { sender, n, sent_ns: t };
            send_frame(&mut buf, room_id, &st, ctx.body_bytes);
            if sink.feed(Message::Text(buf.as_str().into())).await.is_err() {
                failed = true;
                break;
            }
            lags.push(t);
            if lags.len() >= 64 {
                break;
            }
        }
        if !failed && sink.flush().await.is_err() {
            failed = true;
        }
        let flushed = shared.now_ns();
        let mut r = shard.lock();
        r.c.sends += lags.len() as u64;
        for &t in &lags {
            let lag = flushed.saturating_sub(t);
            if lag > ctx.late_ns {
                r.c.sends_late += 1;
            }
            if shared.in_window(t) {
                r.lag.saturating_record((lag / 1000).max(1));
            }
        }
        if failed {
            r.c.send_errors += 1;
            break;
        }
    }
}

fn sample(pid: Option<u32>) -> Option<ProcSample> {
    pid.and_then(|p| sample_proc(&p.to_string()).ok())
}

fn log(quiet: bool, msg: impl AsRef<str>) {
    if !quiet {
        eprintln!("{}", msg.as_ref());
    }
}

/// Runs the `load` or `idle` scenario.
async fn progress_task(ctx: Arc<Ctx>, phase: Arc<AtomicU8>, stop: CancellationToken, server_pid: Option<u32>) {
    let shared = &*ctx.shared;
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let mut prev = shared.totals();
    let mut prev_opened = 0usize;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        let secs = start.elapsed().as_secs();
        let opened = ctx.opened.load(Ordering::Relaxed);
        let failed = ctx.failed.load(Ordering::Relaxed);
        let early = ctx.ended_early.load(Ordering::Relaxed);
        let rss = server_pid
            .and_then(|p| sample_proc(&p.to_string()).ok())
            .map(|s| format!(" | server RSS {} MiB", s.rss_kib / 1024))
            .unwrap_or_default();
        match phase.load(Ordering::Relaxed) {
            PHASE_CONNECT => {
                eprintln!(
                    "[{secs:>4}s] connecting: {opened}/{} open (+{}/s), {failed} failed{rss}",
                    ctx.layout.connections,
                    opened - prev_opened
                );
                prev_opened = opened;
            }
            PHASE_HOLD => {
                eprintln!(
                    "[{secs:>4}s] idle: {} open, {early} dropped by the server, {failed} failed{rss}",
                    opened - early
                );
            }
            p => {
                let c = shared.totals();
                let h = shared.take_interval();
                let lat = if h.is_empty() {
                    String::from("-")
                } else {
                    format!(
                        "p50 {} p99 {} max {}",
                        crate::stats::fmt_us(h.value_at_quantile(0.5)),
                        crate::stats::fmt_us(h.value_at_quantile(0.99)),
                        crate::stats::fmt_us(h.max())
                    )
                };
                eprintln!(
                    "[{secs:>4}s] {}sends {}/s acks {}/s deliveries {}/s | e2e {lat} | late {} dup {} err {} dropped {early}{rss}",
                    if p == PHASE_DRAIN { "draining: " } else { "" },
                    c.sends - prev.sends,
                    c.acks - prev.acks,
                    c.deliveries - prev.deliveries,
                    c.sends_late,
                    c.duplicates,
                    c.error_frames + c.send_errors,
                );
                prev = c;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_spreads_connections() {
        let l = Layout { rooms: 3, users_per_room: 2, connections: 12, senders: 4, slow_fraction: 0.25 };
        let rooms: Vec<usize> = (0..12).map(|i| l.room_of(i)).collect();
        assert_eq!(rooms, [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2]);
        // Users of room r are 2r and 2r+1; every connection's user is in its room.
        for i in 0..12 {
            assert_eq!(l.user_of(i) / 2, l.room_of(i));
        }
        assert_eq!(l.user_of(0), 0);
        assert_eq!(l.user_of(3), 1);
        assert_eq!(l.user_of(6), 0);
        assert_eq!(l.role(0), Role::Sender(0));
        assert_eq!(l.role(3), Role::Sender(3));
        let slow = (0..12).filter(|&i| l.role(i) == Role::Slow).count();
        assert_eq!(slow, 2, "a quarter of the 8 receivers");
        // Each sender lands in the room the accounting expects.
        for s in 0..4 {
            assert_eq!(l.room_of(s), s % 3);
        }
        assert_eq!(crate::accounting::senders_in_room(0, 3, 4), 2);
    }

    #[test]
    fn slow_fraction_is_spread_evenly() {
        let l = Layout { rooms: 1, users_per_room: 1, connections: 10_010, senders: 10, slow_fraction: 0.05 };
        let slow: Vec<usize> = (0..10_010).filter(|&i| l.role(i) == Role::Slow).collect();
        assert!((499..=501).contains(&slow.len()), "{}", slow.len());
        assert!(slow.iter().all(|&i| i >= 10));
        assert!(slow.windows(2).all(|w| w[1] - w[0] >= 19 && w[1] - w[0] <= 21));
    }

    #[test]
    fn prefixes_are_valid_names() {
        let p = random_prefix();
        assert_eq!(p.len(), 8);
        assert!(p.starts_with('b'));
        assert!(p.bytes().all(|b| b.is_ascii_alphanumeric()));
    }
}
