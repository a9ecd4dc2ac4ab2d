//! Key presses: room switching, scrolling, panels, input history, and the composer (a
//! `ratatui-textarea` widget does the editing; only the keys the chat claims are handled here).

use std::time::Instant;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::{Action, ChatState, Connection, Fetch, SENT_HISTORY, TYPING_EVERY, new_composer};
use crate::proto::{ClientFrame, RoomRef};

impl ChatState {
    /// Total lines of the current room at the last rendered width.
    fn current_lines(&self) -> usize {
        match self.current_room() {
            Some(r) => crate::layout::room_lines(self.me.as_ref(), &self.pending, r, self.pane_width).len(),
            None => 0,
        }
    }

    fn scroll_by(&mut self, delta: isize) -> Vec<Action> {
        if let Some(panel) = self.panel.as_mut() {
            let max = panel.lines.len().saturating_sub(self.pane_height.max(1) as usize);
            panel.scroll = (panel.scroll as isize - delta).clamp(0, max as isize) as usize;
            return Vec::new();
        }
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

    /// ↑ on the composer's first line: the previous line sent (the line being written is kept).
    fn history_back(&mut self) -> bool {
        if self.composer.cursor().0 != 0 || self.sent_history.is_empty() {
            return false;
        }
        let pos = match self.history_pos {
            None => {
                self.draft = self.input();
                self.sent_history.len() - 1
            }
            Some(0) => return true,
            Some(p) => p - 1,
        };
        self.history_pos = Some(pos);
        let line = self.sent_history[pos].clone();
        self.set_input(&line);
        true
    }

    /// ↓ on the composer's last line: the next line sent, then the line being written.
    fn history_forward(&mut self) -> bool {
        let Some(pos) = self.history_pos else { return false };
        if self.composer.cursor().0 + 1 < self.composer.lines().len() {
            return false;
        }
        if pos + 1 < self.sent_history.len() {
            self.history_pos = Some(pos + 1);
            let line = self.sent_history[pos + 1].clone();
            self.set_input(&line);
        } else {
            self.history_pos = None;
            let draft = std::mem::take(&mut self.draft);
            self.set_input(&draft);
        }
        true
    }

    fn take_input(&mut self) -> String {
        let text = self.input();
        self.composer = new_composer();
        self.history_pos = None;
        self.draft.clear();
        if !text.trim().is_empty() && self.sent_history.last() != Some(&text) {
            self.sent_history.push(text.clone());
            if self.sent_history.len() > SENT_HISTORY {
                self.sent_history.remove(0);
            }
        }
        text
    }

    /// A `typing` frame when the user writes a message (not a command) in a room, at most every
    /// [`TYPING_EVERY`] per room.
    fn typing(&mut self) -> Option<Action> {
        let text = self.input();
        if self.connection != Connection::Online || text.trim().is_empty() || text.starts_with('/') {
            return None;
        }
        let room = self.current_room()?.room.id;
        let now = Instant::now();
        if self.last_typing.is_some_and(|(r, at)| r == room && now.duration_since(at) < TYPING_EVERY) {
            return None;
        }
        self.last_typing = Some((room, now));
        Some(Action::Send(ClientFrame::Typing { room: RoomRef::Id(room) }))
    }

    /// Handles one key press.
    pub fn on_key(&mut self, key: KeyEvent) -> Vec<Action> {
        if key.kind == KeyEventKind::Release {
            return Vec::new();
        }
        let mut actions = self.key(key);
        actions.extend(self.mark_read());
        actions
    }

    fn key(&mut self, key: KeyEvent) -> Vec<Action> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let alt = key.modifiers.contains(KeyModifiers::ALT);
        let shift = key.modifiers.contains(KeyModifiers::SHIFT);
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
            KeyCode::F(2) => self.show_rooms = !self.show_rooms,
            KeyCode::Char('r') if ctrl => self.show_rooms = !self.show_rooms,
            KeyCode::Up | KeyCode::Down if self.show_rooms => self.switch(key.code == KeyCode::Down),
            KeyCode::Enter if self.show_rooms => self.show_rooms = false,
            KeyCode::PageUp => return self.scroll_by(page),
            KeyCode::PageDown => return self.scroll_by(-page),
            KeyCode::Up if ctrl => return self.scroll_by(1),
            KeyCode::Down if ctrl => return self.scroll_by(-1),
            KeyCode::Up => {
                if !self.history_back() {
                    if self.composer.is_empty() {
                        return self.scroll_by(1);
                    }
                    self.composer.input(key);
                }
            }
            KeyCode::Down => {
                if !self.history_forward() {
                    if self.composer.is_empty() {
                        return self.scroll_by(-1);
                    }
                    self.composer.input(key);
                }
            }
            KeyCode::Esc => {
                if self.panel.take().is_none()
                    && !std::mem::take(&mut self.show_rooms)
                    && let Some(r) = self.rooms.get_mut(self.current)
                {
                    r.scroll = 0;
                }
            }
            KeyCode::Enter if alt || shift => self.composer.insert_newline(),
            KeyCode::Char('j') if ctrl => self.composer.insert_newline(),
            KeyCode::Enter => {
                let line = self.take_input();
                return self.submit(&line);
            }
            KeyCode::Char('u') if ctrl => {
                self.composer = new_composer();
                self.history_pos = None;
            }
            KeyCode::Char('w') if ctrl => {
                self.composer.delete_word();
            }
            _ => {
                if self.composer.input(key) {
                    return self.typing().into_iter().collect();
                }
            }
        }
        Vec::new()
    }
}
