//! `parley bench`: a load generator for Parley servers.
//!
//! It creates its own users and rooms (random prefix per run), opens WebSocket connections (the
//! receiving ones optionally over Server-Sent Events or the TCP line protocol),
//! drives open-loop senders and reports connect rate, throughput, end-to-end and ack latency,
//! loss and duplicates, and optionally the server's CPU per delivered message and memory per
//! connection. See `crates/bench/README.md` for scenarios and measured figures.
//!
//! The public API used by the `parley` binary is [`BenchArgs`] and [`run`].

#![deny(clippy::unwrap_used)]

pub mod accounting;
pub mod client;
pub mod lines;
pub mod load;
pub mod logins;
pub mod payload;
pub mod recovery;
pub mod report;
pub mod schedule;
pub mod stats;
pub mod trivial;

use anyhow::{Context, Result};
use std::net::{IpAddr, SocketAddr};

/// What to run.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scenario {
    /// N connections over R rooms, S open-loop senders; latency, throughput, loss.
    #[default]
    Load,
    /// Open N authenticated connections and hold them (connect rate, server memory).
    Idle,
    /// Disconnect a client, send N messages, reconnect and catch up with `history`.
    Recovery,
    /// A login storm: `--connections` logins to one account at once (answers, latency, server RSS).
    Logins,
}

/// Options of `parley bench`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Server base URL; must resolve to a loopback address.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,

    /// Node the receiving (non-sender) connections use [default: --url]. With two nodes sharing one
    /// Redis, every delivery then crosses the broker.
    #[arg(long)]
    pub receiver_url: Option<String>,

    /// Scenario to run.
    #[arg(long, value_enum, default_value_t = Scenario::Load)]
    pub scenario: Scenario,

    /// Shorthand for `--scenario idle`.
    #[arg(long)]
    pub idle: bool,

    /// How the receiving connections (non-senders, slow readers included) connect: `ws`
    /// (WebSocket), `sse` (`GET /api/v1/events`) or `tcp` (the line protocol on --tcp-addr).
    /// Senders always use WebSocket, for their acks.
    #[arg(long, value_enum, default_value_t = lines::Transport::Ws)]
    pub transport: lines::Transport,

    /// The server's TCP line-protocol address (`--tcp-listen`), HOST:PORT on loopback; required
    /// with `--transport tcp`.
    #[arg(long, value_name = "HOST:PORT")]
    pub tcp_addr: Option<String>,

    /// Connections to open (senders on WebSocket, receivers over --transport).
    #[arg(long, default_value_t = 100)]
    pub connections: usize,

    /// Rooms to spread the connections over (connection i is in room i % rooms).
    #[arg(long, default_value_t = 10)]
    pub rooms: usize,

    /// Members (users) per room; a room's connections cycle over its users, so users may hold
    /// several connections [default: connections per room, at most 100].
    #[arg(long)]
    pub users_per_room: Option<usize>,

    /// Connections that also send (the first S connections; sender s is in room s % rooms).
    #[arg(long, default_value_t = 10)]
    pub senders: usize,

    /// Messages per second per sender.
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,

    /// Messages per second over all senders (overrides --rate).
    #[arg(long)]
    pub total_rate: Option<f64>,

    /// Measured seconds (after the warmup); in idle mode, how long to hold the connections.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,

    /// Seconds of sending before the measured window (excluded from the statistics).
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,

    /// Longest wait, after the last send, for outstanding acks and deliveries.
    #[arg(long, default_value_t = 5.0)]
    pub drain: f64,

    /// Pad message bodies to at least this many bytes.
    #[arg(long, default_value_t = 0)]
    pub body_bytes: usize,

    /// Fraction of the receiving (non-sender) connections that stop reading entirely.
    #[arg(long, default_value_t = 0.0)]
    pub slow_fraction: f64,

    /// Local addresses to connect from, round-robin (e.g. 127.0.0.2,127.0.0.3): each gives ~28k
    /// ports towards the server.
    #[arg(long, value_delimiter = ',')]
    pub source_addrs: Vec<IpAddr>,

    /// Connections being opened at the same time.
    #[arg(long, default_value_t = 256)]
    pub connect_concurrency: usize,

    /// Seconds allowed for one connection's TCP connect + upgrade + hello.
    #[arg(long, default_value_t = 30.0)]
    pub connect_timeout: f64,

    /// Parallel REST calls during setup (register, login, rooms, joins).
    #[arg(long, default_value_t = 16)]
    pub setup_concurrency: usize,

    /// Server process to sample (/proc/PID/stat, /proc/PID/status): CPU per delivered message,
    /// RSS, RSS per connection.
    #[arg(long)]
    pub server_pid: Option<u32>,

    /// Worker threads of the generator's own tokio runtime.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,

    /// Print one JSON object on stdout instead of the human summary.
    #[arg(long)]
    pub json: bool,

    /// No progress lines on stderr.
    #[arg(long)]
    pub quiet: bool,

    /// WebSocket subprotocol to ask for (empty: none).
    #[arg(long, default_value = "parley.v1")]
    pub subprotocol: String,

    /// WebSocket read buffer per connection, bytes [default: 4096 idle, 65536 otherwise].
    #[arg(long)]
    pub read_buffer: Option<usize>,

    /// A send more than this many ms behind its scheduled instant counts as late.
    #[arg(long, default_value_t = 5.0)]
    pub late_ms: f64,

    /// Name prefix for users and rooms [default: random].
    #[arg(long)]
    pub prefix: Option<String>,

    /// Recovery: messages sent while the client is away.
    #[arg(long, default_value_t = 1000)]
    pub recovery_messages: usize,

    /// Recovery: runs (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub recovery_runs: usize,

    /// Recovery: `limit` of each history page (at most 200).
    #[arg(long, default_value_t = 200)]
    pub history_page: usize,

    /// Instead of generating load, run the trivial in-memory server on ADDR (loopback) to measure
    /// the generator's own ceiling; prints its URL on stdout.
    #[arg(long, value_name = "ADDR")]
    pub trivial_server: Option<SocketAddr>,

    /// How long the trivial server runs before it stops by itself (Ctrl-C stops it earlier).
    #[arg(long, default_value_t = 900.0)]
    pub serve_secs: f64,
}

