//! Per-connection delivery cursors: the rule that makes every transport gap-free and duplicate-free.
//!
//! A connection remembers, per room, the last `seq` it handed to its client. A new message is then
//! one of three things: already sent (drop it), the next one (send it), or further ahead — a **gap**,
//! which the connection fills from the store before sending it. The same rule serves a client that
//! reconnects with the last `seq` it holds, a live connection whose registration raced a message, and
//! (across nodes) a broker that lost something: the store is the truth, live delivery the fast path.

use std::collections::HashMap;

use super::domain::{RoomId, Seq};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// The next message: send it.
    Next,
    /// At or below what the client has: drop it.
    Seen,
    /// Messages `after + 1 .. seq` are missing: fetch them from the store first.
    Gap { after: Seq },
}

#[derive(Debug, Default)]
pub struct Cursors {
    last: HashMap<RoomId, Seq>,
}

impl Cursors {
    /// Sets where the client stands in `room` (from the greeting, or from the client's own resume).
    pub fn set(&mut self, room: RoomId, seq: Seq) {
        self.last.insert(room, seq);
    }

    pub fn get(&self, room: RoomId) -> Option<Seq> {
        self.last.get(&room).copied()
    }

    pub fn forget(&mut self, room: RoomId) {
        self.last.remove(&room);
    }

    /// Classifies message `seq` of `room`. A room with no cursor yet starts at this message.
    pub fn admit(&mut self, room: RoomId, seq: Seq) -> Admit {
        let last = self.last.entry(room).or_insert(seq - 1);
        if seq <= *last {
            Admit::Seen
        } else if seq == *last + 1 {
            *last = seq;
            Admit::Next
        } else {
            Admit::Gap { after: *last }
        }
    }

    /// Records that the client now has everything up to `seq` in `room` (after a fill).
    pub fn advance(&mut self, room: RoomId, seq: Seq) {
        let last = self.last.entry(room).or_insert(seq);
        *last = (*last).max(seq);
    }
}

/// What a connection should send next: a shared delivery, or a message read from the store to fill a
/// gap or resume.
pub enum Out {
    Shared(std::sync::Arc<super::hub::Delivery>),
    Stored(std::sync::Arc<super::domain::Message>),
}

/// A connection's view of its rooms: turns hub deliveries into what to send, filling gaps from the
/// store, and serves resumes. Every transport drives one of these, so all share the same guarantees.
pub struct Feed {
    pub cursors: Cursors,
}

/// Messages per store read when filling a gap or resuming.
pub const FILL_PAGE: u32 = 200;

impl Feed {
    /// A feed for a connection greeted with `rooms` (their `last_seq` as of after it started following).
    pub fn new(rooms: &[super::domain::RoomView]) -> Self {
        let mut cursors = Cursors::default();
        for v in rooms {
            cursors.set(v.room.id, v.room.last_seq);
        }
        Feed { cursors }
    }

    /// Appends to `out` what delivery `d` means for this client.
    pub async fn deliver(
        &mut self,
        chat: &super::chat::Chat,
        who: &super::chat::Identity,
        d: std::sync::Arc<super::hub::Delivery>,
        out: &mut Vec<Out>,
    ) {
        use super::hub::HubEvent;
        match &d.event {
            HubEvent::Message(m) => match self.cursors.admit(m.room, m.seq) {
                Admit::Seen => return,
                Admit::Next => {}
                Admit::Gap { after } => {
                    // Fill from the store up to this message (it is there: it was stored before it was sent).
                    if self.fill(chat, who, m.room, after, Some(m.seq), out).await.is_err() {
                        return;
                    }
                    self.cursors.advance(m.room, m.seq);
                }
            },
            // Everything after the room's state at the join arrives live.
            HubEvent::Joined(r) if self.cursors.get(r.id).is_none() => self.cursors.set(r.id, r.last_seq),
            HubEvent::Left(r) => self.cursors.forget(*r),
            _ => {}
        }
        out.push(Out::Shared(d));
    }

    /// Sends everything in `room` after `after`, then continues live from there. Returns the last `seq`
    /// sent (where the client now stands).
    pub async fn resume(
        &mut self,
        chat: &super::chat::Chat,
        who: &super::chat::Identity,
        room: super::domain::RoomId,
        after: super::domain::Seq,
        out: &mut Vec<Out>,
    ) -> super::error::Result<super::domain::Seq> {
        let through = self.fill(chat, who, room, after, None, out).await?;
        // Reactions on messages the client already had that changed while it was away.
        for e in chat.missed_reactions(who, room, after).await? {
            out.push(Out::Shared(super::hub::Delivery::new(super::hub::HubEvent::Convo(e))));
        }
        self.cursors.set(room, through);
        Ok(through)
    }

    /// Reads messages of `room` after `after` (and before `until`, if given) into `out`, page by page.
    async fn fill(
        &mut self,
        chat: &super::chat::Chat,
        who: &super::chat::Identity,
        room: super::domain::RoomId,
        mut after: super::domain::Seq,
        until: Option<super::domain::Seq>,
        out: &mut Vec<Out>,
    ) -> super::error::Result<super::domain::Seq> {
        loop {
            let page = chat.messages_after(who, room, after, FILL_PAGE).await?;
            let mut more = page.has_more;
            for m in page.messages {
                if until.is_some_and(|u| m.seq >= u) {
                    more = false;
                    break;
                }
                after = m.seq;
                out.push(Out::Stored(m));
            }
            if !more {
                return Ok(after);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_seen_and_gaps() {
        let mut c = Cursors::default();
        let r = RoomId(1);
        c.set(r, 10);
        assert_eq!(c.admit(r, 9), Admit::Seen);
        assert_eq!(c.admit(r, 10), Admit::Seen);
        assert_eq!(c.admit(r, 11), Admit::Next);
        assert_eq!(c.admit(r, 14), Admit::Gap { after: 11 });
        c.advance(r, 13);
        assert_eq!(c.admit(r, 14), Admit::Next);
        assert_eq!(c.admit(RoomId(2), 5), Admit::Next, "an unknown room starts where it is met");
        assert_eq!(c.admit(RoomId(2), 5), Admit::Seen);
    }
}
