//! The TCP line protocol: chat with `nc` or `telnet`. One UTF-8 line per command or message; `/`
//! starts a command, anything else is said in the current room. The server answers in human-readable
//! lines: `[#room] alice: text` for messages, `* …` for information, `ERR <code> <message>` for
//! refusals (codes as everywhere else, plus the few below). Documented in `docs/PROTOCOL.md` §5.
//!
//! Input is untrusted bytes: lines are length-limited (longer ones are refused and skipped to the next
//! newline), must be UTF-8, and are rate limited per connection; none of that can stall the server or
//! anyone else. Output goes through the same hub, bounded queue and [`Feed`] as the WebSocket, so a
//! TCP user sees a room in the same order as everyone else.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::{Instant, timeout};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info_span, warn};

use crate::core::chat::{Chat, Identity};
use crate::core::cursor::{Feed, Out};
use crate::core::domain::*;
use crate::core::error::Error;
use crate::core::hub::{CloseReason, Delivery, HubEvent, Registration, WireSlot};
use crate::core::limits::{Admission, Bucket, Rate, Transport, next_conn_id};

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
                let (chat, cfg) = (chat.clone(), cfg.clone());
                let span = info_span!("tcp", conn = n, %peer);
                tokio::spawn(
                    async move {
                        match cfg.tls.clone() {
                            Some(acceptor) => {
                                if let Some(s) = crate::tls::handshake(&acceptor, stream).await {
                                    conn(s, peer.ip(), chat, cfg).await;
                                }
                            }
                            None => conn(stream, peer.ip(), chat, cfg).await,
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

/// Splits input into lines, refusing overlong ones without buffering them: after [`LineReader::next`]
/// returns `None`, at most `max` bytes stay buffered.
#[derive(Default)]
pub struct LineReader {
    buf: BytesMut,
    discarding: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    Text(String),
    TooLong,
    BadUtf8,
}

impl LineReader {
    /// Appends bytes read from the peer.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes buffered and not yet returned as a line.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete line in the buffer, if any.
    #[allow(clippy::should_implement_trait)] // takes the limit, so not an Iterator
    pub fn next(&mut self, max: usize) -> Option<Line> {
        loop {
            match self.buf.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    let mut raw = self.buf.split_to(i + 1);
                    if std::mem::take(&mut self.discarding) {
                        continue; // the tail of a line already refused
                    }
                    raw.truncate(i);
                    if raw.last() == Some(&b'\r') {
                        raw.truncate(i - 1);
                    }
                    if raw.len() > max {
                        return Some(Line::TooLong);
                    }
                    return Some(match String::from_utf8(raw.to_vec()) {
                        Ok(s) => Line::Text(s),
                        Err(_) => Line::BadUtf8,
                    });
                }
                None if self.buf.len() > max => {
                    let refused = !self.discarding;
                    self.buf.clear();
                    self.discarding = true;
                    return refused.then_some(Line::TooLong);
                }
                None => return None,
            }
        }
    }
}

const HELP: &str = "\
* Commands:
*   /register <username> <password>   create an account (then /login)
*   /login <username> <password>      log in
*   /rooms                            your rooms and conversations, with unread counts
*   /list                             public rooms
*   /create <room> [private]          create a room
*   /join <room>                      join a room and make it current
*   /go <room>                        make one of your rooms current
*   /leave [room]                     leave a room (default: the current one)
*   /invite <username> [room]         invite someone to a room
*   /invites                          your pending invitations
*   /accept <room>                    accept an invitation (joins the room)
*   /decline <room>                   decline an invitation
*   /owner <room> <username>          hand a room you own to one of its members
*   /who [room]                       members and who is online
*   /history [n]                      the last n messages of the current room (default 20, at most 200)
*   /search [+cursor] <query>         search your rooms (words, \"phrases\", prefix*, in:room by:user
*                                     from:/before:YYYY-MM-DD has:link); matches shown *like this*
*   /msg <username> <text>            a direct message
*   /nick <display name>              change your display name
*   /quit                             leave
* Anything else is said in the current room.
";

/// A search snippet on one line, its matches between `*`; line breaks become spaces.
fn marked_snippet(s: &crate::core::search::Snippet) -> String {
    let mut out = String::with_capacity(s.text.len() + 2 * s.highlights.len());
    let mut marks = s.highlights.iter().flat_map(|&(a, b)| [a, b]).peekable();
    for (i, c) in s.text.chars().enumerate() {
        while marks.peek() == Some(&i) {
            marks.next();
            out.push('*');
        }
        out.push(if c.is_control() { ' ' } else { c });
    }
    if marks.next().is_some() {
        out.push('*');
    }
    out
}

struct Session {
    who: Identity,
    reg: Registration,
    feed: Feed,
    /// How each followed room is shown: `#name`, or `@peer` for a direct conversation.
    labels: HashMap<RoomId, String>,
    current: Option<RoomId>,
    /// This connection's place under the connection caps.
    _admission: Admission,
}

async fn conn<S>(stream: S, peer: IpAddr, chat: Arc<Chat>, cfg: TcpConfig)
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
    let mut batch = Vec::new();
    out.line(
        "* Welcome to Parley. /login <username> <password> or /register <username> <password>; /help lists commands.",
    );
    if !out.flush().await {
        return;
    }
    loop {
        // Lines already buffered are handled before reading more.
        if let Some(line) = reader.next(cfg.max_line) {
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
                        if !command(&chat, peer, &mut session, &mut out, t.trim_end()).await {
                            out.line("* Bye.");
                            out.flush().await;
                            return;
                        }
                    }
                }
            }
            if !out.flush().await {
                return;
            }
            continue;
        }
        let ctl = session.as_ref().map(|s| s.reg.ctl.clone());
        let closed = async {
            match &ctl {
                Some(c) => c.closed().await,
                None => std::future::pending().await,
            }
        };
        let deliveries = async {
            match &mut session {
                Some(s) => s.reg.rx.recv_many(&mut batch, 64).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            reason = closed => {
                out.line(match reason {
                    CloseReason::SessionEnded => "ERR session_ended you were logged out",
                    CloseReason::TooSlow => "ERR too_slow you were not reading fast enough; reconnect",
                    CloseReason::ShuttingDown => "* The server is shutting down. Bye.",
                });
                out.flush().await;
                return;
            }
            n = deliveries => {
                let Some(s) = session.as_mut() else { return };
                if n == 0 { return; }
                let mut outs = Vec::new();
                for d in batch.drain(..) {
                    if let HubEvent::Joined(r) | HubEvent::RoomUpdated(r) = &d.event {
                        label_room(&chat, s, r).await;
                    }
                    s.feed.deliver(&chat, &s.who, d, &mut outs).await;
                }
                let n = outs.len() as u64;
                for o in outs {
                    write_out(&mut out, s, o);
                }
                if !out.flush().await { return; }
                metrics::counter!("parley_messages_delivered_total").increment(n);
            }
            r = rd.read(&mut chunk) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => reader.push(&chunk[..n]),
            },
        }
    }
}

