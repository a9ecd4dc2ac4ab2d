//! The `parley` command: `serve` runs a node (the default: `parley --listen …` is `parley serve
//! --listen …`); `chat` is the terminal client (`crates/tui`); `bench` drives a node with load
//! (`crates/bench`); `healthcheck` asks a node's `/readyz` (for container healthchecks).

// As in `lib.rs`: no `unwrap()` outside tests.
#![deny(clippy::unwrap_used)]

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use parley::config::{Config, LogFormat};

#[derive(Parser)]
#[command(
    name = "parley",
    version,
    about = "A real-time chat server: WebSocket, REST, one hub, durable history.",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// With no command, the flags of `serve`.
    #[command(flatten)]
    serve: Box<Config>,
}

#[derive(Subcommand)]
enum Command {
    /// Run a chat server (the default when no command is given).
    Serve(Box<Config>),
    /// Chat from the terminal with a running server.
    Chat(parley_tui::ChatArgs),
    /// Load-test a running server.
    Bench(Box<parley_bench::BenchArgs>),
    /// Exit 0 when a node's `/readyz` answers 200, 1 otherwise (for container healthchecks).
    Healthcheck(parley::healthcheck::HealthcheckArgs),
}

fn init_logging(format: LogFormat) {
    let filter =
        EnvFilter::try_from_env("PARLEY_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    // Colour codes only for a person at a terminal, never into a log file or a collector.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Bench(args)) => parley_bench::run(*args).await.map(|_| ExitCode::SUCCESS),
        Some(Command::Chat(args)) => parley_tui::run(args).await.map(|_| ExitCode::SUCCESS),
        Some(Command::Healthcheck(args)) => Ok(parley::healthcheck::run(args).await),
        Some(Command::Serve(config)) => Ok(serve(*config).await),
        None => Ok(serve(*cli.serve).await),
    }
}

/// Runs a node. Every error, at start-up or later, is logged once with its cause chain (and not
/// printed again on the way out); the exit code says it failed.
async fn serve(config: Config) -> ExitCode {
    init_logging(config.log_format);
    let json = config.log_format == LogFormat::Json;
    let started = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let result = async {
        let listeners = parley::server::Listeners::bind(&config).await?;
        let started = started.clone();
        parley::server::run_with(config, listeners, shutdown_signal(), move |ready| {
            started.store(true, std::sync::atomic::Ordering::Relaxed);
            announce(ready, json)
        })
        .await
    }
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if started.load(std::sync::atomic::Ordering::Relaxed) => {
            tracing::error!(error = causes(&e), "parley stopped with an error");
            ExitCode::FAILURE
        }
        Err(e) => {
            tracing::error!(error = causes(&e), "parley could not start");
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, `: `-separated, each said once: libraries often repeat their source's
/// text in their own message, and `{:#}` would then print the root cause twice.
fn causes(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain().map(|c| c.to_string()) {
        if !out.contains(&cause) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&cause);
        }
    }
    out
}

/// The banner, once the node is ready to serve (store, Redis and TLS set up). As text on stdout
/// (scripts read the first line to find the port when listening on port 0), or as one JSON log line.
fn announce(ready: &parley::server::Ready, json: bool) {
    let (http, ws) = if ready.tls { ("https", "wss") } else { ("http", "ws") };
    let url = format!("{http}://{}/", ready.http);
    let ws_url = format!("{ws}://{}/ws", ready.http);
    if json {
        tracing::info!(
            url = %url,
            websocket = %ws_url,
            tcp = ready.tcp.map(|a| a.to_string()),
            metrics = ready.metrics.map(|a| format!("http://{a}/metrics")),
            "Parley is running"
        );
        return;
    }
    let mut banner = format!("Parley is running: open {url} in a browser (WebSocket: {ws_url})\n");
    if let Some(t) = ready.tcp {
        let how = if ready.tls {
            format!("openssl s_client -quiet -connect {t}")
        } else {
            format!("nc {} {}", t.ip(), t.port())
        };
        banner.push_str(&format!("Terminal users: {how}  (or: parley chat {http}://{})\n", ready.http));
    }
    if let Some(m) = ready.metrics {
        banner.push_str(&format!("Metrics and profiles: http://{m}/metrics, http://{m}/debug/pprof/profile\n"));
    }
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    // A closed stdout must not stop the server.
    let _ = out.write_all(banner.as_bytes()).and_then(|_| out.flush());
}
