//! Per-connection delivery accounting: which of a sender's messages a connection has seen, so
//! duplicates and re-orderings are counted, and the loss arithmetic.

/// Tracks one sender's messages as seen by one receiving connection: the highest `n` seen and a
/// 64-wide bitmap of the numbers just below it, so a late (re-ordered) delivery is told apart
/// from a duplicate.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SenderWindow {
    last: u64,
    /// Bit `i` set: `last - 1 - i` was seen.
    bits: u64,
}

/// The verdict for one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// First time, in order.
    New,
    /// First time, but after a higher number had already arrived.
    Reordered,
    /// Seen before (or too old to tell: more than 64 behind the newest, counted as a duplicate).
    Duplicate,
}

impl SenderWindow {
    /// Records delivery of message `n` (numbers start at 1).
    pub fn record(&mut self, n: u64) -> Seen {
        if n > self.last {
            let shift = n - self.last;
            if self.last == 0 || shift > 64 {
                self.bits = 0;
            } else if shift == 64 {
                self.bits = 1 << 63;
            } else {
                self.bits = (self.bits << shift) | (1 << (shift - 1));
            }
            self.last = n;
            Seen::New
        } else if n == self.last {
            Seen::Duplicate
        } else {
            let d = self.last - n;
            if d > 64 {
                return Seen::Duplicate;
            }
            let bit = 1u64 << (d - 1);
            if self.bits & bit != 0 {
                Seen::Duplicate
            } else {
                self.bits |= bit;
                Seen::Reordered
            }
        }
    }
}

/// All senders of one room as seen by one connection. Senders are numbered globally; the senders
/// of room `r` (of `rooms`) are `r, r + rooms, r + 2*rooms, …`, so the local index is
/// `sender / rooms`.
#[derive(Debug, Clone)]
pub struct ConnTracker {
    room: usize,
    rooms: usize,
    windows: Vec<SenderWindow>,
}

impl ConnTracker {
    pub fn new(room: usize, rooms: usize, senders: usize) -> Self {
        let n = senders_in_room(room, rooms, senders);
        ConnTracker { room, rooms, windows: vec![SenderWindow::default(); n] }
    }

    /// `None` when the sender does not belong to this connection's room (a foreign message).
    pub fn record(&mut self, sender: u32, n: u64) -> Option<Seen> {
        let sender = sender as usize;
        if self.rooms == 0 || sender % self.rooms != self.room || n == 0 {
            return None;
        }
        self.windows.get_mut(sender / self.rooms).map(|w| w.record(n))
    }
}

/// How many of `senders` (spread round-robin) land in `room`.
pub fn senders_in_room(room: usize, rooms: usize, senders: usize) -> usize {
    if rooms == 0 {
        return 0;
    }
    senders / rooms + usize::from(room < senders % rooms)
}

/// Deliveries that should have arrived: each acknowledged send in a room, times the receiving
/// connections of that room that were counted (opened and not deliberately slow).
pub fn expected_deliveries(acks_per_room: &[u64], receivers_per_room: &[u64]) -> u64 {
    acks_per_room.iter().zip(receivers_per_room).map(|(a, r)| a * r).sum()
}

/// Loss and surplus from expected and unique deliveries. A surplus appears when a send whose
/// acknowledgement never arrived was delivered anyway.
pub fn loss(expected: u64, unique: u64) -> (u64, u64) {
    (expected.saturating_sub(unique), unique.saturating_sub(expected))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_then_duplicates() {
        let mut w = SenderWindow::default();
        for n in 1..=100 {
            assert_eq!(w.record(n), Seen::New);
        }
        assert_eq!(w.record(100), Seen::Duplicate);
        assert_eq!(w.record(99), Seen::Duplicate);
        assert_eq!(w.record(37), Seen::Duplicate);
        assert_eq!(w.record(1), Seen::Duplicate);
    }

    #[test]
    fn gaps_and_reordering() {
        let mut w = SenderWindow::default();
        assert_eq!(w.record(1), Seen::New);
        assert_eq!(w.record(5), Seen::New); // 2..4 missing so far
        assert_eq!(w.record(3), Seen::Reordered);
        assert_eq!(w.record(3), Seen::Duplicate);
        assert_eq!(w.record(2), Seen::Reordered);
        assert_eq!(w.record(4), Seen::Reordered);
        assert_eq!(w.record(1), Seen::Duplicate);
        // A jump of exactly 64 keeps the old newest in the bitmap.
        assert_eq!(w.record(69), Seen::New);
        assert_eq!(w.record(5), Seen::Duplicate);
        assert_eq!(w.record(6), Seen::Reordered);
        // A jump past the bitmap forgets everything older.
        assert_eq!(w.record(1000), Seen::New);
        assert_eq!(w.record(999), Seen::Reordered);
        assert_eq!(w.record(900), Seen::Duplicate);
    }

    #[test]
    fn first_delivery_can_be_late_in_the_sequence() {
        // A connection that opened late may first see message 10 of a sender.
        let mut w = SenderWindow::default();
        assert_eq!(w.record(10), Seen::New);
        assert_eq!(w.record(9), Seen::Reordered);
        assert_eq!(w.record(11), Seen::New);
    }

    #[test]
    fn tracker_maps_senders_to_rooms() {
        // 3 rooms, 7 senders: room 0 has senders 0,3,6; room 1 has 1,4; room 2 has 2,5.
        assert_eq!(senders_in_room(0, 3, 7), 3);
        assert_eq!(senders_in_room(1, 3, 7), 2);
        assert_eq!(senders_in_room(2, 3, 7), 2);
        let mut t = ConnTracker::new(1, 3, 7);
        assert_eq!(t.record(1, 1), Some(Seen::New));
        assert_eq!(t.record(4, 1), Some(Seen::New));
        assert_eq!(t.record(4, 1), Some(Seen::Duplicate));
        assert_eq!(t.record(0, 1), None, "sender 0 is in room 0");
        assert_eq!(t.record(7, 1), None, "no sender 7 in room 1");
        assert_eq!(t.record(1, 0), None, "numbers start at 1");
    }

    #[test]
    fn loss_arithmetic() {
        // Room 0: 10 acked sends to 3 receivers; room 1: 4 acked sends to 5 receivers.
        let expected = expected_deliveries(&[10, 4], &[3, 5]);
        assert_eq!(expected, 50);
        assert_eq!(loss(expected, 50), (0, 0));
        assert_eq!(loss(expected, 47), (3, 0));
        assert_eq!(loss(expected, 52), (0, 2));
    }
}