/// Lines are staged in memory and written by one `flush` per batch.
struct Output {
    w: Box<dyn AsyncWrite + Send + Unpin>,
    staged: Vec<u8>,
    deadline: Duration,
}

impl Output {
    fn line(&mut self, s: &str) {
        self.staged.extend_from_slice(s.as_bytes());
        self.staged.push(b'\n');
    }

    /// Writes what is staged; false when the peer is gone or does not read within the deadline.
    async fn flush(&mut self) -> bool {
        if self.staged.is_empty() {
            return true;
        }
        let ok = matches!(timeout(self.deadline, self.w.write_all(&self.staged)).await, Ok(Ok(())));
        self.staged.clear();
        ok
    }
}

async fn label_room(chat: &Chat, s: &mut Session, r: &Room) {
    let label = match r.kind {
        RoomKind::Group => format!("#{}", r.name),
        RoomKind::Direct => match chat.my_rooms(&s.who).await {
            Ok(views) => views
                .iter()
                .find(|v| v.room.id == r.id)
                .and_then(|v| v.peer.as_ref())
                .map_or_else(|| "@?".to_owned(), |p| format!("@{}", p.username)),
            Err(_) => "@?".to_owned(),
        },
    };
    s.labels.insert(r.id, label);
}

/// The part of a message line after the room label, shared by every TCP reader of the delivery.
fn message_tail(m: &Message) -> String {
    let who = m.sender.as_ref().map_or("?", |u| u.username.as_str());
    let target = m.target.as_ref().map_or("?", |u| u.username.as_str());
    let mut line = match m.kind {
        MessageKind::Text if m.deleted => format!("* message {} was deleted", m.seq),
        MessageKind::Text => format!("{who}: {}", m.body),
        MessageKind::Create => format!("* {who} created the room"),
        MessageKind::Join => format!("* {who} joined"),
        MessageKind::Leave => format!("* {who} left"),
        MessageKind::Invite => format!("* {who} invited {target}"),
        MessageKind::Kick => format!("* {who} removed {target}"),
        MessageKind::Ban => format!("* {who} banned {target}"),
        MessageKind::Unban => format!("* {who} lifted the ban on {target}"),
        MessageKind::Rename => format!("* {who} renamed the room to #{}", m.body),
        MessageKind::Topic => format!("* {who} set the topic: {}", m.body),
        MessageKind::Role => format!("* {who} made {target} {}", m.body),
        MessageKind::OwnerChanged => format!("* {who} handed the room to {target}, its owner now"),
    };
    if m.edited_at.is_some() && !m.deleted {
        line.push_str(" (edited)");
    }
    // One message, one line: continuation lines are indented.
    line.replace('\r', "").replace('\n', "\n    ")
}

