//! What each command does: a line as a call to the chat service, and its answer as lines.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use tracing::debug;

use super::lines::split_command;
use super::render::{err, write_out};
use super::session::{Output, Session};
use crate::core::chat::{Chat, SendRequest};
use crate::core::conn::{Connection, Timing};
use crate::core::cursor::Out;
use crate::core::domain::*;
use crate::core::error::Error;
use crate::core::limits::Transport;

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
*                                     from:/before:YYYY-MM-DD has:link has:file); matches shown *like this*
*   /msg <username> <text>            a direct message
*   /nick <display name>              change your display name
*   /help                             this list
*   /quit                             leave
* Anything else is said in the current room.
";

/// Handles one line; false to end the connection.
pub(super) async fn command(
    chat: &Arc<Chat>,
    peer: IpAddr,
    timing: Timing,
    session: &mut Option<Session>,
    out: &mut Output,
    line: &str,
) -> bool {
    let Some((cmd, rest)) = split_command(line) else { return true };
    match (cmd, session.as_mut()) {
        ("quit", _) => return false,
        ("help", _) => HELP.lines().chain(super::convo::HELP.lines()).for_each(|l| out.line(l)),
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
            match login(chat, peer, timing, u, p).await {
                Ok(s) => {
                    out.line(&format!(
                        "* Hello, {}! You are in {} room(s).",
                        s.conn.who.user.display_name,
                        s.labels.len()
                    ));
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

async fn login(
    chat: &Arc<Chat>,
    peer: IpAddr,
    timing: Timing,
    username: &str,
    password: &str,
) -> Result<Session, Error> {
    chat.auth_attempt(peer)?;
    let ok = chat.login(username, password).await?;
    let who = chat.authenticate(&ok.token).await?;
    let admission = chat.admit(&who, Transport::Tcp)?;
    let (conn, rooms) = Connection::open(chat, who, admission, timing).await?;
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
    Ok(Session { conn, labels, current })
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
            chat.send(&s.conn.who, SendRequest::text(RoomRef::Id(room), body)).await?;
        }
        "rooms" => {
            let views = chat.my_rooms(&s.conn.who).await?;
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
            let room = chat.create_room(&s.conn.who, name, vis).await?;
            s.labels.insert(room.id, format!("#{}", room.name));
            s.current = Some(room.id);
            out.line(&format!("* Created #{} ({}); it is your current room.", room.name, vis.as_str()));
        }
        "join" => {
            let room = chat.join(&s.conn.who, &room_arg(s, rest)?).await?;
            s.labels.insert(room.id, format!("#{}", room.name));
            s.current = Some(room.id);
            out.line(&format!("* Current room: #{}.", room.name));
        }
        "go" | "switch" => {
            let room = chat.room(&s.conn.who, &room_arg(s, rest)?).await?;
            if !s.labels.contains_key(&room.id) {
                return Err(Error::NotAMember);
            }
            s.current = Some(room.id);
            out.line(&format!("* Current room: {}.", s.labels[&room.id]));
        }
        "leave" => {
            chat.leave(&s.conn.who, &room_arg(s, rest)?).await?;
        }
        "invite" => {
            let (user, room) = rest.split_once(' ').map_or((rest, ""), |(a, b)| (a, b));
            chat.invite(&s.conn.who, &room_arg(s, room)?, user).await?;
            out.line(&format!("* Invited {user}."));
        }
        "invites" => {
            let invites = chat.invites(&s.conn.who).await?;
            if invites.is_empty() {
                out.line("* No pending invitations.");
            }
            for i in invites {
                out.line(&format!("* #{} — invited by {}", i.room.name, i.invited_by.username));
            }
        }
        "accept" => {
            let room = chat.accept_invite(&s.conn.who, &room_arg(s, rest)?).await?;
            s.labels.insert(room.id, format!("#{}", room.name));
            s.current = Some(room.id);
            out.line(&format!("* Current room: #{}.", room.name));
        }
        "decline" => {
            chat.decline_invite(&s.conn.who, &room_arg(s, rest)?).await?;
            out.line("* Invitation declined.");
        }
        "owner" => {
            let mut it = rest.split_whitespace();
            let (Some(room), Some(user)) = (it.next(), it.next()) else {
                return Err(Error::BadRequest("usage: /owner <room> <username>".into()));
            };
            chat.transfer_ownership(&s.conn.who, &room_arg(s, room)?, user).await?;
            out.line(&format!("* {user} owns {} now.", room));
        }
        "who" => {
            let members = chat.members(&s.conn.who, &room_arg(s, rest)?).await?;
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
            let (_, page) =
                chat.history(&s.conn.who, &RoomRef::Id(room), HistoryQuery::new(None, None, Some(n))?).await?;
            for m in page.messages {
                write_out(out, s, Out::Stored(m));
            }
        }
        "search" => {
            let (cursor, q) = match rest.strip_prefix('+') {
                Some(r) => r.split_once(' ').map(|(c, q)| (Some(c), q)).unwrap_or((Some(r), "")),
                None => (None, rest),
            };
            let found = chat.search(&s.conn.who, q, cursor, None).await?;
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
            let (room, peer) = chat.open_direct(&s.conn.who, user).await?;
            s.labels.insert(room.id, format!("@{}", peer.username));
            chat.send(&s.conn.who, SendRequest::text(RoomRef::Id(room.id), body)).await?;
        }
        "nick" => {
            let user = chat.set_display_name(&s.conn.who, DisplayName::parse(rest)?).await?;
            s.conn.who.user = user;
            out.line(&format!("* You are now shown as {}.", s.conn.who.user.display_name));
        }
        "register" | "login" => out.line("ERR bad_request you are logged in already"),
        c if super::convo::COMMANDS.contains(&c) => {
            for r in super::convo::command(chat, &s.conn.who, s.current, c, rest).await? {
                match r {
                    super::convo::Reply::Line(l) => out.line(&l),
                    super::convo::Reply::Message(m) => write_out(out, s, Out::Stored(m)),
                }
            }
        }
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
