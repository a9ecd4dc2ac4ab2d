//! `parley chat`: a full-screen terminal client for Parley servers.
//!
//! The pieces, from the inside out:
//! - [`proto`]: the v1 wire shapes;
//! - [`model`]: what the client holds (rooms, messages keyed by `seq`, unsent messages, text panels);
//! - [`command`]: the slash commands and `/help`;
//! - [`layout`]: messages as wrapped, styled terminal lines;
//! - [`state::ChatState`]: the state machine — frames, network events and keys in, the
//!   [`state::Action`]s to perform out, no I/O;
//! - [`net`]: REST calls and the WebSocket task that reconnects by itself;
//! - [`ui::render`]: draws a `ChatState` with ratatui;
//! - [`run`]: the terminal loop that ties them together.

#![deny(clippy::unwrap_used)]

pub mod command;
pub mod layout;
pub mod markup;
pub mod model;
pub mod net;
pub mod proto;
pub mod state;
pub mod ui;

use std::io::{IsTerminal, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossterm::event::{Event, KeyCode, KeyEventKind, KeyModifiers};
use tokio::sync::mpsc;

use crate::net::{Api, Credentials, NetConfig, api_code};
use crate::state::{Action, ChatState};

/// Arguments of `parley chat`.
#[derive(clap::Args, Debug, Clone)]
pub struct ChatArgs {
    /// The server's base URL, for example http://127.0.0.1:8080.
    #[arg(value_name = "SERVER_URL")]
    pub server: String,
    /// Who to log in as (prompted for when absent).
    #[arg(long, short = 'u', env = "PARLEY_USERNAME")]
    pub username: Option<String>,
    /// The password (prompted for, without echo, when absent).
    #[arg(long, env = "PARLEY_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Create the account first.
    #[arg(long)]
    pub register: bool,
    /// The room to open first (joined when the user is not a member yet).
    #[arg(long)]
    pub room: Option<String>,
    /// Ring the terminal bell when a message mentions you.
    #[arg(long)]
    pub bell: bool,
}

/// A `client_id` prefix unique to this run.
pub fn client_prefix() -> String {
    let ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    format!("tui{:x}{:x}", std::process::id(), ms)
}

fn prompt_line(label: &str) -> anyhow::Result<String> {
    eprint!("{label}");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(line.trim().to_owned())
}

/// Reads a password from the terminal without echoing it.
fn prompt_password(label: &str) -> anyhow::Result<String> {
    use crossterm::event::{self, KeyEvent};
    if !std::io::stdin().is_terminal() {
        return prompt_line(label);
    }
    eprint!("{label}");
    std::io::stderr().flush()?;
    crossterm::terminal::enable_raw_mode()?;
    let result = (|| -> anyhow::Result<String> {
        let mut pw = String::new();
        loop {
            if let Event::Key(KeyEvent { code, modifiers, kind, .. }) = event::read()? {
                if kind == KeyEventKind::Release {
                    continue;
                }
                match code {
                    KeyCode::Enter => return Ok(pw),
                    KeyCode::Char('c') if modifiers.contains(KeyModifiers::CONTROL) => bail!("cancelled"),
                    KeyCode::Backspace => {
                        pw.pop();
                    }
                    KeyCode::Char(c) => pw.push(c),
                    _ => {}
                }
            }
        }
    })();
    crossterm::terminal::disable_raw_mode()?;
    eprintln!();
    result
}

/// Reads terminal events on a thread of its own (crossterm's blocking reader must never hold up a runtime
/// worker) until `stop` is set or the receiver is gone.
fn spawn_terminal_reader(stop: Arc<AtomicBool>) -> mpsc::UnboundedReceiver<std::io::Result<Event>> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        while !stop.load(Ordering::SeqCst) {
            let ev = match crossterm::event::poll(Duration::from_millis(100)) {
                Ok(false) => continue,
                Ok(true) => crossterm::event::read(),
                Err(e) => Err(e),
            };
            let failed = ev.is_err();
            if tx.send(ev).is_err() || failed {
                return;
            }
        }
    });
    rx
}

/// Puts the terminal back however the chat screen ends (return, error or panic unwinding through it).
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

/// Logs in (registering first with `--register`) and runs the chat screen until `/quit` or Ctrl-C.
pub async fn run(args: ChatArgs) -> anyhow::Result<()> {
    let api = Api::new(&args.server)?;
    if !std::io::stdout().is_terminal() {
        bail!("parley chat needs a terminal");
    }
    let username = match args.username.clone() {
        Some(u) => u,
        None => prompt_line("username: ")?,
    };
    let password = match args.password.clone() {
        Some(p) => p,
        None => prompt_password(&format!("password for {username}: "))?,
    };
    let creds = Credentials { username, password };
    if args.register {
        match api.register(&creds).await {
            Ok(_) => {}
            Err(e) if api_code(&e) == Some("username_taken") => {
                bail!("{e}: the account exists already; run again without --register to log in")
            }
            Err(e) => return Err(e.context("registration failed")),
        }
    }
    let login = api.login(&creds).await.context("login failed")?;
    let (network, mut events) = net::spawn(api.clone(), creds, login.token, NetConfig::default());
    let mut state = ChatState::new(client_prefix(), args.room.clone());
    state.bell = args.bell;

    let result = {
        let mut terminal = ratatui::init(); // also installs a panic hook that restores the terminal
        let _guard = TerminalGuard;
        let stop = Arc::new(AtomicBool::new(false));
        let mut keys = spawn_terminal_reader(stop.clone());
        let r = chat_loop(&mut terminal, &mut state, &network, &mut events, &mut keys).await;
        stop.store(true, Ordering::SeqCst);
        r
    };
    let token = network.token();
    network.shutdown().await;
    let _ = tokio::time::timeout(Duration::from_secs(2), api.logout(&token)).await;
    result
}

async fn chat_loop(
    terminal: &mut ratatui::DefaultTerminal,
    state: &mut ChatState,
    network: &net::Network,
    events: &mut mpsc::UnboundedReceiver<state::NetEvent>,
    keys: &mut mpsc::UnboundedReceiver<std::io::Result<Event>>,
) -> anyhow::Result<()> {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        terminal.draw(|f| ui::render(f, state))?;
        let actions = tokio::select! {
            ev = keys.recv() => match ev {
                Some(Ok(Event::Key(k))) => state.on_key(k),
                Some(Ok(_)) => Vec::new(), // resize and friends: just redraw
                Some(Err(e)) => return Err(e.into()),
                None => return Ok(()),
            },
            ev = events.recv() => match ev {
                Some(ev) => {
                    let mut actions = state.on_net(ev);
                    // Apply everything already waiting before drawing again.
                    while let Ok(ev) = events.try_recv() {
                        actions.extend(state.on_net(ev));
                    }
                    actions
                }
                None => bail!("the network task stopped"),
            },
            _ = tokio::signal::ctrl_c() => vec![Action::Quit],
            _ = async {
                #[cfg(unix)]
                term.recv().await;
                #[cfg(not(unix))]
                std::future::pending::<()>().await;
            } => vec![Action::Quit],
        };
        if actions.contains(&Action::Quit) || state.quit {
            return Ok(());
        }
        if actions.contains(&Action::Bell) {
            use std::io::Write as _;
            let mut out = std::io::stdout();
            let _ = out.write_all(b"\x07").and_then(|()| out.flush());
        }
        network.dispatch(actions);
    }
}