fn encode_line_tail(e: &HubEvent) -> Bytes {
    Bytes::from(match e {
        HubEvent::Message(m) | HubEvent::Updated(m) => message_tail(m),
        _ => String::new(),
    })
}

fn write_out(out: &mut Output, s: &mut Session, o: Out) {
    let label = |s: &Session, r: RoomId| s.labels.get(&r).cloned().unwrap_or_else(|| format!("#{}", r.0));
    match o {
        Out::Stored(m) => {
            let l = format!("[{}] {}", label(s, m.room), message_tail(&m));
            out.line(&l);
        }
        Out::Shared(d) => write_shared(out, s, &d, &label),
    }
}

fn write_shared(out: &mut Output, s: &mut Session, d: &Arc<Delivery>, label: &dyn Fn(&Session, RoomId) -> String) {
    match &d.event {
        HubEvent::Message(m) => {
            let tail = d.encoded(WireSlot::Line, encode_line_tail);
            out.line(&format!("[{}] {}", label(s, m.room), String::from_utf8_lossy(&tail)));
        }
        HubEvent::Updated(m) => {
            let tail = d.encoded(WireSlot::Line, encode_line_tail);
            out.line(&format!("[{}] (update #{}) {}", label(s, m.room), m.seq, String::from_utf8_lossy(&tail)));
        }
        HubEvent::Joined(r) => {
            out.line(&format!("* You are in {} now.", label(s, r.id)));
            if s.current.is_none() {
                s.current = Some(r.id);
            }
        }
        HubEvent::Left(r) => {
            out.line(&format!("* You are no longer in {}.", label(s, *r)));
            s.labels.remove(r);
            if s.current == Some(*r) {
                s.current = None;
            }
        }
        HubEvent::RoomUpdated(r) => out.line(&format!("* {} — topic: {}", label(s, r.id), r.topic)),
        HubEvent::Presence { user, online } => {
            out.line(&format!("* {} is {}", user.username, if *online { "online" } else { "offline" }))
        }
        HubEvent::UserUpdated(u) if u.id == s.who.user.id => s.who.user = u.clone(),
        HubEvent::Invited(i) => out.line(&format!(
            "* {} invited you to #{}: /accept {} to join, /decline {} to refuse.",
            i.invited_by.username, i.room.name, i.room.name, i.room.name
        )),
        HubEvent::Typing { .. } | HubEvent::Read { .. } | HubEvent::UserUpdated(_) => {}
    }
}

fn err(out: &mut Output, e: &Error) {
    if let Error::Internal(cause) = e {
        tracing::error!(error = format!("{cause:#}"), "tcp command failed");
    }
    out.line(&format!("ERR {} {}", e.code(), e.public_message()));
}

