//! The client's state machine: everything the chat screen shows, changed only by pure methods.
//!
//! [`ChatState::apply`] takes a server frame, [`ChatState::on_net`] a network event, [`ChatState::on_key`] a
//! key press; each returns the [`Action`]s the network layer must perform. Nothing here does I/O, so the
//! whole client logic is testable without a terminal or a server.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::proto::{ClientFrame, Message, Room, RoomRef, ServerFrame, User};

/// Page size of the catch-up requests (`after`) made when (re)connecting: the protocol's maximum.
pub const RECOVERY_PAGE: u32 = 200;
/// Page size of the newest page of a room seen for the first time, and of older pages (`before`).
pub const SCROLLBACK_PAGE: u32 = 50;

/// What the network layer must do for the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this frame on the WebSocket (dropped when there is none: the state resends what matters).
    Send(ClientFrame),
    /// `POST /api/v1/rooms`.
    CreateRoom { name: String, private: bool },
    /// `PATCH /api/v1/me`.
    SetDisplayName(String),
    /// Leave the program.
    Quit,
}

/// What the network layer reports to the state.
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
    /// A REST call failed (`what` failed: `error`).
    RestError { what: String, error: String },
    /// The client cannot go on (for example the password no longer works).
    Fatal(String),
}

/// A slash command typed in the input line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Join(String),
    Leave,
    Create { name: String, private: bool },
    Nick(String),
    Quit,
    Help,
}

pub const HELP: &str = "/join NAME · /leave · /create NAME [private] · /nick DISPLAY NAME · /quit · \
                        Tab/Ctrl-N/Ctrl-P rooms · PgUp/PgDn scroll · Esc bottom";

