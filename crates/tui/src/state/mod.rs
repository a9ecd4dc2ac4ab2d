//! The client's state machine: everything the chat screen shows, changed only by methods that do no I/O.
//!
//! [`ChatState::apply`] takes a server frame, [`ChatState::on_net`] a network event (`events.rs`),
//! [`ChatState::on_key`] a key press (`keys.rs`), [`ChatState::submit`] a typed line or command
//! (`submit.rs`); each returns the [`Action`]s the network layer must perform. Nothing here
//! does I/O, so the whole client logic is testable without a terminal or a server. (The only outside input
//! is the clock, read for typing indicators.)

mod convo;
#[cfg(test)]
mod convo_tests;
mod events;
mod keys;
mod submit;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ratatui_textarea::TextArea;

pub use crate::command::{Command, HELP, parse_command};
pub use crate::model::{Panel, PendingSend, RoomView};
use crate::proto::{ClientFrame, Member, Room, RoomRef, ServerFrame, User};

/// Page size of the catch-up requests (`after`) made when (re)connecting: the protocol's maximum.
pub const RECOVERY_PAGE: u32 = 200;
/// Page size of the newest page of a room seen for the first time, and of older pages (`before`).
pub const SCROLLBACK_PAGE: u32 = 50;
/// At most one `typing` frame per room this often while the user types.
pub const TYPING_EVERY: Duration = Duration::from_secs(3);

/// What the network layer must do for the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this frame on the WebSocket (dropped when there is none: the state resends what matters).
    Send(ClientFrame),
    /// `POST /api/v1/rooms`.
    CreateRoom { name: String, private: bool },
    /// `PATCH /api/v1/me`.
    SetDisplayName(String),
    /// `GET /api/v1/rooms/{room}/members` (for `/who`).
    LoadMembers { room: i64 },
    /// `GET /api/v1/rooms` (for `/list`).
    LoadPublicRooms,
    /// `GET /api/v1/dms`: learn the peers of conversations opened by others.
    LoadDms,
    /// Upload the file at `path` into `room`, then send a message sharing it.
    Upload { room: i64, path: String },
    /// Ring the terminal bell (a mention, with `--bell`).
    Bell,
    /// Leave the program.
    Quit,
}

/// What the network layer reports to the state.
// Frames are the common case: boxing them would allocate per frame to shrink rare events.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum NetEvent {
    /// A frame read from the WebSocket.
    Frame(ServerFrame),
    /// A connection attempt started (attempt 1 is the first one after a drop).
    Connecting { attempt: u32 },
    /// The connection dropped or could not be made; another attempt follows after `retry_in`.
    Disconnected { reason: String, retry_in: Duration },
    /// `/create` succeeded.
    RoomCreated(Room),
    /// `/nick` succeeded.
    DisplayNameSet(User),
    /// `/who` answered.
    Members { room: i64, members: Vec<Member> },
    /// `/list` answered.
    PublicRooms(Vec<Room>),
    /// The user's direct conversations, with their peers.
    Dms(Vec<Room>),
    /// A REST call failed (`what` failed: `error`).
    RestError { what: String, error: String },
    /// `/upload` stored the file and sent the message sharing it.
    Uploaded,
    /// The client cannot go on (for example the password no longer works).
    Fatal(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    Connecting,
    Online,
    Offline,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub text: String,
    pub error: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fetch {
    Newest,
    Older,
    After,
}

/// A `/msg` waiting for its conversation.
#[derive(Debug, Clone)]
struct DmRequest {
    username: String,
    text: Option<String>,
}

/// Everything the chat screen shows.
#[derive(Debug)]
pub struct ChatState {
    pub me: Option<User>,
    /// Ring the terminal bell when a message mentions the user (`--bell`).
    pub bell: bool,
    pub rooms: Vec<RoomView>,
    pub current: usize,
    /// The multi-line composer.
    pub composer: TextArea<'static>,
    /// Lines sent from the composer, oldest first (↑/↓ bring them back).
    pub sent_history: Vec<String>,
    /// Where ↑/↓ stand in `sent_history` (`None`: editing a fresh line, kept in `draft`).
    history_pos: Option<usize>,
    draft: String,
    pub status: Option<Status>,
    pub pending: Vec<PendingSend>,
    pub connection: Connection,
    pub quit: bool,
    /// A text panel over the message pane (`/help`, `/who`, `/list`).
    pub panel: Option<Panel>,
    /// The query of the last `/search`, to name its results and their next page.
    last_search: Option<String>,
    /// The room list is open over the message pane (narrow terminals hide it otherwise).
    pub show_rooms: bool,
    /// Size of the message pane at the last render (scrolling is computed from it).
    pub pane_width: u16,
    pub pane_height: u16,
    initial_room: Option<String>,
    fetches: HashMap<String, (i64, Fetch)>,
    joins: HashMap<String, String>,
    dms: HashMap<String, DmRequest>,
    /// Moderation and other commands answered by `ok`: what each did, by `req`.
    commands: HashMap<String, String>,
    last_typing: Option<(i64, Instant)>,
    next_req: u64,
    client_prefix: String,
    next_client: u64,
}

/// Most lines kept for ↑/↓.
const SENT_HISTORY: usize = 100;

fn new_composer() -> TextArea<'static> {
    let mut t = TextArea::default();
    t.set_cursor_line_style(ratatui::style::Style::default());
    t
}

