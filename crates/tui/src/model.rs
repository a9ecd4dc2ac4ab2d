//! What the client holds: rooms with their messages, unsent messages, and the text panels (`/help`,
//! `/who`, `/list`). Plain data, shared by the state machine ([`crate::state`]) and the line layout
//! ([`crate::layout`]).

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use crate::proto::{Message, Room};

/// One room as the client holds it.
#[derive(Debug, Clone)]
pub struct RoomView {
    pub room: Room,
    /// Messages held, keyed by `seq`: merging is insertion, so a message is never shown twice.
    pub messages: BTreeMap<i64, Message>,
    /// Lines scrolled up from the bottom (0 follows new messages).
    pub scroll: usize,
    /// Text messages from others not read yet.
    pub unread: usize,
    /// Unread messages that mention the user.
    pub mentions: usize,
    /// A `before` page is on its way.
    pub loading_older: bool,
    /// A newest-page or `after` page is on its way.
    pub catching_up: bool,
    /// The highest read position sent to (or heard from) the server.
    pub read_seq: i64,
    /// Who is typing here (display name), until when.
    pub typing: HashMap<i64, (String, Instant)>,
}

impl RoomView {
    pub fn new(room: Room) -> Self {
        let unread = usize::try_from(room.unread).unwrap_or(0);
        let read_seq = room.last_read;
        RoomView {
            room,
            messages: BTreeMap::new(),
            scroll: 0,
            unread,
            mentions: 0,
            loading_older: false,
            catching_up: false,
            read_seq,
            typing: HashMap::new(),
        }
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
    pub fn merge(&mut self, m: Message) -> bool {
        if m.seq > self.room.last_seq {
            self.room.last_seq = m.seq;
        }
        if let Some(sender) = &m.sender {
            self.typing.remove(&sender.id);
        }
        if self.messages.contains_key(&m.seq) {
            return false;
        }
        self.messages.insert(m.seq, m);
        true
    }

    /// Replaces a held message by its new state (an edit or a deletion); true when it was held.
    pub fn update(&mut self, m: Message) -> bool {
        match self.messages.get_mut(&m.seq) {
            Some(held) => {
                *held = m;
                true
            }
            None => false,
        }
    }

    /// Names of those typing at `now`, sorted.
    pub fn typing_names(&self, now: Instant) -> Vec<String> {
        let mut names: Vec<String> =
            self.typing.values().filter(|(_, until)| *until > now).map(|(n, _)| n.clone()).collect();
        names.sort();
        names
    }
}

/// A message typed here and not yet acknowledged by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSend {
    pub client_id: String,
    pub room: i64,
    pub body: String,
    /// The message this one answers (`/reply`).
    pub reply_to: Option<i64>,
}

/// A text panel shown over the message pane (`/help`, `/who`, `/list`), scrollable, closed by Esc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Panel {
    pub title: String,
    pub lines: Vec<String>,
    /// First line shown.
    pub scroll: usize,
}
