//! The TCP line protocol: chat with `nc` or `telnet`. One UTF-8 line per command or message; `/`
//! starts a command, anything else is said in the current room. The server answers in human-readable
//! lines: `[#room] alice: text` for messages, `* …` for information, `ERR <code> <message>` for
//! refusals (codes as everywhere else, plus the few below). Documented in `docs/PROTOCOL.md` §6.
//!
//! Input is untrusted bytes: lines are length-limited (longer ones are refused and skipped to the next
//! newline), must be UTF-8, and are rate limited per connection; none of that can stall the server or
//! anyone else. Output goes through the same hub, bounded queue and Feed as the WebSocket, so a
//! TCP user sees a room in the same order as everyone else.
//!
//! The connection life cycle (session end, slow-client bounds, shutdown drain) is the one in
//! [`crate::core::conn`]; this module only translates. Parts: `lines` (the line codec), `session` (one
//! connection: reading, writing, the life cycle), `commands` (what each command does), `render` (how
//! events are shown).

mod commands;
mod convo;
mod lines;
mod render;
mod session;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info_span, warn};

use crate::core::chat::Chat;
use crate::core::limits::next_conn_id;

pub use lines::{Line, LineReader, split_command};

/// Kernel send buffer asked for each line connection: with the bounded queue and the write timeout it
/// bounds what a slow reader can hold (see `core::conn`).
const SEND_BUFFER: usize = 64 * 1024;

#[derive(Clone)]
pub struct TcpConfig {
    /// Idle time before the kernel probes a silent peer (TCP keepalive).
    pub keepalive: Duration,
    /// Longest accepted line, in bytes (without the newline).
    pub max_line: usize,
    pub write_timeout: Duration,
    /// Lines per second allowed per connection, and the burst above that.
    pub lines_per_sec: f64,
    pub burst: f64,
    /// Serve TLS instead of plain text.
    pub tls: Option<TlsAcceptor>,
}

/// Accepts connections until `stop` is cancelled.
pub async fn serve(listener: TcpListener, chat: Arc<Chat>, cfg: TcpConfig, stop: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, peer)) => {
                let n = next_conn_id();
                let _ = stream.set_nodelay(true);
                // A line client has no pings of its own: let the kernel find dead peers, so presence
                // shows them offline within about `keepalive` + 3 probes.
                let ka = socket2::TcpKeepalive::new()
                    .with_time(cfg.keepalive)
                    .with_interval(cfg.keepalive / 3)
                    .with_retries(3);
                let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&ka);
                let _ = socket2::SockRef::from(&stream).set_send_buffer_size(SEND_BUFFER);
                let (chat, cfg) = (chat.clone(), cfg.clone());
                let span = info_span!("tcp", conn = n, %peer);
                tokio::spawn(
                    async move {
                        match cfg.tls.clone() {
                            Some(acceptor) => {
                                if let Some(s) = crate::tls::handshake(&acceptor, stream).await {
                                    session::run(s, peer.ip(), chat, cfg).await;
                                }
                            }
                            None => session::run(stream, peer.ip(), chat, cfg).await,
                        }
                    }
                    .instrument(span),
                );
            }
            Err(e) => {
                // Out of file descriptors and the like: pause instead of spinning.
                warn!(error = %e, "tcp accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