/// A line as a command name and its argument text: `/join general` → `("join", "general")`; a line
/// without `/` is `("say", line)`; an empty line is nothing. Pure, so it is fuzzed (`fuzz/`).
pub fn split_command(line: &str) -> Option<(&str, &str)> {
    if line.is_empty() {
        return None;
    }
    Some(match line.strip_prefix('/') {
        Some(c) => c.split_once(' ').map_or((c, ""), |(a, b)| (a, b.trim())),
        None => ("say", line),
    })
}

/// Handles one line; false to end the connection.
async fn command(chat: &Arc<Chat>, peer: IpAddr, session: &mut Option<Session>, out: &mut Output, line: &str) -> bool {
    let Some((cmd, rest)) = split_command(line) else { return true };
    match (cmd, session.as_mut()) {
        ("quit", _) => return false,
        ("help", _) => HELP.lines().for_each(|l| out.line(l)),
        ("register", _) => {
            let mut it = rest.split_whitespace();
            let (Some(u), Some(p)) = (it.next(), it.next()) else {
                out.line("ERR bad_request usage: /register <username> <password>");
                return true;
            };
            let res = async {
                chat.auth_attempt(peer)?;
                chat.register(Username::parse(u)?, Password::parse(p)?, None).await
            }
            .await;
            match res {
                Ok(user) => {
                    out.line(&format!("* Registered {}. Now /login {} <password>.", user.username, user.username))
                }
                Err(e) => err(out, &e),
            }
        }
        ("login", _) => {
            let mut it = rest.split_whitespace();
            let (Some(u), Some(p)) = (it.next(), it.next()) else {
                out.line("ERR bad_request usage: /login <username> <password>");
                return true;
            };
            match login(chat, peer, u, p).await {
                Ok(s) => {
                    out.line(&format!("* Hello, {}! You are in {} room(s).", s.who.user.display_name, s.labels.len()));
                    if let Some(cur) = s.current {
                        out.line(&format!(
                            "* Current room: {} (/go <room> to switch, /help for more).",
                            s.labels[&cur]
                        ));
                    } else {
                        out.line("* Join a room with /join <room>, or /list the public ones.");
                    }
                    *session = Some(s);
                }
                Err(e @ Error::TooManyConnections { .. }) => {
                    // Refused at the cap: say why, then close.
                    err(out, &e);
                    return false;
                }
                Err(e) => err(out, &e),
            }
        }
        (_, None) => out.line("ERR unauthorized log in first: /login <username> <password> (or /register)"),
        (cmd, Some(s)) => {
            if let Err(e) = logged_in(chat, s, out, cmd, rest).await {
                err(out, &e);
            }
        }
    }
    true
}

async fn login(chat: &Arc<Chat>, peer: IpAddr, username: &str, password: &str) -> Result<Session, Error> {
    chat.auth_attempt(peer)?;
    let ok = chat.login(username, password).await?;
    let who = chat.authenticate(&ok.token).await?;
    let admission = chat.admit(&who, Transport::Tcp)?;
    let (reg, rooms) = chat.connect(&who).await?;
    let feed = Feed::new(&rooms);
    let labels: HashMap<RoomId, String> = rooms
        .iter()
        .map(|v| {
            let l = match &v.peer {
                Some(p) => format!("@{}", p.username),
                None => format!("#{}", v.room.name),
            };
            (v.room.id, l)
        })
        .collect();
    let current = rooms.iter().find(|v| v.room.kind == RoomKind::Group).map(|v| v.room.id);
    Ok(Session { who, reg, feed, labels, current, _admission: admission })
}

