//! What the user typed: messages, and slash commands turned into actions.

use super::{Action, ChatState, Command, Connection, DmRequest, HELP, Panel, PendingSend, parse_command};
use crate::proto::{ClientFrame, RoomRef};

impl ChatState {
    pub(super) fn join(&mut self, name: String) -> Action {
        let req = self.req("j");
        self.joins.insert(req.clone(), name.clone());
        Action::Send(ClientFrame::Join { room: RoomRef::Name(name), req: Some(req) })
    }

    /// Queues a text message for the current room.
    pub(super) fn send_text(&mut self, body: String) -> Vec<Action> {
        self.send_reply(body, None)
    }

    /// Queues a text message for the current room, answering `reply_to` when given.
    pub(super) fn send_reply(&mut self, body: String, reply_to: Option<i64>) -> Vec<Action> {
        let Some(room) = self.current_room().map(|r| r.room.id) else {
            self.error("you are in no room: /join NAME or /create NAME first");
            return Vec::new();
        };
        self.next_client += 1;
        let p = PendingSend { client_id: format!("{}-{}", self.client_prefix, self.next_client), room, body, reply_to };
        let action = Self::send_frame(&p);
        self.pending.push(p);
        self.last_typing = None;
        if let Some(r) = self.rooms.get_mut(self.current) {
            r.scroll = 0;
        }
        vec![action]
    }

    /// A command on the current room answered by `ok`; `done` is shown when it succeeds.
    fn room_command(&mut self, done: String, make: impl FnOnce(RoomRef, Option<String>) -> ClientFrame) -> Vec<Action> {
        let Some(room) = self.current_room().map(|r| r.room.id) else {
            self.error("you are in no room");
            return Vec::new();
        };
        let req = self.req("c");
        self.commands.insert(req.clone(), done);
        vec![Action::Send(make(RoomRef::Id(room), Some(req)))]
    }

    /// Runs what the user typed (a message or a command).
    pub fn submit(&mut self, line: &str) -> Vec<Action> {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            return Vec::new();
        }
        if let Some(escaped) = line.strip_prefix("//") {
            return self.send_text(format!("/{escaped}"));
        }
        if !trimmed.starts_with('/') {
            return self.send_text(line.to_owned());
        }
        let online = self.connection == Connection::Online;
        let label = self.current_room().map(|r| r.room.label()).unwrap_or_default();
        match parse_command(trimmed) {
            Err(e) => {
                self.error(e);
                Vec::new()
            }
            Ok(Command::Quit) => {
                self.quit = true;
                vec![Action::Quit]
            }
            Ok(Command::Upload(path)) => {
                let Some(room) = self.current_room().map(|r| r.room.id) else {
                    self.error("you are in no room");
                    return Vec::new();
                };
                self.info(format!("uploading {path}…"));
                vec![Action::Upload { room, path }]
            }
            Ok(Command::Help) => {
                let lines = HELP.iter().map(|l| (*l).to_owned()).collect();
                self.panel = Some(Panel { title: "help (PgUp/PgDn scroll, Esc closes)".into(), lines, scroll: 0 });
                Vec::new()
            }
            Ok(Command::Nick(name)) => vec![Action::SetDisplayName(name)],
            Ok(Command::Create { name, private }) => vec![Action::CreateRoom { name, private }],
            Ok(Command::List) => vec![Action::LoadPublicRooms],
            Ok(Command::Me(text)) => self.send_text(format!("/me {text}")),
            Ok(Command::Topic(None)) => {
                match self.current_room().map(|r| r.room.topic.clone()) {
                    Some(t) if !t.is_empty() => self.info(format!("topic of {label}: {}", crate::layout::one_line(&t))),
                    Some(_) => self.info(format!("{label} has no topic (/topic TEXT sets one)")),
                    None => self.error("you are in no room"),
                }
                Vec::new()
            }
            Ok(Command::Who) => match self.current_room() {
                Some(r) => vec![Action::LoadMembers { room: r.room.id }],
                None => {
                    self.error("you are in no room");
                    Vec::new()
                }
            },
            Ok(_) if !online => {
                self.error("not connected: try again when the connection is back");
                Vec::new()
            }
            Ok(Command::Join(name)) => {
                if let Some(i) = self.rooms.iter().position(|r| r.room.name.eq_ignore_ascii_case(&name)) {
                    self.select(i);
                    return self.mark_read().into_iter().collect();
                }
                vec![self.join(name)]
            }
            Ok(Command::Msg { username, text }) => {
                if let Some(i) = self.dm_with(&username).and_then(|r| self.index_of(r.room.id)) {
                    self.select(i);
                    let mut actions: Vec<Action> = self.mark_read().into_iter().collect();
                    if let Some(text) = text {
                        actions.extend(self.send_text(text));
                    }
                    return actions;
                }
                let req = self.req("d");
                self.dms.insert(req.clone(), DmRequest { username: username.clone(), text });
                vec![Action::Send(ClientFrame::Dm { username, req: Some(req) })]
            }
            Ok(Command::Leave) => match self.current_room() {
                Some(r) => {
                    let id = r.room.id;
                    let req = self.req("l");
                    vec![Action::Send(ClientFrame::Leave { room: RoomRef::Id(id), req: Some(req) })]
                }
                None => {
                    self.error("you are in no room");
                    Vec::new()
                }
            },
            Ok(Command::Invite(u)) => self.room_command(format!("invited {u} to {label}"), |room, req| {
                ClientFrame::Invite { room, username: u, req }
            }),
            Ok(Command::Kick(u)) => self.room_command(format!("removed {u} from {label}"), |room, req| {
                ClientFrame::Kick { room, username: u, req }
            }),
            Ok(Command::Ban(u)) => self.room_command(format!("banned {u} from {label}"), |room, req| {
                ClientFrame::Ban { room, username: u, req }
            }),
            Ok(Command::Unban(u)) => self.room_command(format!("unbanned {u} in {label}"), |room, req| {
                ClientFrame::Unban { room, username: u, req }
            }),
            Ok(Command::Op { username, admin }) => {
                let role = if admin { "admin" } else { "member" };
                self.room_command(format!("{username} is now {role} of {label}"), |room, req| ClientFrame::SetRole {
                    room,
                    username,
                    role: role.to_owned(),
                    req,
                })
            }
            Ok(Command::Owner(u)) => self.room_command(format!("{u} now owns {label}"), |room, req| {
                ClientFrame::Transfer { room, username: u, req }
            }),
            Ok(Command::Reply { seq, text }) => self.send_reply(text, Some(seq)),
            Ok(Command::React { seq, emoji, on }) => self.react(seq, emoji, on),
            Ok(Command::Thread(seq)) => self.thread(seq),
            Ok(Command::Pins) => self.pins(),
            Ok(Command::Search { query, cursor }) => self.search(query, cursor),
            Ok(Command::Notify { level, muted }) => self.notify(level, muted),
            Ok(Command::Pin { seq, on }) => {
                let done = format!("{} #{seq}", if on { "pinned" } else { "unpinned" });
                self.room_command(done, |room, req| {
                    if on { ClientFrame::Pin { room, seq, req } } else { ClientFrame::Unpin { room, seq, req } }
                })
            }
            Ok(Command::Topic(Some(topic))) => {
                self.room_command(format!("topic of {label} set"), |room, req| ClientFrame::Topic { room, topic, req })
            }
        }
    }
}
