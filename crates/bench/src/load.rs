//! The `load` and `idle` scenarios: users, rooms, N connections (senders on WebSocket, receivers over
//! `--transport`), S open-loop senders.

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
pub async fn run_load(args: &BenchArgs, scenario: Scenario) -> Result<Report> {
    let idle = scenario == Scenario::Idle;
    let target = Target::parse(&args.url).await?;
    for ip in &args.source_addrs {
        if !ip.is_loopback() {
            bail!("--source-addrs must be loopback addresses (got {ip})");
        }
    }
    let n = args.connections;
    let rooms = args.rooms.max(1);
    if n == 0 {
        bail!("--connections must be at least 1");
    }
    if rooms > n {
        bail!("--rooms ({rooms}) cannot exceed --connections ({n})");
    }
    let senders = if idle { 0 } else { args.senders };
    if senders > n {
        bail!("--senders ({senders}) cannot exceed --connections ({n})");
    }
    if !idle && senders == 0 {
        bail!("--senders must be at least 1 (use --idle to only hold connections)");
    }
    if !(0.0..1.0).contains(&args.slow_fraction) {
        bail!("--slow-fraction must be in [0, 1)");
    }
    let tcp_addr = match (args.transport, &args.tcp_addr) {
        (Transport::Tcp, None) => bail!("--transport tcp needs --tcp-addr HOST:PORT (the server's --tcp-listen)"),
        (Transport::Tcp, Some(a)) => {
            Some(Target::parse(&format!("http://{a}")).await.map_err(|e| anyhow::anyhow!("--tcp-addr: {e:#}"))?.addr)
        }
        _ => None,
    };
    let per_room = n.div_ceil(rooms);
    let users_per_room = args.users_per_room.unwrap_or(per_room.min(100)).max(1);
    let layout = Layout {
        rooms,
        users_per_room,
        connections: n,
        senders,
        slow_fraction: if idle { 0.0 } else { args.slow_fraction },
    };
    let rate = match args.total_rate {
        Some(t) if senders > 0 => t / senders as f64,
        _ => args.rate,
    };
    let prefix = args.prefix.clone().unwrap_or_else(random_prefix);
    let quiet = args.quiet;

    // Setup.
    let t_setup = Instant::now();
    log(
        quiet,
        format!("setup: registering {} users and {} rooms on {} (prefix {prefix})", layout.users(), rooms, args.url),
    );
    let api = Api::new(target.clone(), args.setup_concurrency)?;
    let pop = setup(&api, &prefix, rooms, users_per_room, args.setup_concurrency).await?;
    let setup_s = t_setup.elapsed().as_secs_f64();
    log(quiet, format!("setup: done in {setup_s:.1}s"));

    let server_before = sample(args.server_pid);
    let shards = (args.threads.max(1) * 4).min(n.max(1));
    let shared = Arc::new(Shared::new(shards, rooms));
    let (start_tx, start_rx) = watch::channel(None);
    let opts = WsOpts {
        subprotocol: args.subprotocol.clone(),
        read_buffer: args.read_buffer.unwrap_or(if idle { 4096 } else { 64 * 1024 }),
        timeout: Duration::from_secs_f64(args.connect_timeout.max(0.1)),
    };
    let receiver_target = match &args.receiver_url {
        Some(url) => Target::parse(url).await?,
        None => target.clone(),
    };
    let ctx = Arc::new(Ctx {
        shared: shared.clone(),
        target,
        receiver_target,
        opts,
        transport: args.transport,
        tcp_addr,
        names: pop.names.clone(),
        layout: layout.clone(),
        room_ids: pop.room_ids.clone(),
        rate,
        body_bytes: args.body_bytes,
        late_ns: (args.late_ms * 1e6) as u64,
        cancel: CancellationToken::new(),
        start: start_rx,
        sem: Semaphore::new(args.connect_concurrency.max(1)),
        opened: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        ended_early: AtomicUsize::new(0),
        writers_done: AtomicUsize::new(0),
    });

    // Progress printer.
    let phase = Arc::new(AtomicU8::new(PHASE_CONNECT));
    let progress_stop = CancellationToken::new();
    let progress = if quiet {
        None
    } else {
        Some(tokio::spawn(progress_task(ctx.clone(), phase.clone(), progress_stop.clone(), args.server_pid)))
    };

    // Connect.
    log(
        quiet,
        format!(
            "connect: opening {n} connections, receivers over {} ({} at a time{})",
            args.transport.name(),
            args.connect_concurrency,
            if args.source_addrs.is_empty() {
                String::new()
            } else {
                format!(", from {} source addresses", args.source_addrs.len())
            }
        ),
    );
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
    let mut tasks = JoinSet::new();
    let t_connect = Instant::now();
    for i in 0..n {
        let source =
            if args.source_addrs.is_empty() { None } else { Some(args.source_addrs[i % args.source_addrs.len()]) };
        let token = pop.tokens[layout.user_of(i)].clone();
        tasks.spawn(conn_task(ctx.clone(), i, token, source, ready_tx.clone()));
    }
    drop(ready_tx);
    let mut connect_hist = new_hist();
    let mut receivers_per_room = vec![0u64; rooms];
    let mut errors_seen: Vec<String> = Vec::new();
    let mut got = 0;
    while got < n {
        let Some(r) = ready_rx.recv().await else {
            break;
        };
        got += 1;
        match r.result {
            Ok(d) => {
                connect_hist.saturating_record((d.as_micros() as u64).max(1));
                if layout.role(r.i) != Role::Slow {
                    receivers_per_room[layout.room_of(r.i)] += 1;
                }
            }
            Err(e) => {
                if errors_seen.len() < 5 && !errors_seen.contains(&e) {
                    errors_seen.push(e);
                }
            }
        }
    }
    let connect_s = t_connect.elapsed().as_secs_f64();
    let opened = ctx.opened.load(Ordering::Relaxed);
    let failed = ctx.failed.load(Ordering::Relaxed);
    log(
        quiet,
        format!(
            "connect: {opened} opened, {failed} failed in {connect_s:.2}s ({:.0}/s)",
            opened as f64 / connect_s.max(1e-9)
        ),
    );
    let server_connected = sample(args.server_pid);

    let mut load_report = None;
    let mut window_server = None;
    let mut gen_report = Generator::default();
    let mut server_window = (0u64, 0.0f64, 0.0f64);
    if idle {
        phase.store(PHASE_HOLD, Ordering::Relaxed);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs_f64(args.duration.max(0.0))) => {}
            _ = tokio::signal::ctrl_c() => log(quiet, "interrupted"),
        }
    } else {
        // Start the schedule shortly from now so that every sender sees the same t0.
        let t0 = shared.now_ns() + 50_000_000;
        let ws = t0 + (args.warmup.max(0.0) * 1e9) as u64;
        let we = ws + (args.duration.max(0.0) * 1e9) as u64;
        shared.set_window(ws, we);
        let _ = start_tx.send(Some((t0, we)));
        phase.store(PHASE_RUN, Ordering::Relaxed);
        let at = |ns: u64| tokio::time::Instant::from(shared.base + Duration::from_nanos(ns));
        let mut interrupted = false;
        tokio::select! {
            _ = tokio::time::sleep_until(at(ws)) => {}
            _ = tokio::signal::ctrl_c() => interrupted = true,
        }
        let c0 = shared.totals();
        let s0 = sample(args.server_pid);
        let g0 = sample_proc("self").ok();
        let w0 = Instant::now();
        if !interrupted {
            tokio::select! {
                _ = tokio::time::sleep_until(at(we)) => {}
                _ = tokio::signal::ctrl_c() => interrupted = true,
            }
        }
        let c1 = shared.totals();
        let s1 = sample(args.server_pid);
        let g1 = sample_proc("self").ok();
        let window_s = w0.elapsed().as_secs_f64().max(1e-9);
        if interrupted {
            log(quiet, "interrupted: stopping");
            ctx.cancel.cancel();
        }
        let window_deliveries = c1.deliveries - c0.deliveries;
        let per_s = window_deliveries as f64 / window_s;
        if let (Some(a), Some(b)) = (s0, s1) {
            let cpu = b.cpu_us.saturating_sub(a.cpu_us);
            server_window = (cpu, cpu as f64 / window_deliveries.max(1) as f64, cpu as f64 / 1e6 / window_s);
            window_server = Some(a);
        }
        if let (Some(a), Some(b)) = (g0, g1) {
            let cpu = b.cpu_us.saturating_sub(a.cpu_us);
            let cores = cpu as f64 / 1e6 / window_s;
            gen_report = Generator {
                cpu_us_window: cpu,
                cpu_cores: cores,
                cpu_us_per_delivery: cpu as f64 / window_deliveries.max(1) as f64,
                deliveries_per_core_s: if cores > 0.0 { per_s / cores } else { 0.0 },
                rss_kib: b.rss_kib,
            };
        }

        // Drain: wait for outstanding acks and deliveries.
        phase.store(PHASE_DRAIN, Ordering::Relaxed);
        let t_drain = Instant::now();
        let drain_deadline = t_drain + Duration::from_secs_f64(args.drain.max(0.0));
        let senders_opened = (0..senders).filter(|&i| matches!(layout.role(i), Role::Sender(_))).count();
        while !ctx.cancel.is_cancelled() && Instant::now() < drain_deadline {
            let c = shared.totals();
            let expected = expected_deliveries(&shared.acks_per_room(), &receivers_per_room);
            let writers_done = ctx.writers_done.load(Ordering::Relaxed) >= senders_opened.min(opened);
            if writers_done && c.acks + c.error_frames >= c.sends && c.unique >= expected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let drain_s = t_drain.elapsed().as_secs_f64();

        let c = shared.totals();
        let acks_room = shared.acks_per_room();
        let expected = expected_deliveries(&acks_room, &receivers_per_room);
        let (lost, surplus) = loss(expected, c.unique);
        let (e2e, ack, lag) = shared.merged();
        load_report = Some(Load {
            senders,
            rate_per_sender: rate,
            target_total_rate: rate * senders as f64,
            body_bytes: args.body_bytes,
            warmup_s: args.warmup,
            duration_s: args.duration,
            counters: c,
            late_threshold_ms: args.late_ms,
            send_lag_us: Pct::of(&lag),
            acked_per_s: (c1.acks - c0.acks) as f64 / window_s,
            deliveries_per_s: per_s,
            expected_deliveries: expected,
            lost_deliveries: lost,
            surplus_deliveries: surplus,
            duplicated_deliveries: c.duplicates,
            reordered_deliveries: c.reordered,
            latency_us: Pct::of(&e2e),
            ack_latency_us: Pct::of(&ack),
            ack_40ms_band: DelayedAckBand::of(&ack),
            drain_s,
        });
    }
    let server_end = sample(args.server_pid);

    // Stop everything and collect outcomes.
    ctx.cancel.cancel();
    progress_stop.cancel();
    if let Some(p) = progress {
        let _ = p.await;
    }
    let mut outcomes = Vec::with_capacity(n);
    let collect = async {
        while let Some(r) = tasks.join_next().await {
            if let Ok(o) = r {
                outcomes.push(o);
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(15), collect).await.is_err() {
        tasks.abort_all();
    }

    let slow: Vec<&Outcome> = outcomes.iter().filter(|o| o.opened && o.role == Role::Slow).collect();
    let unexpected: Vec<u16> = outcomes
        .iter()
        .filter(|o| o.opened && o.role != Role::Slow)
        .filter_map(|o| match o.end {
            End::Closed(c) => Some(c),
            End::Stopped => None,
        })
        .collect();
    let open_at_end =
        outcomes.iter().filter(|o| o.opened && o.role != Role::Slow && matches!(o.end, End::Stopped)).count();
    let slow_report = (!idle && layout.slow_fraction > 0.0).then(|| {
        let codes: Vec<u16> = slow
            .iter()
            .filter_map(|o| match o.end {
                End::Closed(c) => Some(c),
                End::Stopped => None,
            })
            .collect();
        Slow {
            fraction: layout.slow_fraction,
            connections: slow.len(),
            disconnected_by_server: codes.len(),
            close_codes: report::tally(codes),
        }
    });
    let server = args.server_pid.map(|pid| {
        let before = server_before.unwrap_or_default();
        let after = server_connected.unwrap_or_default();
        let end = server_end.unwrap_or_default();
        Server {
            pid,
            before_connect: before,
            after_connect: after,
            window_start: window_server,
            end,
            rss_bytes_per_connection: (after.rss_kib as f64 - before.rss_kib as f64) * 1024.0 / opened.max(1) as f64,
            cpu_us_window: server_window.0,
            cpu_us_per_delivery: server_window.1,
            cpu_cores: server_window.2,
        }
    });
    if idle {
        gen_report.rss_kib = sample_proc("self").map(|s| s.rss_kib).unwrap_or(0);
    }
    let totals = shared.totals();
    Ok(Report {
        scenario: if idle { "idle" } else { "load" }.into(),
        url: args.url.clone(),
        transport: args.transport.name().into(),
        prefix,
        threads: args.threads.max(1),
        setup: Setup { users: layout.users(), rooms, users_per_room, seconds: setup_s },
        connections: Connections {
            requested: n,
            opened,
            failed,
            connect_seconds: connect_s,
            connect_rate_per_s: opened as f64 / connect_s.max(1e-9),
            connect_latency_us: Pct::of(&connect_hist),
            open_at_end,
            source_addrs: args.source_addrs.iter().map(|a| a.to_string()).collect(),
        },
        load: load_report,
        slow: slow_report,
        recovery: None,
        logins: None,
        server,
        generator: gen_report,
        errors: Errors {
            connect_failures: failed,
            connect_error_samples: errors_seen,
            unexpected_disconnects: unexpected.len(),
            unexpected_close_codes: report::tally(unexpected),
            error_frames: totals.error_frames,
            send_errors: totals.send_errors,
            unparsable_frames: totals.unparsable_frames,
            foreign_deliveries: totals.foreign,
        },
    })
}

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
