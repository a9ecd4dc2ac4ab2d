//! The slash commands typed in the composer: parsing, and the `/help` text.

/// A slash command typed in the input line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Join(String),
    Leave,
    Create {
        name: String,
        private: bool,
    },
    Nick(String),
    /// Open (or go to) the direct conversation with a user, optionally saying something there.
    Msg {
        username: String,
        text: Option<String>,
    },
    Invite(String),
    Who,
    List,
    /// Set the topic (`None`: show it).
    Topic(Option<String>),
    /// An action: sent as a text starting with `/me `.
    Me(String),
    Kick(String),
    Ban(String),
    Unban(String),
    /// Make an admin (`true`) or a plain member again (`false`).
    Op {
        username: String,
        admin: bool,
    },
    /// Hand the room over to another member (the owner becomes an admin).
    Owner(String),
    /// Upload a file into the current room and share it in a message.
    Upload(String),
    /// Answer message `seq` of the current room.
    Reply {
        seq: i64,
        text: String,
    },
    /// Add (`on`) or take back a reaction.
    React {
        seq: i64,
        emoji: String,
        on: bool,
    },
    /// Pin (`true`) or unpin a message (owner and admins).
    Pin {
        seq: i64,
        on: bool,
    },
    Pins,
    /// `/search QUERY` (the server's query language), or `/search +CURSOR QUERY` for the next page.
    Search {
        query: String,
        cursor: Option<String>,
    },
    Thread(i64),
    /// `/notify all|mentions|none` (a level) or `mute` / `unmute`.
    Notify {
        level: Option<String>,
        muted: Option<bool>,
    },
    Quit,
    Help,
}

/// The `/help` panel.
pub const HELP: &[&str] = &[
    "Commands",
    "  /join NAME              join a room (or go to it)",
    "  /leave                  leave the current room",
    "  /create NAME [private]  create a room",
    "  /msg USER [TEXT]        open the direct conversation with USER",
    "  /invite USER            invite USER to the current room",
    "  /who                    members of the current room, with roles",
    "  /list                   public rooms",
    "  /topic [TEXT]           show or set the topic (owner and admins)",
    "  /me TEXT                an action: * you TEXT",
    "  /kick USER · /ban USER · /unban USER   moderation (owner and admins)",
    "  /op USER · /deop USER   make USER an admin or a member again (owner)",
    "  /owner USER             hand the room over to USER (owner)",
    "  /reply SEQ TEXT         answer message SEQ (its number is shown as #SEQ)",
    "  /react SEQ EMOJI · /unreact SEQ EMOJI   add or take back a reaction",
    "  /thread SEQ             the thread of message SEQ",
    "  /search QUERY           search your rooms: words, \"phrases\", prefix*, in:ROOM by:USER has:link",
    "  /pin SEQ · /unpin SEQ   pin or unpin a message (owner and admins) · /pins lists them",
    "  /notify all|mentions|none|mute|unmute   notifications of the current room",
    "  /nick DISPLAY NAME      change your display name",
    "  /upload PATH            share a file in the current room",
    "  /quit                   leave the program",
    "  //text                  send a message starting with /",
    "",
    "Keys",
    "  Enter send · Alt-Enter new line · ↑/↓ input history (on the first/last line)",
    "  Tab / Ctrl-N / Ctrl-P next or previous room · F2 or Ctrl-R room list (narrow terminals)",
    "  PgUp / PgDn or Ctrl-↑ / Ctrl-↓ scroll · Esc back to the newest message, or close this panel",
    "  Ctrl-W delete word · Ctrl-U clear · Ctrl-C quit",
];

/// A message number: `12` or `#12`.
fn seq_arg(s: &str) -> Result<i64, String> {
    s.trim_start_matches('#').parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| format!("not a message number: {s}"))
}

fn user_arg(words: &[&str], usage: &str) -> Result<String, String> {
    match words {
        [u] => Ok(u.trim_start_matches('@').to_owned()),
        _ => Err(format!("usage: {usage}")),
    }
}

