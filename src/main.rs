//! The `parley` command: `serve` runs a node; `chat` is the terminal client (`crates/tui`); `bench`
//! drives a node with load (`crates/bench`).

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use parley::config::{Config, LogFormat};

#[derive(Parser)]
#[command(name = "parley", version, about = "A real-time chat server: WebSocket, REST, one hub, durable history.")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run a chat server (the default when no command is given).
    Serve(Config),
    /// Chat from the terminal with a running server.
    Chat(parley_tui::ChatArgs),
    /// Load-test a running server.
    Bench(parley_bench::BenchArgs),
}

fn init_logging(format: LogFormat) {
    let filter =
        EnvFilter::try_from_env("PARLEY_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
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
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Bench(args)) => parley_bench::run(args).await,
        Some(Command::Chat(args)) => parley_tui::run(args).await,
        Some(Command::Serve(config)) => serve(config).await,
        None => serve(Config::from_flags(std::iter::empty::<String>())?).await,
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    init_logging(config.log_format);
    let listeners = parley::server::Listeners::bind(&config).await?;
    let addr = listeners.http.local_addr()?;
    // Scripts read the first line to find the port when listening on port 0. Write errors are
    // ignored: a closed stdout must not stop the server.
    let mut banner = format!("Parley is running: open http://{addr}/ in a browser (WebSocket: ws://{addr}/ws)\n");
    if let Some(tcp) = &listeners.tcp {
        let t = tcp.local_addr()?;
        banner.push_str(&format!("Terminal users: nc {} {}  (or: parley chat http://{addr})\n", t.ip(), t.port()));
    }
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(banner.as_bytes()).and_then(|_| out.flush());
    }
    if let Err(e) = parley::server::run(config, listeners, shutdown_signal()).await {
        tracing::error!(error = format!("{e:#}"), "parley stopped with an error");
        return Err(e);
    }
    Ok(())
}
