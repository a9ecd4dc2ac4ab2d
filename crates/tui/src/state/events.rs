//! Network events other than frames: connection changes and REST answers.

use super::{Action, ChatState, Connection, NetEvent, Panel};

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
}