/// Parses a line starting with `/`.
pub fn parse_command(line: &str) -> Result<Command, String> {
    let line = line.trim();
    let rest = line.strip_prefix('/').ok_or_else(|| "a command starts with /".to_owned())?;
    let (name, args) = match rest.split_once(char::is_whitespace) {
        Some((n, a)) => (n, a.trim()),
        None => (rest, ""),
    };
    let words: Vec<&str> = args.split_whitespace().collect();
    match name.to_ascii_lowercase().as_str() {
        "join" | "j" => match words.as_slice() {
            [room] => Ok(Command::Join(room.trim_start_matches('#').to_owned())),
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
            [room] => Ok(Command::Create { name: room.trim_start_matches('#').to_owned(), private: false }),
            [room, vis] if vis.eq_ignore_ascii_case("private") => {
                Ok(Command::Create { name: room.trim_start_matches('#').to_owned(), private: true })
            }
            [room, vis] if vis.eq_ignore_ascii_case("public") => {
                Ok(Command::Create { name: room.trim_start_matches('#').to_owned(), private: false })
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
        "quit" | "exit" | "q" => Ok(Command::Quit),
        "help" | "h" | "?" => Ok(Command::Help),
        other => Err(format!("unknown command /{other} (try /help)")),
    }
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

/// One room as the client holds it.
#[derive(Debug, Clone)]
pub struct RoomView {
    pub room: Room,
    /// Messages held, keyed by `seq`: merging is insertion, so a message is never shown twice.
    pub messages: BTreeMap<i64, Message>,
    /// Lines scrolled up from the bottom (0 follows new messages).
    pub scroll: usize,
    /// New messages since the room was last looked at.
    pub unread: usize,
    /// A `before` page is on its way.
    pub loading_older: bool,
    /// A newest-page or `after` page is on its way.
    pub catching_up: bool,
}

impl RoomView {
    fn new(room: Room) -> Self {
        RoomView { room, messages: BTreeMap::new(), scroll: 0, unread: 0, loading_older: false, catching_up: false }
    }

    /// The newest `seq` held (0 when none).
    pub fn last_seq(&self) -> i64 {
        self.messages.keys().next_back().copied().unwrap_or(0)
    }

    /// The oldest `seq` held (0 when none).
    pub fn first_seq(&self) -> i64 {
        self.messages.keys().next().copied().unwrap_or(0)
    }

    /// Whether older messages exist on the server (sequence numbers start at 1, without gaps).
    pub fn has_older(&self) -> bool {
        self.first_seq() > 1
    }

    /// Inserts a message; true when it was new.
    fn merge(&mut self, m: Message) -> bool {
        if m.seq > self.room.last_seq {
            self.room.last_seq = m.seq;
        }
        if self.messages.contains_key(&m.seq) {
            return false;
        }
        self.messages.insert(m.seq, m);
        true
    }
}

/// A message typed here and not yet acknowledged by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSend {
    pub client_id: String,
    pub room: i64,
    pub body: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fetch {
    Newest,
    Older,
    After,
}

/// Everything the chat screen shows.
#[derive(Debug)]
pub struct ChatState {
    pub me: Option<User>,
    pub rooms: Vec<RoomView>,
    pub current: usize,
    pub input: String,
    /// Cursor position in `input`, in characters.
    pub cursor: usize,
    pub status: Option<Status>,
    pub pending: Vec<PendingSend>,
    pub connection: Connection,
    pub quit: bool,
    /// Size of the message pane at the last render (scrolling is computed from it).
    pub pane_width: u16,
    pub pane_height: u16,
    initial_room: Option<String>,
    fetches: HashMap<String, (i64, Fetch)>,
    joins: HashMap<String, String>,
    next_req: u64,
    client_prefix: String,
    next_client: u64,
}

impl ChatState {
    /// `client_prefix` starts every `client_id` this state makes: make it unique per run.
    pub fn new(client_prefix: impl Into<String>, initial_room: Option<String>) -> Self {
        ChatState {
            me: None,
            rooms: Vec::new(),
            current: 0,
            input: String::new(),
            cursor: 0,
            status: None,
            pending: Vec::new(),
            connection: Connection::Connecting,
            quit: false,
            pane_width: 80,
            pane_height: 20,
            initial_room: initial_room.map(|r| r.trim_start_matches('#').to_owned()),
            fetches: HashMap::new(),
            joins: HashMap::new(),
            next_req: 0,
            client_prefix: client_prefix.into(),
            next_client: 0,
        }
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
            req: Some(p.client_id.clone()),
        })
    }

    fn select(&mut self, index: usize) {
        if index < self.rooms.len() {
            self.current = index;
            self.rooms[index].unread = 0;
        }
    }

    /// Adds (or refreshes) a room the user is a member of; returns the catch-up request if it is new.
    fn add_room(&mut self, room: Room) -> Option<Action> {
        if let Some(r) = self.room_mut(room.id) {
            let last = r.room.last_seq.max(room.last_seq);
            r.room = room;
            r.room.last_seq = last;
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
        if let Some(r) = self.rooms.get_mut(self.current) {
            r.unread = 0;
        }
        Some(removed)
    }

    /// Applies one server frame.
    pub fn apply(&mut self, frame: ServerFrame) -> Vec<Action> {
        let mut actions = Vec::new();
        match frame {
            ServerFrame::Hello { user, rooms, .. } => {
                let first = self.me.is_none();
                self.me = Some(user);
                self.connection = Connection::Online;
                self.fetches.clear();
                let current_id = self.current_room().map(|r| r.room.id);
                let mut old: HashMap<i64, RoomView> = self.rooms.drain(..).map(|r| (r.room.id, r)).collect();
                for room in rooms {
                    let view = match old.remove(&room.id) {
                        Some(mut v) => {
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
                if let Some(r) = self.rooms.get_mut(self.current) {
                    r.unread = 0;
                }
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
            }
            ServerFrame::Message { message } => {
                let room_id = message.room;
                let current_id = self.current_room().map(|r| r.room.id);
                let mine = self.me.as_ref().map(|u| u.id);
                if let Some(cid) = &message.client_id
                    && message.sender.as_ref().map(|s| s.id) == mine
                {
                    self.pending.retain(|p| &p.client_id != cid);
                }
                let Some(view) = self.room_mut(room_id) else { return actions };
                let prev_last = view.last_seq();
                let seq = message.seq;
                let is_text = !message.is_system();
                if view.merge(message) && Some(room_id) != current_id && is_text {
                    view.unread += 1;
                }
                // A gap between what is held and a live message (should not happen on one connection,
                // but costs nothing to repair): fetch what lies between.
                if prev_last > 0 && seq > prev_last + 1 && !view.catching_up {
                    actions.push(self.fetch(room_id, Fetch::After, None, Some(prev_last)));
                }
            }
            ServerFrame::Ack { client_id, .. } => {
                if let Some(cid) = client_id {
                    self.pending.retain(|p| p.client_id != cid);
                }
            }
            ServerFrame::Joined { room, req } => {
                let name = room.name.clone();
                let id = room.id;
                let asked = req.as_ref().and_then(|r| self.joins.remove(r)).is_some();
                let new = self.room(id).is_none();
                actions.extend(self.add_room(room));
                if asked {
                    if let Some(i) = self.index_of(id) {
                        self.select(i);
                    }
                    self.info(format!("joined #{name}"));
                } else if new {
                    self.info(format!("you are now in #{name}"));
                }
            }
            ServerFrame::Left { room, req } => {
                if let Some(r) = &req {
                    self.joins.remove(r);
                }
                if let Some(v) = self.remove_room(room) {
                    self.info(format!("left #{}", v.room.name));
                }
            }
            ServerFrame::History { room, messages, has_more, req } => {
                let kind = req.as_ref().and_then(|r| self.fetches.remove(r)).map(|(_, k)| k);
                let page_last = messages.last().map(|m| m.seq);
                let mine = self.me.as_ref().map(|u| u.id);
                let Some(view) = self.room_mut(room) else { return actions };
                for m in messages {
                    view.merge(m);
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
            ServerFrame::Error { code, message, req } => {
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
                    Some(r) if self.pending.iter().any(|p| p.client_id == r) => {
                        let idx = self.pending.iter().position(|p| p.client_id == r).unwrap_or(0);
                        let p = self.pending.remove(idx);
                        if self.input.is_empty() {
                            self.cursor = p.body.chars().count();
                            self.input = p.body;
                        }
                        self.error(format!("message not sent: {text}"));
                    }
                    _ => self.error(format!("{code}: {text}")),
                }
            }
            ServerFrame::Pong { .. } | ServerFrame::Unknown => {}
        }
        actions
    }

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
                let name = room.name.clone();
                let actions: Vec<Action> = self.add_room(room).into_iter().collect();
                if let Some(i) = self.index_of(id) {
                    self.select(i);
                }
                self.info(format!("created #{name}"));
                return actions;
            }
            NetEvent::DisplayNameSet(user) => {
                self.info(format!("your display name is now {}", user.shown_name()));
                self.me = Some(user);
            }
            NetEvent::RestError { what, error } => self.error(format!("{what}: {error}")),
            NetEvent::Fatal(e) => {
                self.connection = Connection::Offline;
                self.error(format!("{e} (/quit to leave)"));
            }
        }
        Vec::new()
    }

    fn join(&mut self, name: String) -> Action {
        let req = self.req("j");
        self.joins.insert(req.clone(), name.clone());
        Action::Send(ClientFrame::Join { room: RoomRef::Name(name), req: Some(req) })
    }

    /// Queues a text message for the current room.
    fn send_text(&mut self, body: String) -> Vec<Action> {
        let Some(room) = self.current_room().map(|r| r.room.id) else {
            self.error("you are in no room: /join NAME or /create NAME first");
            return Vec::new();
        };
        self.next_client += 1;
        let p = PendingSend { client_id: format!("{}-{}", self.client_prefix, self.next_client), room, body };
        let action = Self::send_frame(&p);
        self.pending.push(p);
        if let Some(r) = self.rooms.get_mut(self.current) {
            r.scroll = 0;
        }
        vec![action]
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
        match parse_command(trimmed) {
            Err(e) => {
                self.error(e);
                Vec::new()
            }
            Ok(Command::Quit) => {
                self.quit = true;
                vec![Action::Quit]
            }
            Ok(Command::Help) => {
                self.info(HELP);
                Vec::new()
            }
            Ok(Command::Nick(name)) => vec![Action::SetDisplayName(name)],
            Ok(Command::Create { name, private }) => vec![Action::CreateRoom { name, private }],
            Ok(_) if !online => {
                self.error("not connected: try again when the connection is back");
                Vec::new()
            }
            Ok(Command::Join(name)) => {
                if let Some(i) = self.rooms.iter().position(|r| r.room.name.eq_ignore_ascii_case(&name)) {
                    self.select(i);
                    return Vec::new();
                }
                vec![self.join(name)]
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
        }
    }

    /// Total lines of the current room at the last rendered width.
    fn current_lines(&self) -> usize {
        match self.current_room() {
            Some(r) => crate::ui::room_lines(self, r, self.pane_width).len(),
            None => 0,
        }
    }

    fn scroll_by(&mut self, delta: isize) -> Vec<Action> {
        let total = self.current_lines();
        let height = self.pane_height.max(1) as usize;
        let max = total.saturating_sub(height);
        let online = self.connection == Connection::Online;
        let Some(room) = self.rooms.get_mut(self.current) else { return Vec::new() };
        let wanted = room.scroll as isize + delta;
        room.scroll = wanted.clamp(0, max as isize) as usize;
        if delta > 0 && wanted >= max as isize && room.has_older() && !room.loading_older && online {
            let (id, first) = (room.room.id, room.first_seq());
            return vec![self.fetch(id, Fetch::Older, Some(first), None)];
        }
        Vec::new()
    }

    fn switch(&mut self, forward: bool) {
        let n = self.rooms.len();
        if n == 0 {
            return;
        }
        let next = if forward { (self.current + 1) % n } else { (self.current + n - 1) % n };
        self.select(next);
    }

    fn byte_at(&self, char_idx: usize) -> usize {
        self.input.char_indices().nth(char_idx).map(|(b, _)| b).unwrap_or(self.input.len())
    }

    /// Handles one key press.
    pub fn on_key(&mut self, key: KeyEvent) -> Vec<Action> {
        if key.kind == KeyEventKind::Release {
            return Vec::new();
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let page = self.pane_height.saturating_sub(1).max(1) as isize;
        match key.code {
            KeyCode::Char('c') | KeyCode::Char('d') if ctrl => {
                self.quit = true;
                return vec![Action::Quit];
            }
            KeyCode::Char('n') if ctrl => self.switch(true),
            KeyCode::Char('p') if ctrl => self.switch(false),
            KeyCode::Tab => self.switch(true),
            KeyCode::BackTab => self.switch(false),
            KeyCode::PageUp => return self.scroll_by(page),
            KeyCode::PageDown => return self.scroll_by(-page),
            KeyCode::Up if ctrl || self.input.is_empty() => return self.scroll_by(1),
            KeyCode::Down if ctrl || self.input.is_empty() => return self.scroll_by(-1),
            KeyCode::Esc => {
                if let Some(r) = self.rooms.get_mut(self.current) {
                    r.scroll = 0;
                }
            }
            KeyCode::Enter => {
                let line = std::mem::take(&mut self.input);
                self.cursor = 0;
                return self.submit(&line);
            }
            KeyCode::Char('u') if ctrl => {
                self.input.clear();
                self.cursor = 0;
            }
            KeyCode::Char('w') if ctrl => {
                let chars: Vec<char> = self.input.chars().collect();
                let mut start = self.cursor.min(chars.len());
                while start > 0 && chars[start - 1].is_whitespace() {
                    start -= 1;
                }
                while start > 0 && !chars[start - 1].is_whitespace() {
                    start -= 1;
                }
                let (a, b) = (self.byte_at(start), self.byte_at(self.cursor));
                self.input.replace_range(a..b, "");
                self.cursor = start;
            }
            KeyCode::Char('a') if ctrl => self.cursor = 0,
            KeyCode::Char('e') if ctrl => self.cursor = self.input.chars().count(),
            KeyCode::Char(_) if ctrl => {}
            KeyCode::Char(c) => {
                let at = self.byte_at(self.cursor);
                self.input.insert(at, c);
                self.cursor += 1;
            }
            KeyCode::Backspace if self.cursor > 0 => {
                self.cursor -= 1;
                let at = self.byte_at(self.cursor);
                self.input.remove(at);
            }
            KeyCode::Delete if self.cursor < self.input.chars().count() => {
                let at = self.byte_at(self.cursor);
                self.input.remove(at);
            }
            KeyCode::Left => self.cursor = self.cursor.saturating_sub(1),
            KeyCode::Right => self.cursor = (self.cursor + 1).min(self.input.chars().count()),
            KeyCode::Home => self.cursor = 0,
            KeyCode::End => self.cursor = self.input.chars().count(),
            _ => {}
        }
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Message;

    fn user(id: i64, name: &str) -> User {
        User { id, username: name.into(), display_name: name.into() }
    }

    fn room(id: i64, name: &str, last_seq: i64) -> Room {
        Room { id, name: name.into(), visibility: "public".into(), created_by: 1, last_seq, member_count: 2 }
    }

    fn msg(room: i64, seq: i64, from: &User, body: &str) -> Message {
        Message {
            room,
            seq,
            kind: "text".into(),
            sender: Some(from.clone()),
            body: body.into(),
            client_id: Some(format!("c{seq}")),
            ts: 1_763_812_345_678 + seq * 1000,
        }
    }

    fn hello(rooms: Vec<Room>) -> ServerFrame {
        ServerFrame::Hello { v: 1, user: user(1, "alice"), rooms }
    }

    fn history(room: i64, msgs: Vec<Message>, has_more: bool, req: &str) -> ServerFrame {
        ServerFrame::History { room, messages: msgs, has_more, req: Some(req.into()) }
    }

    /// The `(req, room, before, after, limit)` of every history request among `actions`.
    /// `(req, room, before, after, limit)`.
    type HistoryReq = (String, i64, Option<i64>, Option<i64>, Option<u32>);

    fn history_reqs(actions: &[Action]) -> Vec<HistoryReq> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send(ClientFrame::History { room: RoomRef::Id(r), before, after, limit, req }) => {
                    Some((req.clone().unwrap_or_default(), *r, *before, *after, *limit))
                }
                _ => None,
            })
            .collect()
    }

    fn sends(actions: &[Action]) -> Vec<(String, String)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send(ClientFrame::Send { body, client_id, .. }) => {
                    Some((client_id.clone().unwrap_or_default(), body.clone()))
                }
                _ => None,
            })
            .collect()
    }

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn ctrl(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
    }

    fn type_line(s: &mut ChatState, text: &str) -> Vec<Action> {
        for c in text.chars() {
            assert!(s.on_key(key(KeyCode::Char(c))).is_empty());
        }
        s.on_key(key(KeyCode::Enter))
    }

    fn seqs(s: &ChatState, room: i64) -> Vec<i64> {
        s.room(room).unwrap().messages.keys().copied().collect()
    }

    #[test]
    fn merges_by_seq_without_duplicates_or_gaps() {
        let bob = user(2, "bob");
        let mut s = ChatState::new("t", None);
        let a = s.apply(hello(vec![room(7, "general", 3)]));
        let reqs = history_reqs(&a);
        assert_eq!(reqs.len(), 1);
        let (req, r, before, after, _) = reqs[0].clone();
        assert_eq!((r, before, after), (7, None, None), "nothing held yet: the newest page");
        // A live message overtakes the history reply; then the page arrives, overlapping nothing.
        s.apply(ServerFrame::Message { message: msg(7, 4, &bob, "four") });
        s.apply(history(7, (1..=3).map(|q| msg(7, q, &bob, "x")).collect(), false, &req));
        // The same message twice, and a page overlapping what is held.
        s.apply(ServerFrame::Message { message: msg(7, 4, &bob, "four") });
        s.apply(ServerFrame::Message { message: msg(7, 5, &bob, "five") });
        s.apply(history(7, (2..=5).map(|q| msg(7, q, &bob, "x")).collect(), false, "stale"));
        assert_eq!(seqs(&s, 7), vec![1, 2, 3, 4, 5]);
        assert_eq!(s.room(7).unwrap().messages[&4].body, "four", "a held message is never replaced");
        assert_eq!(s.room(7).unwrap().room.last_seq, 5);
    }

    #[test]
    fn a_gap_in_live_messages_is_fetched() {
        let bob = user(2, "bob");
        let mut s = ChatState::new("t", None);
        let a = s.apply(hello(vec![room(7, "general", 2)]));
        let req = history_reqs(&a)[0].0.clone();
        s.apply(history(7, (1..=2).map(|q| msg(7, q, &bob, "x")).collect(), false, &req));
        let a = s.apply(ServerFrame::Message { message: msg(7, 6, &bob, "six") });
        let reqs = history_reqs(&a);
        assert_eq!(reqs.len(), 1);
        assert_eq!((reqs[0].1, reqs[0].3), (7, Some(2)));
        s.apply(history(7, (3..=6).map(|q| msg(7, q, &bob, "x")).collect(), false, &reqs[0].0));
        assert_eq!(seqs(&s, 7), vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn recovery_asks_for_everything_after_the_last_seq_in_pages_of_200() {
        let bob = user(2, "bob");
        let mut s = ChatState::new("t", None);
        let a = s.apply(hello(vec![room(1, "general", 5), room(2, "random", 0)]));
        for (req, r, ..) in history_reqs(&a) {
            if r == 1 {
                s.apply(history(1, (1..=5).map(|q| msg(1, q, &bob, "x")).collect(), false, &req));
            } else {
                s.apply(history(2, vec![], false, &req));
            }
        }
        assert!(s.is_settled());
        s.on_net(NetEvent::Disconnected { reason: "gone".into(), retry_in: Duration::from_millis(500) });
        assert_eq!(s.connection, Connection::Offline);
        assert!(s.status.as_ref().unwrap().error);

        // A third room appeared and "random" was left while we were away.
        let a = s.apply(hello(vec![room(1, "general", 450), room(3, "new", 2)]));
        let mut reqs = history_reqs(&a);
        reqs.sort_by_key(|r| r.1);
        assert_eq!(reqs.len(), 2);
        assert_eq!((reqs[0].1, reqs[0].2, reqs[0].3, reqs[0].4), (1, None, Some(5), Some(RECOVERY_PAGE)));
        assert_eq!((reqs[1].1, reqs[1].2, reqs[1].3), (3, None, None));
        assert!(s.room(2).is_none(), "a room left meanwhile is dropped");

        // Pages of 200 until has_more is false, each continuing after the page's last seq.
        let mut req = reqs[0].0.clone();
        let mut from = 6;
        loop {
            let to = (from + 199).min(450);
            let a = s.apply(history(1, (from..=to).map(|q| msg(1, q, &bob, "x")).collect(), to < 450, &req));
            let next = history_reqs(&a);
            if to == 450 {
                assert!(next.is_empty());
                break;
            }
            assert_eq!(next.len(), 1);
            assert_eq!((next[0].3, next[0].4), (Some(to), Some(RECOVERY_PAGE)));
            req = next[0].0.clone();
            from = to + 1;
        }
        assert_eq!(seqs(&s, 1), (1..=450).collect::<Vec<_>>());
        assert!(!s.room(1).unwrap().catching_up);
    }

    #[test]
    fn unacknowledged_sends_are_resent_with_the_same_client_id() {
        let mut s = ChatState::new("run1", None);
        s.apply(hello(vec![room(1, "general", 0)]));
        let a = type_line(&mut s, "hello there");
        let sent = sends(&a);
        assert_eq!(sent, vec![("run1-1".to_owned(), "hello there".to_owned())]);
        assert_eq!(s.pending.len(), 1);
        assert!(s.input.is_empty());

        s.on_net(NetEvent::Disconnected { reason: "x".into(), retry_in: Duration::ZERO });
        // Typed while offline: queued too.
        let a = type_line(&mut s, "second");
        assert_eq!(sends(&a)[0].0, "run1-2");
        let a = s.apply(hello(vec![room(1, "general", 0)]));
        assert_eq!(
            sends(&a),
            vec![("run1-1".to_owned(), "hello there".to_owned()), ("run1-2".to_owned(), "second".to_owned())]
        );
        s.apply(ServerFrame::Ack {
            room: 1,
            seq: 1,
            ts: 0,
            client_id: Some("run1-1".into()),
            duplicate: true,
            req: None,
        });
        assert_eq!(s.pending.len(), 1);
        // The other one shows up in a history page (its ack was lost): it is sent.
        let mut m = msg(1, 2, &user(1, "alice"), "second");
        m.client_id = Some("run1-2".into());
        s.apply(ServerFrame::History { room: 1, messages: vec![m], has_more: false, req: None });
        assert!(s.pending.is_empty());
    }

    #[test]
    fn a_refused_send_goes_back_to_the_input_line() {
        let mut s = ChatState::new("t", None);
        s.apply(hello(vec![room(1, "general", 0)]));
        type_line(&mut s, "too long");
        s.apply(ServerFrame::Error {
            code: "message_too_large".into(),
            message: "too large".into(),
            req: Some("t-1".into()),
        });
        assert!(s.pending.is_empty());
        assert_eq!(s.input, "too long");
        assert_eq!(s.status.as_ref().unwrap().text, "message not sent: too large");
    }

    #[test]
    fn parses_commands() {
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
    fn commands_become_actions() {
        let mut s = ChatState::new("t", None);
        s.apply(hello(vec![room(1, "general", 0)]));
        let a = type_line(&mut s, "/join random");
        let Action::Send(ClientFrame::Join { room: RoomRef::Name(n), req: Some(req) }) = &a[0] else { panic!("{a:?}") };
        assert_eq!(n, "random");
        // The reply selects the room and fetches its newest page; the hub's copy of the event changes nothing.
        let a = s.apply(ServerFrame::Joined { room: room(2, "random", 3), req: Some(req.clone()) });
        assert_eq!(history_reqs(&a).len(), 1);
        assert_eq!(s.current_room().unwrap().room.name, "random");
        assert!(s.apply(ServerFrame::Joined { room: room(2, "random", 3), req: None }).is_empty());
        assert_eq!(s.rooms.len(), 2);

        let a = type_line(&mut s, "/leave");
        assert!(matches!(&a[0], Action::Send(ClientFrame::Leave { room: RoomRef::Id(2), .. })));
        s.apply(ServerFrame::Left { room: 2, req: None });
        assert_eq!(s.rooms.len(), 1);
        assert_eq!(s.current_room().unwrap().room.name, "general");

        assert_eq!(
            type_line(&mut s, "/create ops private"),
            vec![Action::CreateRoom { name: "ops".into(), private: true }]
        );
        let a = s.on_net(NetEvent::RoomCreated(room(9, "ops", 1)));
        assert_eq!(history_reqs(&a).len(), 1);
        assert_eq!(s.current_room().unwrap().room.name, "ops");

        assert_eq!(type_line(&mut s, "/nick Alice L"), vec![Action::SetDisplayName("Alice L".into())]);
        assert_eq!(sends(&type_line(&mut s, "//shrug")), vec![("t-1".to_owned(), "/shrug".to_owned())]);
        assert!(type_line(&mut s, "/bogus").is_empty());
        assert!(s.status.as_ref().unwrap().error);
        assert_eq!(type_line(&mut s, "/quit"), vec![Action::Quit]);
        assert!(s.quit);
    }

    #[test]
    fn keys_edit_switch_and_quit() {
        let mut s = ChatState::new("t", Some("random".into()));
        let a = s.apply(hello(vec![room(1, "general", 0), room(2, "random", 0), room(3, "ops", 0)]));
        assert!(a.iter().all(|a| matches!(a, Action::Send(ClientFrame::History { .. }))), "--room is held: no join");
        assert_eq!(s.current, 1, "--room opens first");
        s.on_key(key(KeyCode::Tab));
        assert_eq!(s.current, 2);
        s.on_key(ctrl('n'));
        assert_eq!(s.current, 0);
        s.on_key(ctrl('p'));
        assert_eq!(s.current, 2);
        for c in "helo wrld".chars() {
            s.on_key(key(KeyCode::Char(c)));
        }
        for _ in 0..3 {
            s.on_key(key(KeyCode::Left));
        }
        s.on_key(key(KeyCode::Char('o')));
        s.on_key(key(KeyCode::Home));
        s.on_key(key(KeyCode::Right));
        s.on_key(key(KeyCode::Right));
        s.on_key(key(KeyCode::Char('l')));
        assert_eq!(s.input, "hello world");
        s.on_key(ctrl('w'));
        assert_eq!(s.input, "lo world", "Ctrl-W deletes the word before the cursor");
        assert_eq!(s.cursor, 0);
        s.on_key(ctrl('u'));
        assert_eq!(s.input, "");
        assert_eq!(s.on_key(ctrl('c')), vec![Action::Quit]);
    }

    #[test]
    fn an_unknown_initial_room_is_joined() {
        let mut s = ChatState::new("t", Some("#lobby".into()));
        let a = s.apply(hello(vec![room(1, "general", 0)]));
        assert!(
            a.iter()
                .any(|a| matches!(a, Action::Send(ClientFrame::Join { room: RoomRef::Name(n), .. }) if n == "lobby"))
        );
    }

    #[test]
    fn scrolling_to_the_top_loads_older_history() {
        let bob = user(2, "bob");
        let mut s = ChatState::new("t", None);
        let a = s.apply(hello(vec![room(1, "general", 120)]));
        let req = history_reqs(&a)[0].0.clone();
        s.apply(history(1, (71..=120).map(|q| msg(1, q, &bob, "x")).collect(), true, &req));
        s.pane_height = 20;
        s.pane_width = 60;
        assert!(history_reqs(&s.on_key(key(KeyCode::PageUp))).is_empty());
        assert_eq!(s.rooms[0].scroll, 19);
        let a = s.on_key(key(KeyCode::PageUp));
        let reqs = history_reqs(&a);
        assert_eq!(reqs.len(), 1);
        assert_eq!((reqs[0].2, reqs[0].3), (Some(71), None), "older page: before the first seq held");
        assert_eq!(s.rooms[0].scroll, 30, "clamped at the top");
        assert!(history_reqs(&s.on_key(key(KeyCode::PageUp))).is_empty(), "one older page at a time");
        s.apply(history(1, (21..=70).map(|q| msg(1, q, &bob, "x")).collect(), true, &reqs[0].0));
        assert_eq!(seqs(&s, 1), (21..=120).collect::<Vec<_>>());
        assert_eq!(s.rooms[0].scroll, 30, "the view stays where it was");
        s.on_key(key(KeyCode::PageDown));
        assert_eq!(s.rooms[0].scroll, 11);
        s.on_key(key(KeyCode::Esc));
        assert_eq!(s.rooms[0].scroll, 0);
    }
}