impl Default for BenchArgs {
    fn default() -> Self {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct P {
            #[command(flatten)]
            a: BenchArgs,
        }
        P::parse_from(["parley-bench"]).a
    }
}

/// Runs `parley bench` on a runtime of its own (`--threads` workers), printing progress on stderr
/// and the report on stdout.
pub async fn run(args: BenchArgs) -> Result<()> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("parley-bench".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(args.threads.max(1))
                .thread_name("bench-worker")
                .enable_all()
                .build();
            let r = match rt {
                Ok(rt) => {
                    let r = rt.block_on(run_and_print(args));
                    rt.shutdown_timeout(std::time::Duration::from_secs(2));
                    r
                }
                Err(e) => Err(e.into()),
            };
            let _ = tx.send(r);
        })
        .context("starting the bench thread")?;
    rx.await.context("bench thread ended without a result")?
}

async fn run_and_print(args: BenchArgs) -> Result<()> {
    if let Some(addr) = args.trivial_server {
        return trivial::run_standalone(addr, args.serve_secs, args.quiet).await;
    }
    let report = execute(&args).await?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.human());
    }
    Ok(())
}

/// Runs the chosen scenario on the current runtime and returns its report.
pub async fn execute(args: &BenchArgs) -> Result<report::Report> {
    let scenario = if args.idle { Scenario::Idle } else { args.scenario };
    match scenario {
        Scenario::Load | Scenario::Idle => load::run_load(args, scenario).await,
        Scenario::Recovery => recovery::run_recovery(args).await,
        Scenario::Logins => logins::run_logins(args).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_util::sync::CancellationToken;

    async fn trivial() -> (String, CancellationToken) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let cancel = CancellationToken::new();
        tokio::spawn(trivial::serve(l, cancel.clone()));
        (url, cancel)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn end_to_end_against_trivial_server_loses_nothing() {
        let (url, stop) = trivial().await;
        let args = BenchArgs {
            url,
            connections: 40,
            rooms: 4,
            users_per_room: Some(3),
            senders: 8,
            rate: 200.0,
            duration: 1.0,
            warmup: 0.2,
            drain: 10.0,
            body_bytes: 64,
            quiet: true,
            ..BenchArgs::default()
        };
        let r = execute(&args).await.unwrap();
        stop.cancel();
        let l = r.load.as_ref().unwrap();
        let c = &l.counters;
        assert_eq!(r.connections.opened, 40, "{}", r.human());
        assert_eq!(r.connections.failed, 0);
        assert!(c.sends >= 8 * 200, "{}", r.human());
        assert_eq!(c.acks, c.sends, "{}", r.human());
        // 10 connections per room, all of them receivers.
        assert_eq!(l.expected_deliveries, c.sends * 10);
        assert_eq!(l.lost_deliveries, 0, "{}", r.human());
        assert_eq!(l.duplicated_deliveries, 0);
        assert_eq!(l.surplus_deliveries, 0);
        assert_eq!(c.unique, l.expected_deliveries);
        assert!(l.latency_us.count > 0);
        assert!(l.ack_latency_us.count > 0);
        assert_eq!(r.errors.error_frames + r.errors.send_errors, 0);
        assert_eq!(r.errors.unexpected_disconnects, 0);
        // The JSON form is one object.
        let v: serde_json::Value = serde_json::to_value(&r).unwrap();
        assert_eq!(v["load"]["lost_deliveries"], 0);
    }

    /// A real Parley server in-process on port 0 (HTTP and the TCP line port), with the bench
    /// flags of `scripts/bench-scenarios.sh`; returns its URL, TCP address and a stop handle.
    async fn parley_server(
        dir: &std::path::Path,
    ) -> (String, SocketAddr, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<anyhow::Result<()>>) {
        let mut flags = parley_testkit::flags::base(dir);
        flags.extend(parley_testkit::flags::NO_LIMITS.map(String::from));
        let config = parley::config::Config::from_flags(flags).unwrap();
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (addr, tcp_addr) = (http.local_addr().unwrap(), tcp.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let listeners = parley::server::Listeners { http, tcp: Some(tcp) };
        let handle = tokio::spawn(parley::server::run(config, listeners, async move {
            let _ = stopped.await;
        }));
        (format!("http://{addr}"), tcp_addr, stop, handle)
    }

    /// One load run with the receivers over `transport` against a real server: every expected
    /// delivery arrives exactly once.
    async fn real_server_run(transport: lines::Transport) {
        let dir = tempfile::tempdir().unwrap();
        let (url, tcp_addr, stop, handle) = parley_server(dir.path()).await;
        let args = BenchArgs {
            url,
            transport,
            tcp_addr: Some(tcp_addr.to_string()),
            connections: 24,
            rooms: 2,
            users_per_room: Some(6),
            senders: 4,
            rate: 50.0,
            duration: 1.0,
            warmup: 0.2,
            drain: 10.0,
            body_bytes: 64,
            quiet: true,
            ..BenchArgs::default()
        };
        let r = execute(&args).await.unwrap();
        let _ = stop.send(());
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), handle).await;
        let l = r.load.as_ref().unwrap();
        let c = &l.counters;
        assert_eq!(r.transport, transport.name());
        assert_eq!(r.connections.opened, 24, "{}", r.human());
        assert_eq!(r.connections.failed, 0, "{}", r.human());
        assert!(c.sends >= 4 * 50, "{}", r.human());
        assert_eq!(c.acks, c.sends, "{}", r.human());
        // 12 connections per room, all of them receivers (the 2 senders of a room over WebSocket).
        assert_eq!(l.expected_deliveries, c.sends * 12, "{}", r.human());
        assert_eq!(c.unique, l.expected_deliveries, "{}", r.human());
        assert_eq!(l.lost_deliveries, 0, "{}", r.human());
        assert_eq!(l.duplicated_deliveries, 0, "{}", r.human());
        assert_eq!(l.surplus_deliveries, 0, "{}", r.human());
        assert_eq!(c.foreign, 0, "{}", r.human());
        assert!(l.latency_us.count > 0);
        assert_eq!(r.errors.error_frames + r.errors.send_errors + r.errors.unparsable_frames, 0, "{}", r.human());
        assert_eq!(r.errors.unexpected_disconnects, 0, "{}", r.human());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sse_receivers_against_a_real_server_lose_nothing() {
        real_server_run(lines::Transport::Sse).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tcp_receivers_against_a_real_server_lose_nothing() {
        real_server_run(lines::Transport::Tcp).await;
    }

    #[test]
    fn tcp_transport_needs_a_tcp_address() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let args =
            BenchArgs { transport: lines::Transport::Tcp, url: "http://127.0.0.1:9".into(), ..BenchArgs::default() };
        let err = rt.block_on(execute(&args)).unwrap_err();
        assert!(err.to_string().contains("--tcp-addr"), "{err}");
        let args = BenchArgs { tcp_addr: Some("192.0.2.1:7070".into()), ..args };
        let err = rt.block_on(execute(&args)).unwrap_err();
        assert!(err.to_string().contains("loopback"), "{err}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn idle_and_recovery_against_trivial_server() {
        let (url, stop) = trivial().await;
        let idle = BenchArgs {
            url: url.clone(),
            idle: true,
            connections: 30,
            rooms: 3,
            duration: 0.1,
            source_addrs: vec!["127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap()],
            quiet: true,
            ..BenchArgs::default()
        };
        let r = execute(&idle).await.unwrap();
        assert_eq!(r.scenario, "idle");
        assert_eq!(r.connections.opened, 30, "{}", r.human());
        assert_eq!(r.connections.open_at_end, 30);

        let rec = BenchArgs {
            url,
            scenario: Scenario::Recovery,
            recovery_messages: 450,
            recovery_runs: 3,
            quiet: true,
            ..BenchArgs::default()
        };
        let r = execute(&rec).await.unwrap();
        stop.cancel();
        let rv = r.recovery.unwrap();
        assert_eq!(rv.runs.len(), 3);
        for run in &rv.runs {
            assert_eq!(run.recovered, 450);
            assert_eq!(run.pages, 3, "200 + 200 + 50");
        }
        assert!(rv.median_ms > 0.0);
    }

    #[test]
    fn refuses_non_loopback_targets() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let err = rt.block_on(client::Target::parse("http://192.0.2.1:8080")).unwrap_err();
        assert!(err.to_string().contains("loopback"), "{err}");
        let t = rt.block_on(client::Target::parse("http://127.0.0.1:9")).unwrap();
        assert_eq!(t.api("/login"), "http://127.0.0.1:9/api/v1/login");
        assert_eq!(t.ws_url("abc"), "ws://127.0.0.1:9/ws?token=abc");
    }

    #[test]
    fn args_parse() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct P {
            #[command(flatten)]
            a: BenchArgs,
        }
        let p = P::parse_from([
            "x",
            "--idle",
            "--connections",
            "20000",
            "--source-addrs",
            "127.0.0.2,127.0.0.3",
            "--server-pid",
            "42",
        ]);
        assert!(p.a.idle);
        assert_eq!(p.a.transport, lines::Transport::Ws);
        let q = P::parse_from(["x", "--transport", "tcp", "--tcp-addr", "127.0.0.1:7070"]);
        assert_eq!(q.a.transport, lines::Transport::Tcp);
        assert_eq!(q.a.tcp_addr.as_deref(), Some("127.0.0.1:7070"));
        assert_eq!(p.a.source_addrs.len(), 2);
        assert_eq!(p.a.server_pid, Some(42));
        let d = BenchArgs::default();
        assert_eq!(d.url, "http://127.0.0.1:8080");
        assert_eq!(d.threads, 1);
    }
}