impl ChatState {
    /// `client_prefix` starts every `client_id` this state makes: make it unique per run.
    pub fn new(client_prefix: impl Into<String>, initial_room: Option<String>) -> Self {
        ChatState {
            me: None,
            bell: false,
            rooms: Vec::new(),
            current: 0,
            composer: new_composer(),
            sent_history: Vec::new(),
            history_pos: None,
            draft: String::new(),
            status: None,
            pending: Vec::new(),
            connection: Connection::Connecting,
            quit: false,
            panel: None,
            last_search: None,
            show_rooms: false,
            pane_width: 80,
            pane_height: 20,
            initial_room: initial_room.map(|r| r.trim_start_matches('#').to_owned()),
            fetches: HashMap::new(),
            joins: HashMap::new(),
            dms: HashMap::new(),
            commands: HashMap::new(),
            last_typing: None,
            next_req: 0,
            client_prefix: client_prefix.into(),
            next_client: 0,
        }
    }

    /// What the composer holds, lines joined with `\n`.
    pub fn input(&self) -> String {
        self.composer.lines().join("\n")
    }

    /// Replaces what the composer holds, the cursor at the end.
    pub fn set_input(&mut self, text: &str) {
        self.composer = new_composer();
        self.composer.insert_str(text);
    }

    pub fn current_room(&self) -> Option<&RoomView> {
        self.rooms.get(self.current)
    }

    pub fn room(&self, id: i64) -> Option<&RoomView> {
        self.rooms.iter().find(|r| r.room.id == id)
    }

    pub fn room_by_name(&self, name: &str) -> Option<&RoomView> {
        self.rooms.iter().find(|r| r.room.name.eq_ignore_ascii_case(name))
    }

    /// The direct conversation with `username`, when held.
    pub fn dm_with(&self, username: &str) -> Option<&RoomView> {
        self.rooms.iter().find(|r| {
            r.room.is_direct() && r.room.peer.as_ref().is_some_and(|p| p.username.eq_ignore_ascii_case(username))
        })
    }

    fn room_mut(&mut self, id: i64) -> Option<&mut RoomView> {
        self.rooms.iter_mut().find(|r| r.room.id == id)
    }

    fn index_of(&self, id: i64) -> Option<usize> {
        self.rooms.iter().position(|r| r.room.id == id)
    }

    /// Whether background work is still under way (catch-up pages, unacknowledged sends).
    pub fn is_settled(&self) -> bool {
        self.connection == Connection::Online && self.fetches.is_empty() && self.pending.is_empty()
    }

    fn info(&mut self, text: impl Into<String>) {
        self.status = Some(Status { text: text.into(), error: false });
    }

    fn error(&mut self, text: impl Into<String>) {
        self.status = Some(Status { text: text.into(), error: true });
    }

    fn req(&mut self, prefix: &str) -> String {
        self.next_req += 1;
        format!("{prefix}{}", self.next_req)
    }

    fn fetch(&mut self, room: i64, kind: Fetch, before: Option<i64>, after: Option<i64>) -> Action {
        let req = self.req("h");
        self.fetches.insert(req.clone(), (room, kind));
        let limit = if kind == Fetch::After { RECOVERY_PAGE } else { SCROLLBACK_PAGE };
        if let Some(r) = self.room_mut(room) {
            match kind {
                Fetch::Older => r.loading_older = true,
                Fetch::Newest | Fetch::After => r.catching_up = true,
            }
        }
        Action::Send(ClientFrame::History {
            room: RoomRef::Id(room),
            before,
            after,
            limit: Some(limit),
            req: Some(req),
        })
    }

