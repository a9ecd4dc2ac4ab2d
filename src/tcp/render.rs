//! How events are shown on a line connection: `[#room] alice: text`, `* …` information lines.

use std::sync::Arc;

use bytes::Bytes;

use super::session::{Output, Session};
use crate::core::chat::Chat;
use crate::core::cursor::Out;
use crate::core::domain::*;
use crate::core::error::Error;
use crate::core::hub::{Delivery, HubEvent, WireSlot};

pub(super) async fn label_room(chat: &Chat, s: &mut Session, r: &Room) {
    let label = match r.kind {
        RoomKind::Group => format!("#{}", r.name),
        RoomKind::Direct => match chat.my_rooms(&s.conn.who).await {
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
        MessageKind::Text => match m.reply_to {
            Some(parent) => format!("{who} (reply to #{parent}): {}", m.body),
            None => format!("{who}: {}", m.body),
        },
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
        MessageKind::Pin => format!("* {who} pinned message #{}", m.body),
        MessageKind::Unpin => format!("* {who} unpinned message #{}", m.body),
    };
    if m.edited_at.is_some() && !m.deleted {
        line.push_str(" (edited)");
    }
    // One message, one line: continuation lines are indented.
    let mut line = line.replace('\r', "").replace('\n', "\n    ");
    // Then one indented line per shared file, with where to download it (names are sanitized at upload).
    for f in &m.files {
        line.push_str(&format!("\n    [file] {} {}", f.label(), f.download_path()));
    }
    line
}

fn encode_line_tail(e: &HubEvent) -> Bytes {
    Bytes::from(match e {
        HubEvent::Message(m) | HubEvent::Updated(m) => message_tail(m),
        _ => String::new(),
    })
}

pub(super) fn write_out(out: &mut Output, s: &mut Session, o: Out) {
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
            // Only a connection with no current room switches; others are told how to.
            if s.current.is_none() {
                s.current = Some(r.id);
            }
            let l = label(s, r.id);
            if s.current == Some(r.id) {
                out.line(&format!("* You are in {l} now."));
            } else {
                out.line(&format!("* You were added to {l} (/go {l} to switch to it)."));
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
        HubEvent::Invited(i) => out.line(&format!(
            "* {} invited you to #{}: /accept {} to join, /decline {} to refuse.",
            i.invited_by.username, i.room.name, i.room.name, i.room.name
        )),
        HubEvent::Convo(ConvoEvent::Reactions { room, seq, reactions }) => {
            out.line(&format!("[{}] (reactions #{seq}) {}", label(s, *room), reactions_text(reactions)))
        }
        HubEvent::Convo(ConvoEvent::Notify { room, level, muted }) => out.line(&format!(
            "* {}: notifications {}{}",
            label(s, *room),
            level.as_str(),
            if *muted { ", muted" } else { "" }
        )),
        // Replies arrive as messages; the summary adds nothing to a line-by-line reader.
        HubEvent::Convo(ConvoEvent::ThreadUpdated { .. }) => {}
        HubEvent::Typing { .. } | HubEvent::Read { .. } | HubEvent::UserUpdated(_) => {}
    }
}

/// `👍 2, 🎉 1`, or `none`.
fn reactions_text(reactions: &[Reaction]) -> String {
    if reactions.is_empty() {
        return "none".into();
    }
    reactions.iter().map(|r| format!("{} {}", r.emoji, r.users.len())).collect::<Vec<_>>().join(", ")
}

pub(super) fn err(out: &mut Output, e: &Error) {
    if let Error::Internal(cause) = e {
        tracing::error!(error = format!("{cause:#}"), "tcp command failed");
    }
    out.line(&format!("ERR {} {}", e.code(), e.public_message()));
}
