//! Conversations (issue 14): replies, reactions, threads, pins and notification levels — the
//! commands that ask for them and the frames that answer.

use super::{Action, ChatState, Panel};
use crate::layout::{one_line, reactions_text};
use crate::proto::{ClientFrame, Message, Pin, Reaction, RoomRef, SearchHit};

const THREAD_PAGE: u32 = 50;

impl ChatState {
    fn current_id(&mut self) -> Option<i64> {
        let id = self.current_room().map(|r| r.room.id);
        if id.is_none() {
            self.error("you are in no room");
        }
        id
    }

    pub(super) fn react(&mut self, seq: i64, emoji: String, on: bool) -> Vec<Action> {
        let Some(room) = self.current_id() else { return Vec::new() };
        let req = Some(self.req("r"));
        let room = RoomRef::Id(room);
        vec![Action::Send(if on {
            ClientFrame::React { room, seq, emoji, req }
        } else {
            ClientFrame::Unreact { room, seq, emoji, req }
        })]
    }

    pub(super) fn thread(&mut self, seq: i64) -> Vec<Action> {
        let Some(room) = self.current_id() else { return Vec::new() };
        let req = Some(self.req("t"));
        vec![Action::Send(ClientFrame::Thread { room: RoomRef::Id(room), seq, limit: Some(THREAD_PAGE), req })]
    }

    pub(super) fn pins(&mut self) -> Vec<Action> {
        let Some(room) = self.current_id() else { return Vec::new() };
        let req = Some(self.req("p"));
        vec![Action::Send(ClientFrame::Pins { room: RoomRef::Id(room), req })]
    }

    pub(super) fn search(&mut self, q: String, cursor: Option<String>) -> Vec<Action> {
        let req = Some(self.req("s"));
        self.last_search = Some(q.clone());
        vec![Action::Send(ClientFrame::Search { q, cursor, req })]
    }

    /// The answer to `/search`: one line per hit, matches between `*`, in a panel.
    pub(super) fn on_search_results(&mut self, hits: Vec<SearchHit>, next_cursor: Option<String>) {
        let q = self.last_search.clone().unwrap_or_default();
        let mut lines: Vec<String> = hits
            .iter()
            .map(|h| {
                let label = self.room(h.room).map(|r| r.room.label()).unwrap_or_else(|| format!("#{}", h.room_name));
                let name =
                    h.message.sender.as_ref().map(|u| one_line(u.shown_name())).unwrap_or_else(|| "someone".into());
                format!("{label} #{} {name}: {}", h.seq, marked(&h.snippet, &h.highlights))
            })
            .collect();
        if lines.is_empty() {
            lines.push("no messages match".into());
        }
        if let Some(c) = next_cursor {
            lines.push(format!("… more: /search +{c} {q}"));
        }
        let n = hits.len();
        self.panel = Some(Panel { title: format!("search \"{q}\": {n} hit(s) (Esc closes)"), lines, scroll: 0 });
    }

    pub(super) fn notify(&mut self, level: Option<String>, muted: Option<bool>) -> Vec<Action> {
        let Some(room) = self.current_id() else { return Vec::new() };
        let req = Some(self.req("n"));
        vec![Action::Send(ClientFrame::Notify { room: RoomRef::Id(room), level, muted, req })]
    }

    /// A message's reactions changed (live, or the answer to our `/react`).
    pub(super) fn on_reactions(&mut self, room: i64, seq: i64, reactions: Vec<Reaction>, answer: bool) {
        let text = reactions_text(&reactions);
        if let Some(m) = self.room_mut(room).and_then(|v| v.messages.get_mut(&seq)) {
            m.reactions = reactions;
        }
        if answer {
            self.info(if text.is_empty() { format!("no reactions left on #{seq}") } else { format!("#{seq}: {text}") });
        }
    }

    pub(super) fn on_thread_updated(&mut self, room: i64, seq: i64, reply_count: i64) {
        if let Some(m) = self.room_mut(room).and_then(|v| v.messages.get_mut(&seq)) {
            m.reply_count = reply_count;
        }
    }

    pub(super) fn on_notify(&mut self, room: i64, notify: String, muted: bool) {
        let label = self.room(room).map(|r| r.room.label()).unwrap_or_else(|| format!("room {room}"));
        self.info(format!("notifications of {label}: {notify}{}", if muted { ", muted" } else { "" }));
    }

    pub(super) fn on_thread(&mut self, root: Message, replies: Vec<Message>, has_more: bool) {
        let mut lines = vec![panel_line(&root)];
        lines.extend(replies.iter().map(|m| format!("  {}", panel_line(m))));
        if replies.is_empty() {
            lines.push("  (no replies yet: /reply SEQ TEXT)".into());
        }
        if has_more {
            lines.push("  … more replies".into());
        }
        let n = replies.len();
        let title = format!("thread of #{} ({n} repl{}; Esc closes)", root.seq, if n == 1 { "y" } else { "ies" });
        self.panel = Some(Panel { title, lines, scroll: 0 });
    }

    pub(super) fn on_pins(&mut self, room: i64, pins: Vec<Pin>) {
        let label = self.room(room).map(|r| r.room.label()).unwrap_or_default();
        let mut lines: Vec<String> = pins
            .iter()
            .map(|p| {
                let by = p.pinned_by.as_ref().map(|u| one_line(u.shown_name())).unwrap_or_else(|| "someone".into());
                format!("{} (pinned by {by})", panel_line(&p.message))
            })
            .collect();
        if lines.is_empty() {
            lines.push("nothing is pinned here".into());
        }
        self.panel = Some(Panel { title: format!("pinned in {label} (Esc closes)"), lines, scroll: 0 });
    }
}

/// A snippet on one line with its matched ranges between `*` (the terminal shows no markup there).
fn marked(text: &str, highlights: &[[usize; 2]]) -> String {
    let mut marks = highlights.iter().flat_map(|&[a, b]| [a, b]).peekable();
    let mut out = String::with_capacity(text.len() + 2 * highlights.len());
    for (i, c) in text.chars().enumerate() {
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

/// `#seq name: body [reactions]`, on one line, for the thread and pins panels.
fn panel_line(m: &Message) -> String {
    let name = m.sender.as_ref().map(|u| one_line(u.shown_name())).unwrap_or_else(|| "someone".into());
    let body = if m.deleted { "(message deleted)".to_owned() } else { one_line(&m.body) };
    let reactions = reactions_text(&m.reactions);
    let tail = if reactions.is_empty() { String::new() } else { format!("  [{reactions}]") };
    format!("#{} {name}: {body}{tail}", m.seq)
}