    /// The request that brings a room up to date: the newest page when nothing is held, else every
    /// message after the last `seq` held.
    fn catch_up(&mut self, room: i64) -> Action {
        let last = self.room(room).map(RoomView::last_seq).unwrap_or(0);
        if last == 0 {
            self.fetch(room, Fetch::Newest, None, None)
        } else {
            self.fetch(room, Fetch::After, None, Some(last))
        }
    }

    fn send_frame(p: &PendingSend) -> Action {
        Action::Send(ClientFrame::Send {
            room: RoomRef::Id(p.room),
            body: p.body.clone(),
            client_id: Some(p.client_id.clone()),
            reply_to: p.reply_to,
            req: Some(p.client_id.clone()),
        })
    }

    fn select(&mut self, index: usize) {
        if index < self.rooms.len() {
            self.current = index;
            self.panel = None;
        }
    }

    /// The read marker to send: the current room's newest message, once the user sees it (the room is on
    /// screen, scrolled to the bottom, no panel over it, connected) and the server does not have it yet.
    fn mark_read(&mut self) -> Option<Action> {
        if self.connection != Connection::Online || self.panel.is_some() || self.show_rooms {
            return None;
        }
        let room = self.rooms.get_mut(self.current)?;
        let last = room.last_seq();
        if room.scroll != 0 || last <= room.read_seq {
            return None;
        }
        room.read_seq = last;
        room.unread = 0;
        room.mentions = 0;
        Some(Action::Send(ClientFrame::Read { room: RoomRef::Id(room.room.id), seq: last }))
    }

    /// Adds (or refreshes) a room the user is a member of; returns the catch-up request if it is new.
    fn add_room(&mut self, room: Room) -> Option<Action> {
        if let Some(r) = self.room_mut(room.id) {
            refresh_room(&mut r.room, room);
            return None;
        }
        let id = room.id;
        self.rooms.push(RoomView::new(room));
        (self.connection == Connection::Online).then(|| self.catch_up(id))
    }

    fn remove_room(&mut self, id: i64) -> Option<RoomView> {
        let idx = self.index_of(id)?;
        let current_id = self.current_room().map(|r| r.room.id);
        let removed = self.rooms.remove(idx);
        self.pending.retain(|p| p.room != id);
        self.fetches.retain(|_, (room, _)| *room != id);
        self.current = match current_id.and_then(|c| self.index_of(c)) {
            Some(i) => i,
            None => idx.min(self.rooms.len().saturating_sub(1)),
        };
        Some(removed)
    }

    /// Applies one server frame.
    pub fn apply(&mut self, frame: ServerFrame) -> Vec<Action> {
        let mut actions = self.apply_frame(frame);
        actions.extend(self.mark_read());
        actions
    }

