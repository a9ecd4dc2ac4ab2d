//! TCP commands of issue 14: `/reply`, `/react`, `/unreact`, `/thread`, `/pin`, `/unpin`, `/pins`,
//! `/notify`. They act on the current room; what they print goes back as [`Reply`]s, so this file
//! needs nothing of the connection but its identity and current room.

use std::sync::Arc;

use crate::core::chat::{Chat, Identity, SendRequest};
use crate::core::domain::*;
use crate::core::error::Error;

/// What a command prints.
pub(super) enum Reply {
    Line(String),
    /// A message, printed as the room's messages are.
    Message(Arc<Message>),
}

pub(super) const COMMANDS: &[&str] = &["reply", "react", "unreact", "thread", "pin", "unpin", "pins", "notify"];

pub(super) const HELP: &str = "\
*   /reply <seq> <text>               reply to message <seq> of the current room
*   /react <seq> <emoji>              react to message <seq> (/unreact <seq> <emoji> to take it back)
*   /thread <seq>                     the thread of message <seq>: its root and replies
*   /pin <seq>, /unpin <seq>          pin or unpin a message (owner and admins)
*   /pins                             the current room's pinned messages
*   /notify all|mentions|none|mute|unmute   notification level and mute of the current room
";

fn seq_arg(s: &str, usage: &'static str) -> Result<Seq, Error> {
    s.trim().trim_start_matches('#').parse().map_err(|_| Error::BadRequest(usage.into()))
}

pub(super) async fn command(
    chat: &Arc<Chat>,
    who: &Identity,
    current: Option<RoomId>,
    cmd: &str,
    rest: &str,
) -> Result<Vec<Reply>, Error> {
    let room = RoomRef::Id(current.ok_or(Error::BadRequest("no current room: /join <room> first".into()))?);
    let mut out = Vec::new();
    match cmd {
        "reply" => {
            const USAGE: &str = "usage: /reply <seq> <text>";
            let (seq, text) = rest.split_once(' ').ok_or(Error::BadRequest(USAGE.into()))?;
            let body = MessageBody::parse(text, chat.limits.max_message_bytes)?;
            let reply_to = Some(seq_arg(seq, USAGE)?);
            chat.send(who, SendRequest { reply_to, ..SendRequest::text(room, body) }).await?;
        }
        "react" | "unreact" => {
            const USAGE: &str = "usage: /react <seq> <emoji>";
            let (seq, emoji) = rest.split_once(' ').ok_or(Error::BadRequest(USAGE.into()))?;
            let emoji = Emoji::parse(emoji.trim())?;
            chat.react(who, &room, seq_arg(seq, USAGE)?, &emoji, cmd == "react").await?;
            // The `reactions` event follows to every connection of the room, this one included.
        }
        "thread" => {
            let seq = seq_arg(rest, "usage: /thread <seq>")?;
            let (_, root, page) = chat.thread(who, &room, seq, HistoryQuery::new(None, None, Some(50))?).await?;
            let n = root.extras.reply_count;
            out.push(Reply::Line(format!("* Thread of #{} ({n} repl{}):", root.seq, if n == 1 { "y" } else { "ies" })));
            out.push(Reply::Message(root));
            out.extend(page.messages.into_iter().map(Reply::Message));
        }
        "pin" | "unpin" => {
            let seq = seq_arg(rest, "usage: /pin <seq>")?;
            chat.set_pinned(who, &room, seq, cmd == "pin").await?;
        }
        "pins" => {
            let (_, pins) = chat.pins(who, &room).await?;
            if pins.is_empty() {
                out.push(Reply::Line("* No pinned messages.".into()));
            }
            for p in pins {
                out.push(Reply::Line(format!("* pinned by {}:", p.pinned_by.username)));
                out.push(Reply::Message(p.message));
            }
        }
        "notify" => {
            let (level, muted) = match rest.trim() {
                "mute" => (None, Some(true)),
                "unmute" => (None, Some(false)),
                l => (Some(NotifyLevel::parse(l)?), None),
            };
            // The `notify` event confirms it on every connection of the user.
            chat.set_notify(who, &room, level, muted).await?;
        }
        _ => {}
    }
    Ok(out)
}