/// Parses a line starting with `/`.
pub fn parse_command(line: &str) -> Result<Command, String> {
    let line = line.trim();
    let rest = line.strip_prefix('/').ok_or_else(|| "a command starts with /".to_owned())?;
    let (name, args) = match rest.split_once(char::is_whitespace) {
        Some((n, a)) => (n, a.trim()),
        None => (rest, ""),
    };
    let words: Vec<&str> = args.split_whitespace().collect();
    let room_name = |r: &str| r.trim_start_matches('#').to_owned();
    match name.to_ascii_lowercase().as_str() {
        "join" | "j" => match words.as_slice() {
            [room] => Ok(Command::Join(room_name(room))),
            _ => Err("usage: /join NAME".into()),
        },
        "leave" | "part" => {
            if words.is_empty() {
                Ok(Command::Leave)
            } else {
                Err("usage: /leave (leaves the current room)".into())
            }
        }
        "create" => match words.as_slice() {
            [room] => Ok(Command::Create { name: room_name(room), private: false }),
            [room, vis] if vis.eq_ignore_ascii_case("private") => {
                Ok(Command::Create { name: room_name(room), private: true })
            }
            [room, vis] if vis.eq_ignore_ascii_case("public") => {
                Ok(Command::Create { name: room_name(room), private: false })
            }
            _ => Err("usage: /create NAME [private]".into()),
        },
        "nick" => {
            if args.is_empty() {
                Err("usage: /nick DISPLAY NAME".into())
            } else {
                Ok(Command::Nick(args.to_owned()))
            }
        }
        "msg" | "query" | "dm" => {
            let (user, text) = match args.split_once(char::is_whitespace) {
                Some((u, t)) => (u, Some(t.trim().to_owned()).filter(|t| !t.is_empty())),
                None => (args, None),
            };
            if user.is_empty() {
                return Err("usage: /msg USER [TEXT]".into());
            }
            Ok(Command::Msg { username: user.trim_start_matches('@').to_owned(), text })
        }
        "invite" => user_arg(&words, "/invite USER").map(Command::Invite),
        "who" | "members" => Ok(Command::Who),
        "list" | "rooms" => Ok(Command::List),
        "topic" => Ok(Command::Topic(Some(args.to_owned()).filter(|t| !t.is_empty()))),
        "me" => {
            if args.is_empty() {
                Err("usage: /me TEXT".into())
            } else {
                Ok(Command::Me(args.to_owned()))
            }
        }
        "kick" => user_arg(&words, "/kick USER").map(Command::Kick),
        "ban" => user_arg(&words, "/ban USER").map(Command::Ban),
        "unban" => user_arg(&words, "/unban USER").map(Command::Unban),
        "op" => user_arg(&words, "/op USER").map(|username| Command::Op { username, admin: true }),
        "deop" => user_arg(&words, "/deop USER").map(|username| Command::Op { username, admin: false }),
        "owner" => user_arg(&words, "/owner USER").map(Command::Owner),
        "upload" if !args.is_empty() => Ok(Command::Upload(args.to_owned())),
        "upload" => Err("usage: /upload PATH".to_owned()),
        "reply" | "r" => match args.split_once(char::is_whitespace) {
            Some((seq, text)) if !text.trim().is_empty() => {
                Ok(Command::Reply { seq: seq_arg(seq)?, text: text.trim().to_owned() })
            }
            _ => Err("usage: /reply SEQ TEXT".into()),
        },
        "react" | "unreact" => match words.as_slice() {
            [seq, emoji] => Ok(Command::React {
                seq: seq_arg(seq)?,
                emoji: (*emoji).to_owned(),
                on: name.eq_ignore_ascii_case("react"),
            }),
            _ => Err(format!("usage: /{} SEQ EMOJI", name.to_ascii_lowercase())),
        },
        "pin" | "unpin" => match words.as_slice() {
            [seq] => Ok(Command::Pin { seq: seq_arg(seq)?, on: name.eq_ignore_ascii_case("pin") }),
            _ => Err(format!("usage: /{} SEQ", name.to_ascii_lowercase())),
        },
        "pins" => Ok(Command::Pins),
        "search" => match args.strip_prefix('+') {
            Some(r) => match r.split_once(char::is_whitespace) {
                Some((c, q)) if !q.trim().is_empty() => {
                    Ok(Command::Search { query: q.trim().to_owned(), cursor: Some(c.to_owned()) })
                }
                _ => Err("usage: /search [+CURSOR] QUERY".into()),
            },
            None if args.is_empty() => Err("usage: /search [+CURSOR] QUERY".into()),
            None => Ok(Command::Search { query: args.to_owned(), cursor: None }),
        },
        "thread" => match words.as_slice() {
            [seq] => Ok(Command::Thread(seq_arg(seq)?)),
            _ => Err("usage: /thread SEQ".into()),
        },
        "notify" => match words.as_slice() {
            [w] => match w.to_ascii_lowercase().as_str() {
                l @ ("all" | "mentions" | "none") => Ok(Command::Notify { level: Some(l.to_owned()), muted: None }),
                "mute" => Ok(Command::Notify { level: None, muted: Some(true) }),
                "unmute" => Ok(Command::Notify { level: None, muted: Some(false) }),
                _ => Err("usage: /notify all|mentions|none|mute|unmute".into()),
            },
            _ => Err("usage: /notify all|mentions|none|mute|unmute".into()),
        },
        "quit" | "exit" | "q" => Ok(Command::Quit),
        "help" | "h" | "?" => Ok(Command::Help),
        other => Err(format!("unknown command /{other} (try /help)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands() {
        assert_eq!(parse_command("/upload ./my file.png"), Ok(Command::Upload("./my file.png".into())));
        assert!(parse_command("/upload").is_err());
        assert_eq!(parse_command("/join general"), Ok(Command::Join("general".into())));
        assert_eq!(parse_command("/join #general"), Ok(Command::Join("general".into())));
        assert!(parse_command("/join").is_err());
        assert!(parse_command("/join a b").is_err());
        assert_eq!(parse_command("/leave"), Ok(Command::Leave));
        assert_eq!(parse_command("/create ops"), Ok(Command::Create { name: "ops".into(), private: false }));
        assert_eq!(parse_command("/create ops private"), Ok(Command::Create { name: "ops".into(), private: true }));
        assert_eq!(parse_command("/CREATE ops PRIVATE"), Ok(Command::Create { name: "ops".into(), private: true }));
        assert!(parse_command("/create ops secret").is_err());
        assert_eq!(parse_command("/nick  Alice Liddell "), Ok(Command::Nick("Alice Liddell".into())));
        assert!(parse_command("/nick").is_err());
        assert_eq!(parse_command("/quit"), Ok(Command::Quit));
        assert_eq!(parse_command("/help"), Ok(Command::Help));
        assert_eq!(parse_command("/shout x"), Err("unknown command /shout (try /help)".into()));
    }

    #[test]
    fn parses_the_commands_of_the_line_protocol() {
        assert_eq!(parse_command("/msg bob"), Ok(Command::Msg { username: "bob".into(), text: None }));
        assert_eq!(
            parse_command("/msg @bob  hi there "),
            Ok(Command::Msg { username: "bob".into(), text: Some("hi there".into()) })
        );
        assert!(parse_command("/msg").is_err());
        assert_eq!(parse_command("/invite carol"), Ok(Command::Invite("carol".into())));
        assert!(parse_command("/invite").is_err());
        assert_eq!(parse_command("/who"), Ok(Command::Who));
        assert_eq!(parse_command("/list"), Ok(Command::List));
        assert_eq!(parse_command("/topic"), Ok(Command::Topic(None)));
        assert_eq!(parse_command("/topic  Release day "), Ok(Command::Topic(Some("Release day".into()))));
        assert_eq!(parse_command("/me waves"), Ok(Command::Me("waves".into())));
        assert!(parse_command("/me").is_err());
        assert_eq!(parse_command("/kick @bob"), Ok(Command::Kick("bob".into())));
        assert_eq!(parse_command("/ban bob"), Ok(Command::Ban("bob".into())));
        assert_eq!(parse_command("/unban bob"), Ok(Command::Unban("bob".into())));
        assert!(parse_command("/kick a b").is_err());
        assert_eq!(parse_command("/op bob"), Ok(Command::Op { username: "bob".into(), admin: true }));
        assert_eq!(parse_command("/deop bob"), Ok(Command::Op { username: "bob".into(), admin: false }));
        assert_eq!(parse_command("/owner bob"), Ok(Command::Owner("bob".into())));
    }

    #[test]
    fn parses_the_conversation_commands() {
        assert_eq!(parse_command("/reply 12  sure thing "), Ok(Command::Reply { seq: 12, text: "sure thing".into() }));
        assert_eq!(parse_command("/reply #3 ok"), Ok(Command::Reply { seq: 3, text: "ok".into() }));
        assert!(parse_command("/reply 12").is_err());
        assert!(parse_command("/reply x hi").is_err());
        assert_eq!(parse_command("/react 4 👍"), Ok(Command::React { seq: 4, emoji: "👍".into(), on: true }));
        assert_eq!(parse_command("/unreact 4 👍"), Ok(Command::React { seq: 4, emoji: "👍".into(), on: false }));
        assert!(parse_command("/react 4").is_err());
        assert_eq!(parse_command("/pin 7"), Ok(Command::Pin { seq: 7, on: true }));
        assert_eq!(parse_command("/unpin 7"), Ok(Command::Pin { seq: 7, on: false }));
        assert_eq!(parse_command("/pins"), Ok(Command::Pins));
        assert_eq!(
            parse_command("/search \"release notes\" by:bob"),
            Ok(Command::Search { query: "\"release notes\" by:bob".into(), cursor: None })
        );
        assert_eq!(
            parse_command("/search +abc12 deploy"),
            Ok(Command::Search { query: "deploy".into(), cursor: Some("abc12".into()) })
        );
        assert!(parse_command("/search").is_err());
        assert_eq!(parse_command("/thread 9"), Ok(Command::Thread(9)));
        assert_eq!(
            parse_command("/notify mentions"),
            Ok(Command::Notify { level: Some("mentions".into()), muted: None })
        );
        assert_eq!(parse_command("/notify mute"), Ok(Command::Notify { level: None, muted: Some(true) }));
        assert_eq!(parse_command("/notify unmute"), Ok(Command::Notify { level: None, muted: Some(false) }));
        assert!(parse_command("/notify loud").is_err());
    }
}