    fn apply_frame(&mut self, frame: ServerFrame) -> Vec<Action> {
        let mut actions = Vec::new();
        match frame {
            ServerFrame::Hello { user, rooms, .. } => return self.on_hello(user, rooms),
            ServerFrame::Message { message } => {
                let room_id = message.room;
                let current_id = self.current_room().map(|r| r.room.id);
                let me = self.me.clone();
                let mine = me.as_ref().map(|u| u.id);
                let from_me = message.sender.as_ref().map(|s| s.id) == mine;
                if let Some(cid) = &message.client_id
                    && from_me
                {
                    self.pending.retain(|p| &p.client_id != cid);
                }
                let bell = self.bell;
                let Some(view) = self.room_mut(room_id) else { return actions };
                let prev_last = view.last_seq();
                let seq = message.seq;
                let is_text = !message.is_system();
                let mentioned = me.as_ref().is_some_and(|u| crate::layout::mentions(&message, u));
                let kind = message.kind.clone();
                let seen = Some(room_id) == current_id && view.scroll == 0;
                let fresh = seq > prev_last;
                if view.merge(message) {
                    if is_text && !from_me && !seen {
                        view.unread += 1;
                        view.mentions += usize::from(mentioned);
                    }
                    if bell && fresh && is_text && !from_me && mentioned {
                        actions.push(Action::Bell);
                    }
                    if seq > prev_last {
                        match kind.as_str() {
                            "join" => view.room.member_count += 1,
                            "leave" | "kick" | "ban" => view.room.member_count = (view.room.member_count - 1).max(0),
                            _ => {}
                        }
                    }
                }
                // A gap between what is held and a live message (should not happen on one connection,
                // but costs nothing to repair): fetch what lies between.
                if prev_last > 0 && seq > prev_last + 1 && !view.catching_up {
                    actions.push(self.fetch(room_id, Fetch::After, None, Some(prev_last)));
                }
            }
            ServerFrame::MessageUpdated { message } => {
                if let Some(view) = self.room_mut(message.room) {
                    view.update(message);
                }
            }
            ServerFrame::RoomUpdated { room, req } => {
                if let Some(view) = self.room_mut(room.id) {
                    refresh_room(&mut view.room, room);
                }
                if let Some(done) = req.and_then(|r| self.commands.remove(&r)) {
                    self.info(done);
                }
            }
            ServerFrame::Typing { room, user, expires_ms } => {
                if self.me.as_ref().map(|u| u.id) != Some(user.id)
                    && let Some(view) = self.room_mut(room)
                {
                    let until = Instant::now() + Duration::from_millis(expires_ms.clamp(1000, 30_000));
                    view.typing.insert(user.id, (user.shown_name().to_owned(), until));
                }
            }
            ServerFrame::Read { room, seq } => {
                if let Some(view) = self.room_mut(room) {
                    view.read_seq = view.read_seq.max(seq);
                    if view.read_seq >= view.last_seq() {
                        view.unread = 0;
                        view.mentions = 0;
                    }
                }
            }
            ServerFrame::UserUpdated { user } => {
                if self.me.as_ref().is_some_and(|m| m.id == user.id) {
                    self.me = Some(user.clone());
                }
                for r in &mut self.rooms {
                    if let Some(p) = r.room.peer.as_mut().filter(|p| p.id == user.id) {
                        *p = user.clone();
                    }
                }
            }
            ServerFrame::Ack { client_id, .. } => {
                if let Some(cid) = client_id {
                    self.pending.retain(|p| p.client_id != cid);
                }
            }
            ServerFrame::Joined { room, req } => return self.on_joined(room, req),
            ServerFrame::Left { room, req } => {
                if let Some(r) = &req {
                    self.joins.remove(r);
                }
                if let Some(v) = self.remove_room(room) {
                    self.info(format!("you are no longer in {}", v.room.label()));
                }
            }
            ServerFrame::History { room, messages, has_more, req } => {
                let kind = req.as_ref().and_then(|r| self.fetches.remove(r)).map(|(_, k)| k);
                let page_last = messages.last().map(|m| m.seq);
                let mine = self.me.as_ref().map(|u| u.id);
                let Some(view) = self.room_mut(room) else { return actions };
                for m in messages {
                    // History carries the current state of each message: edits and deletions made while
                    // away replace what is held (a page never takes a message back to an older state).
                    let newer = view.messages.get(&m.seq).is_some_and(|held| {
                        (m.deleted && !held.deleted) || m.edited_at.unwrap_or(0) > held.edited_at.unwrap_or(0)
                    });
                    if newer {
                        view.update(m);
                    } else {
                        view.merge(m);
                    }
                }
                match kind {
                    Some(Fetch::Older) => view.loading_older = false,
                    Some(Fetch::After) if has_more && page_last.is_some() => {
                        actions.push(self.fetch(room, Fetch::After, None, page_last));
                    }
                    Some(Fetch::After) | Some(Fetch::Newest) => view.catching_up = false,
                    None => {}
                }
                // Messages of ours found in history are sent, whatever became of their ack.
                if let Some(view) = self.room(room) {
                    let held: Vec<String> = view
                        .messages
                        .values()
                        .rev()
                        .take(RECOVERY_PAGE as usize)
                        .filter(|m| m.sender.as_ref().map(|s| s.id) == mine)
                        .filter_map(|m| m.client_id.clone())
                        .collect();
                    self.pending.retain(|p| !(p.room == room && held.contains(&p.client_id)));
                }
            }
            ServerFrame::Invited { room, invited_by, .. } => {
                let name = crate::layout::one_line(&room.name);
                self.info(format!("{} invited you to #{name} (/join {name})", invited_by.shown_name()));
            }
            ServerFrame::Ok { req } => {
                if let Some(done) = req.and_then(|r| self.commands.remove(&r)) {
                    self.info(done);
                }
            }
            ServerFrame::Error { code, message, req } => self.on_error(code, message, req),
            ServerFrame::Reactions { room, seq, reactions, req } => {
                self.on_reactions(room, seq, reactions, req.is_some())
            }
            ServerFrame::ThreadUpdated { room, seq, reply_count } => self.on_thread_updated(room, seq, reply_count),
            ServerFrame::Notify { room, notify, muted, .. } => self.on_notify(room, notify, muted),
            ServerFrame::Thread { root, messages, has_more, .. } => self.on_thread(*root, messages, has_more),
            ServerFrame::Pins { room, pins, .. } => self.on_pins(room, pins),
            ServerFrame::SearchResults { hits, next_cursor, .. } => self.on_search_results(hits, next_cursor),
            ServerFrame::Pong { .. } | ServerFrame::Unknown => {}
        }
        actions
    }