async fn logged_in(chat: &Arc<Chat>, s: &mut Session, out: &mut Output, cmd: &str, rest: &str) -> Result<(), Error> {
    let room_arg = |s: &Session, arg: &str| -> Result<RoomRef, Error> {
        let arg = arg.trim();
        if arg.is_empty() {
            return s.current.map(RoomRef::Id).ok_or(Error::BadRequest("no current room: /join <room> first".into()));
        }
        if let Some(peer) = arg.strip_prefix('@')
            && let Some((id, _)) = s.labels.iter().find(|(_, l)| l.strip_prefix('@') == Some(peer))
        {
            return Ok(RoomRef::Id(*id));
        }
        Ok(RoomRef::parse(arg.trim_start_matches('#')))
    };
    match cmd {
        "say" => {
            let room = s.current.ok_or(Error::BadRequest("no current room: /join <room> first".into()))?;
            let body = MessageBody::parse(rest, chat.limits.max_message_bytes)?;
            chat.send(&s.who, &RoomRef::Id(room), body, None).await?;
        }
        "rooms" => {
            let views = chat.my_rooms(&s.who).await?;
            if views.is_empty() {
                out.line("* You are in no room yet: /list, then /join <room>.");
            }
            for v in views {
                let l = s.labels.get(&v.room.id).cloned().unwrap_or_else(|| format!("#{}", v.room.name));
                let mark = if s.current == Some(v.room.id) { " (current)" } else { "" };
                out.line(&format!("* {l}{mark}: {} unread, {} mention(s)", v.unread, v.mentions));
            }
        }
        "list" => {
            for r in chat.public_rooms().await? {
                out.line(&format!(
                    "* #{} — {} member(s){}",
                    r.name,
                    r.member_count,
                    if r.topic.is_empty() { String::new() } else { format!(" — {}", r.topic) }
                ));
            }
        }
        "create" => {
            let mut it = rest.split_whitespace();
            let name = RoomName::parse(it.next().unwrap_or(""))?;
            let vis = if it.next() == Some("private") { Visibility::Private } else { Visibility::Public };
            let room = chat.create_room(&s.who, name, vis).await?;
            s.labels.insert(room.id, format!("#{}", room.name));
            s.current = Some(room.id);
            out.line(&format!("* Created #{} ({}); it is your current room.", room.name, vis.as_str()));
        }
        "join" => {
            let room = chat.join(&s.who, &room_arg(s, rest)?).await?;
            s.labels.insert(room.id, format!("#{}", room.name));
            s.current = Some(room.id);
            out.line(&format!("* Current room: #{}.", room.name));
        }
        "go" | "switch" => {
            let room = chat.room(&s.who, &room_arg(s, rest)?).await?;
            if !s.labels.contains_key(&room.id) {
                return Err(Error::NotAMember);
            }
            s.current = Some(room.id);
            out.line(&format!("* Current room: {}.", s.labels[&room.id]));
        }
        "leave" => {
            chat.leave(&s.who, &room_arg(s, rest)?).await?;
        }
        "invite" => {
            let (user, room) = rest.split_once(' ').map_or((rest, ""), |(a, b)| (a, b));
            chat.invite(&s.who, &room_arg(s, room)?, user).await?;
            out.line(&format!("* Invited {user}."));
        }
        "invites" => {
            let invites = chat.invites(&s.who).await?;
            if invites.is_empty() {
                out.line("* No pending invitations.");
            }
            for i in invites {
                out.line(&format!("* #{} — invited by {}", i.room.name, i.invited_by.username));
            }
        }
        "accept" => {
            let room = chat.accept_invite(&s.who, &room_arg(s, rest)?).await?;
            s.labels.insert(room.id, format!("#{}", room.name));
            s.current = Some(room.id);
            out.line(&format!("* Current room: #{}.", room.name));
        }
        "decline" => {
            chat.decline_invite(&s.who, &room_arg(s, rest)?).await?;
            out.line("* Invitation declined.");
        }
        "owner" => {
            let mut it = rest.split_whitespace();
            let (Some(room), Some(user)) = (it.next(), it.next()) else {
                return Err(Error::BadRequest("usage: /owner <room> <username>".into()));
            };
            chat.transfer_ownership(&s.who, &room_arg(s, room)?, user).await?;
            out.line(&format!("* {user} owns {} now.", room));
        }
        "who" => {
            let members = chat.members(&s.who, &room_arg(s, rest)?).await?;
            let list: Vec<String> = members
                .iter()
                .map(|(m, online)| {
                    format!(
                        "{} ({}{})",
                        m.user.username,
                        if *online { "online" } else { "offline" },
                        if m.role == Role::Member { String::new() } else { format!(", {}", m.role.as_str()) }
                    )
                })
                .collect();
            out.line(&format!("* {}", list.join(", ")));
        }
        "history" => {
            let room = s.current.ok_or(Error::BadRequest("no current room: /join <room> first".into()))?;
            let n = if rest.is_empty() {
                20
            } else {
                rest.parse::<u32>().map_err(|_| Error::BadRequest("usage: /history [n]".into()))?
            };
            let (_, page) = chat.history(&s.who, &RoomRef::Id(room), HistoryQuery::new(None, None, Some(n))?).await?;
            for m in page.messages {
                write_out(out, s, Out::Stored(m));
            }
        }
        "search" => {
            let (cursor, q) = match rest.strip_prefix('+') {
                Some(r) => r.split_once(' ').map(|(c, q)| (Some(c), q)).unwrap_or((Some(r), "")),
                None => (None, rest),
            };
            let found = chat.search(&s.who, q, cursor, None).await?;
            if found.hits.is_empty() {
                out.line("* No messages match.");
            }
            for h in &found.hits {
                let label = s.labels.get(&h.room.id).cloned().unwrap_or_else(|| format!("#{}", h.room.name));
                let sender = h.message.sender.as_ref().map_or("?", |u| u.username.as_str());
                out.line(&format!("* {label} {} {sender}: {}", h.message.seq, marked_snippet(&h.snippet)));
            }
            if let Some(c) = &found.next_cursor {
                out.line(&format!("* More: /search +{c} {q}"));
            }
        }
        "msg" => {
            let Some((user, text)) = rest.split_once(' ') else {
                return Err(Error::BadRequest("usage: /msg <username> <text>".into()));
            };
            let body = MessageBody::parse(text, chat.limits.max_message_bytes)?;
            let (room, peer) = chat.open_direct(&s.who, user).await?;
            s.labels.insert(room.id, format!("@{}", peer.username));
            chat.send(&s.who, &RoomRef::Id(room.id), body, None).await?;
        }
        "nick" => {
            let user = chat.set_display_name(&s.who, DisplayName::parse(rest)?).await?;
            s.who.user = user;
            out.line(&format!("* You are now shown as {}.", s.who.user.display_name));
        }
        "register" | "login" => out.line("ERR bad_request you are logged in already"),
        other => {
            debug!(command = other, "unknown tcp command");
            out.line(&format!(
                "ERR unknown_command unknown command /{}; /help lists them",
                other.chars().take(32).collect::<String>()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(r: &mut LineReader, max: usize) -> Vec<String> {
        std::iter::from_fn(|| r.next(max))
            .map(|l| match l {
                Line::Text(t) => t,
                Line::TooLong => "<too long>".into(),
                Line::BadUtf8 => "<bad utf8>".into(),
            })
            .collect()
    }

    #[test]
    fn lines_are_split_limited_and_checked() {
        let mut r = LineReader::default();
        r.buf.extend_from_slice(b"hello\r\nw");
        assert_eq!(lines(&mut r, 10), ["hello"]);
        r.buf.extend_from_slice(b"orld\n\xff\xfe\n");
        assert_eq!(lines(&mut r, 10), ["world", "<bad utf8>"]);
        // Overlong, split across reads: refused once, then skipped to the newline.
        r.buf.extend_from_slice(&[b'x'; 25]);
        assert_eq!(lines(&mut r, 10), ["<too long>"]);
        r.buf.extend_from_slice(&[b'x'; 25]);
        assert!(lines(&mut r, 10).is_empty());
        r.buf.extend_from_slice(b"xx\nok\n");
        assert_eq!(lines(&mut r, 10), ["ok"]);
        r.buf.extend_from_slice(b"0123456789A\n");
        assert_eq!(lines(&mut r, 10), ["<too long>"]);
        assert!(r.buf.is_empty());
    }

    #[test]
    fn commands_split_into_name_and_arguments() {
        assert_eq!(split_command(""), None);
        assert_eq!(split_command("hello there"), Some(("say", "hello there")));
        assert_eq!(split_command("/join  general "), Some(("join", "general")));
        assert_eq!(split_command("/quit"), Some(("quit", "")));
        assert_eq!(split_command("/"), Some(("", "")));
        assert_eq!(split_command("/é ü"), Some(("é", "ü")));
    }
}
