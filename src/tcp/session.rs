//! One line connection: reading lines, running commands, and — once logged in — the connection life
//! cycle of [`crate::core::conn`], whose deliveries and ends are written as lines.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{Instant, timeout};

use super::TcpConfig;
use super::commands::command;
use super::lines::{Line, LineReader};
use super::render::{label_room, write_out};
use crate::core::chat::Chat;
use crate::core::conn::{CLOSE_NOTICE, Connection, End, Timing, Wake};
use crate::core::cursor::Out;
use crate::core::domain::RoomId;
use crate::core::hub::HubEvent;
use crate::core::limits::{Bucket, Rate};

/// A logged-in line connection.
pub(super) struct Session {
    pub conn: Connection,
    /// How each followed room is shown: `#name`, or `@peer` for a direct conversation.
    pub labels: HashMap<RoomId, String>,
    pub current: Option<RoomId>,
}

/// The last line before the server closes a logged-in connection.
fn end_line(end: End) -> &'static str {
    match end {
        End::SessionEnded => "ERR session_ended your session ended (logged out or expired); log in again",
        End::TooSlow => "ERR too_slow you were not reading fast enough; reconnect",
        End::ShuttingDown => "* The server is shutting down. Bye.",
        End::Silent => "ERR keepalive_timeout nothing heard from you",
    }
}

pub(super) async fn run<S>(stream: S, peer: IpAddr, chat: Arc<Chat>, cfg: TcpConfig)
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut rd, wr) = tokio::io::split(stream);
    let mut out = Output { w: Box::new(wr), staged: Vec::with_capacity(4096), deadline: cfg.write_timeout };
    let mut reader = LineReader::default();
    // Lines per second from this connection (on top of the per-user message budget in `Chat`).
    let rate = Rate { per_sec: cfg.lines_per_sec, burst: cfg.burst };
    let mut bucket = Bucket::full(rate, std::time::Instant::now());
    let mut warned: Option<Instant> = None;
    let mut session: Option<Session> = None;
    let mut chunk = vec![0u8; 4096];
    let timing = Timing { keepalive: cfg.keepalive, write_timeout: cfg.write_timeout, hears_client: false };
    out.line(
        "* Welcome to Parley. /login <username> <password> or /register <username> <password>; /help lists commands.",
    );
    if out.flush().await.is_err() {
        return;
    }
    let end = loop {
        // Lines already buffered are handled before reading more — unless the session has ended.
        if session.as_ref().is_none_or(|s| s.conn.live().is_ok())
            && let Some(line) = reader.next(cfg.max_line)
        {
            if bucket.take(rate, std::time::Instant::now()).is_err() {
                let now = Instant::now();
                if warned.is_none_or(|w| now.duration_since(w) > Duration::from_secs(1)) {
                    warned = Some(now);
                    out.line("ERR too_fast slow down: lines are being dropped");
                }
            } else {
                match line {
                    Line::TooLong => {
                        out.line(&format!("ERR line_too_long lines are limited to {} bytes", cfg.max_line))
                    }
                    Line::BadUtf8 => out.line("ERR bad_utf8 lines must be UTF-8 text"),
                    Line::Text(t) => {
                        if !command(&chat, peer, timing, &mut session, &mut out, t.trim_end()).await {
                            out.line("* Bye.");
                            let _ = out.flush().await;
                            return;
                        }
                    }
                }
            }
            match out.flush().await {
                Ok(()) => continue,
                Err(Stop::Gone) => return,
                Err(Stop::TooSlow) => break End::TooSlow,
            }
        }
        let wake = async {
            match &mut session {
                Some(s) => s.conn.wake().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            wake = wake => {
                let Some(s) = session.as_mut() else { return };
                match wake {
                    Wake::End(end) => break end,
                    // The kernel's TCP keepalive watches line connections.
                    Wake::Keepalive => {}
                    Wake::Deliveries => {
                        let mut outs = Vec::new();
                        if let Err(end) = s.conn.take(&mut outs).await {
                            break end;
                        }
                        let n = outs.len() as u64;
                        write_outs(&chat, s, &mut out, outs).await;
                        match out.flush().await {
                            Ok(()) => metrics::counter!("parley_messages_delivered_total").increment(n),
                            Err(Stop::Gone) => return,
                            Err(Stop::TooSlow) => break s.conn.too_slow(),
                        }
                    }
                }
            }
            r = rd.read(&mut chunk) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => reader.push(&chunk[..n]),
            },
        }
    };
    if let Some(s) = session.as_mut()
        && end == End::ShuttingDown
    {
        // Drain: what is queued (the echo of a line just said, say) goes out before the last line.
        let mut outs = Vec::new();
        s.conn.drain(&mut outs).await;
        write_outs(&chat, s, &mut out, outs).await;
    }
    out.line(end_line(end));
    // Told when it can be: a reader that is merely slow gets it if it catches up within the notice.
    out.deadline = out.deadline.min(CLOSE_NOTICE);
    let _ = out.flush().await;
}

async fn write_outs(chat: &Chat, s: &mut Session, out: &mut Output, outs: Vec<Out>) {
    for o in outs {
        if let Out::Shared(d) = &o
            && let HubEvent::Joined(r) | HubEvent::RoomUpdated(r) = &d.event
        {
            label_room(chat, s, r).await;
        }
        write_out(out, s, o);
    }
}

/// Why a write did not complete.
pub(super) enum Stop {
    TooSlow,
    Gone,
}

/// Lines are staged in memory and written by one `flush` per batch.
pub(super) struct Output {
    w: Box<dyn AsyncWrite + Send + Unpin>,
    staged: Vec<u8>,
    deadline: Duration,
}

impl Output {
    pub(crate) fn line(&mut self, s: &str) {
        self.staged.extend_from_slice(s.as_bytes());
        self.staged.push(b'\n');
    }

    /// Writes what is staged within the deadline.
    async fn flush(&mut self) -> Result<(), Stop> {
        if self.staged.is_empty() {
            return Ok(());
        }
        let r = timeout(self.deadline, self.w.write_all(&self.staged)).await;
        self.staged.clear();
        match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Stop::Gone),
            Err(_) => Err(Stop::TooSlow),
        }
    }
}