    fn on_hello(&mut self, user: User, rooms: Vec<Room>) -> Vec<Action> {
        let mut actions = Vec::new();
        let first = self.me.is_none();
        self.me = Some(user);
        self.connection = Connection::Online;
        self.fetches.clear();
        let current_id = self.current_room().map(|r| r.room.id);
        let mut old: HashMap<i64, RoomView> = self.rooms.drain(..).map(|r| (r.room.id, r)).collect();
        for room in rooms {
            let view = match old.remove(&room.id) {
                Some(mut v) => {
                    // The server's read state is the truth (another device may have read meanwhile).
                    v.unread = usize::try_from(room.unread).unwrap_or(0);
                    v.read_seq = v.read_seq.max(room.last_read);
                    let last = v.room.last_seq.max(room.last_seq);
                    v.room = room;
                    v.room.last_seq = last;
                    v.loading_older = false;
                    v.catching_up = false;
                    v
                }
                None => RoomView::new(room),
            };
            self.rooms.push(view);
        }
        // Rooms left while disconnected are gone, and so are their unsent messages.
        self.pending.retain(|p| !old.contains_key(&p.room));
        self.current = current_id.and_then(|c| self.index_of(c)).unwrap_or(0);
        let ids: Vec<i64> = self.rooms.iter().map(|r| r.room.id).collect();
        for id in ids {
            let a = self.catch_up(id);
            actions.push(a);
        }
        if first && let Some(name) = self.initial_room.take() {
            match self.rooms.iter().position(|r| r.room.name.eq_ignore_ascii_case(&name)) {
                Some(i) => self.select(i),
                None => actions.push(self.join(name)),
            }
        }
        // Unacknowledged sends go again with the same client_id: the server stores each once.
        actions.extend(self.pending.iter().map(Self::send_frame));
        let name = self.me.as_ref().map(|u| u.username.clone()).unwrap_or_default();
        if first {
            self.info(format!("connected as {name} · /help for commands"));
        } else {
            self.info(format!("reconnected as {name}"));
        }
        actions
    }

    fn on_joined(&mut self, mut room: Room, req: Option<String>) -> Vec<Action> {
        let mut actions = Vec::new();
        let id = room.id;
        let asked = req.as_ref().and_then(|r| self.joins.remove(r)).is_some();
        let dm = req.as_ref().and_then(|r| self.dms.remove(r));
        if let Some(d) = &dm
            && room.is_direct()
            && room.peer.is_none()
        {
            room.peer = Some(User { id: 0, username: d.username.clone(), display_name: String::new() });
        }
        let new = self.room(id).is_none();
        if room.is_direct() && room.peer.is_none() && self.room(id).is_none_or(|r| r.room.peer.is_none()) {
            actions.push(Action::LoadDms); // opened by the other side: learn who it is with
        }
        let label = room.label();
        actions.extend(self.add_room(room));
        if asked || dm.is_some() {
            if let Some(i) = self.index_of(id) {
                self.select(i);
            }
            self.info(if dm.is_some() { format!("conversation {label}") } else { format!("joined {label}") });
        } else if new {
            self.info(format!("you are now in {label}"));
        }
        if let Some(text) = dm.and_then(|d| d.text) {
            actions.extend(self.send_text(text));
        }
        actions.extend(self.mark_read());
        actions
    }
}

/// Takes a room's new state from the server, keeping what only a RoomView carries (role, peer, read
/// position) when the new one lacks it, and never moving `last_seq` back.
fn refresh_room(held: &mut Room, mut new: Room) {
    new.last_seq = new.last_seq.max(held.last_seq);
    if new.role.is_none() {
        new.role = held.role.take();
    }
    if new.peer.is_none() {
        new.peer = held.peer.take();
    }
    if new.kind.is_empty() {
        new.kind = std::mem::take(&mut held.kind);
    }
    new.last_read = new.last_read.max(held.last_read);
    *held = new;
}
