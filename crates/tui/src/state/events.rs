//! Network events other than frames: connection changes and REST answers.

use super::{Action, ChatState, Connection, Fetch, NetEvent, Panel};

impl ChatState {
    /// Applies one network event.
    pub fn on_net(&mut self, event: NetEvent) -> Vec<Action> {
        match event {
            NetEvent::Frame(f) => return self.apply(f),
            NetEvent::Connecting { .. } => self.connection = Connection::Connecting,
            NetEvent::Disconnected { reason, retry_in } => {
                self.connection = Connection::Offline;
                self.fetches.clear();
                for r in &mut self.rooms {
                    r.loading_older = false;
                    r.catching_up = false;
                }
                self.error(format!("disconnected ({reason}); retrying in {:.1}s", retry_in.as_secs_f32()));
            }
            NetEvent::RoomCreated(room) => {
                let id = room.id;
                let label = room.label();
                let actions: Vec<Action> = self.add_room(room).into_iter().collect();
                if let Some(i) = self.index_of(id) {
                    self.select(i);
                }
                self.info(format!("created {label}"));
                return actions;
            }
            NetEvent::DisplayNameSet(user) => {
                self.info(format!("your display name is now {}", user.shown_name()));
                self.me = Some(user);
            }
            NetEvent::Members { room, members } => {
                let label = self.room(room).map(|r| r.room.label()).unwrap_or_default();
                let lines = members
                    .iter()
                    .map(|m| {
                        let online = if m.online { "online" } else { "offline" };
                        format!("  {:<24} {:<7} {online}", m.user.username, m.role)
                    })
                    .collect();
                self.panel = Some(Panel { title: format!("{} members of {label}", members.len()), lines, scroll: 0 });
            }
            NetEvent::PublicRooms(rooms) => {
                let lines = rooms
                    .iter()
                    .map(|r| {
                        let topic = crate::layout::one_line(&r.topic);
                        format!("  #{:<24} {:>4} members  {topic}", r.name, r.member_count)
                    })
                    .collect();
                self.panel = Some(Panel { title: "public rooms (/join NAME)".into(), lines, scroll: 0 });
            }
            NetEvent::Dms(convs) => {
                for c in convs {
                    if let Some(v) = self.room_mut(c.id)
                        && c.peer.is_some()
                    {
                        v.room.peer = c.peer;
                    }
                }
            }
            NetEvent::RestError { what, error } => self.error(format!("{what}: {error}")),
            NetEvent::Fatal(e) => {
                self.connection = Connection::Offline;
                self.error(format!("{e} (/quit to leave)"));
            }
        }
        Vec::new()
    }

    /// An `error` frame: refused history page, join, conversation, command or message.
    pub(super) fn on_error(&mut self, code: String, message: String, req: Option<String>) {
        let text = if message.is_empty() { code.clone() } else { message };
        match req {
            Some(r) if self.fetches.contains_key(&r) => {
                let (room, kind) = self.fetches.remove(&r).unwrap_or((0, Fetch::Newest));
                if let Some(v) = self.room_mut(room) {
                    match kind {
                        Fetch::Older => v.loading_older = false,
                        _ => v.catching_up = false,
                    }
                }
                self.error(format!("history: {text}"));
            }
            Some(r) if self.joins.contains_key(&r) => {
                let name = self.joins.remove(&r).unwrap_or_default();
                self.error(format!("cannot join #{name}: {text}"));
            }
            Some(r) if self.dms.contains_key(&r) => {
                let d = self.dms.remove(&r).map(|d| d.username).unwrap_or_default();
                self.error(format!("cannot open a conversation with {d}: {text}"));
            }
            Some(r) if self.commands.contains_key(&r) => {
                let what = self.commands.remove(&r).unwrap_or_default();
                self.error(format!("refused ({what}): {text}"));
            }
            Some(r) if self.pending.iter().any(|p| p.client_id == r) => {
                let idx = self.pending.iter().position(|p| p.client_id == r).unwrap_or(0);
                let p = self.pending.remove(idx);
                if self.composer.is_empty() {
                    self.set_input(&p.body);
                }
                self.error(format!("message not sent: {text}"));
            }
            _ => self.error(format!("{code}: {text}")),
        }
    }
}
