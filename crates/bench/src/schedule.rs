//! The open-loop send schedule: message `k` of a sender is due at a fixed instant computed from
//! the start, the rate and the sender's phase, whatever happened to earlier sends.

/// One sender's schedule, in nanoseconds since the run's base instant.
#[derive(Debug, Clone)]
pub struct Schedule {
    start_ns: u64,
    end_ns: u64,
    interval_ns: f64,
    phase: f64,
    next: u64,
}

impl Schedule {
    /// `rate` messages per second between `start_ns` (inclusive) and `end_ns` (exclusive);
    /// `phase` in `[0, 1)` shifts this sender by that fraction of an interval so that senders
    /// sharing a rate do not all fire at the same instant.
    pub fn new(start_ns: u64, end_ns: u64, rate: f64, phase: f64) -> Self {
        let interval_ns = if rate > 0.0 { 1e9 / rate } else { f64::INFINITY };
        Schedule { start_ns, end_ns, interval_ns, phase: phase.clamp(0.0, 0.999_999), next: 0 }
    }

    /// When message `k` (0-based) is due.
    pub fn at(&self, k: u64) -> u64 {
        let off = (k as f64 + self.phase) * self.interval_ns;
        if off.is_finite() { self.start_ns.saturating_add(off as u64) } else { u64::MAX }
    }

    /// The due time of the next message, `None` once the schedule has ended.
    pub fn next_due(&self) -> Option<u64> {
        let t = self.at(self.next);
        (t < self.end_ns).then_some(t)
    }

    /// Takes the next message if it is due at or before `now_ns`: returns its 1-based number and
    /// its scheduled time.
    pub fn pop_due(&mut self, now_ns: u64) -> Option<(u64, u64)> {
        let t = self.next_due()?;
        if t > now_ns {
            return None;
        }
        self.next += 1;
        Some((self.next, t))
    }

    /// How many messages the whole schedule holds.
    pub fn total(&self) -> u64 {
        if !self.interval_ns.is_finite() || self.end_ns <= self.start_ns {
            return 0;
        }
        let span = (self.end_ns - self.start_ns) as f64 / self.interval_ns - self.phase;
        let mut k = span.max(0.0).ceil() as u64;
        // Correct floating point edge cases against `at`.
        while k > 0 && self.at(k - 1) >= self.end_ns {
            k -= 1;
        }
        while self.at(k) < self.end_ns {
            k += 1;
        }
        k
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn fixed_instants() {
        let s = Schedule::new(10 * S, 12 * S, 4.0, 0.0);
        let times: Vec<u64> = (0..8).map(|k| s.at(k)).collect();
        assert_eq!(times[0], 10 * S);
        assert_eq!(times[1], 10 * S + S / 4);
        assert_eq!(times[7], 10 * S + 7 * S / 4);
        assert_eq!(s.total(), 8);
    }

    #[test]
    fn open_loop_catches_up_after_a_stall() {
        // 1000 msg/s for 1 s; the sender wakes up only at 0.5 s: 501 messages are due at once
        // (numbers 1..=501) and keep their original times.
        let mut s = Schedule::new(0, S, 1000.0, 0.0);
        let mut due = Vec::new();
        while let Some(x) = s.pop_due(S / 2) {
            due.push(x);
        }
        assert_eq!(due.len(), 501);
        assert_eq!(due[0], (1, 0));
        assert_eq!(due[500], (501, S / 2));
        assert_eq!(s.next_due(), Some(S / 2 + S / 1000));
        let mut rest = 0;
        while s.pop_due(u64::MAX).is_some() {
            rest += 1;
        }
        assert_eq!(due.len() + rest, 1000);
        assert_eq!(s.total(), 1000);
        assert_eq!(s.next_due(), None);
    }

    #[test]
    fn phase_spreads_senders() {
        let a = Schedule::new(0, S, 10.0, 0.0);
        let b = Schedule::new(0, S, 10.0, 0.5);
        assert_eq!(a.at(0), 0);
        assert_eq!(b.at(0), S / 20);
        assert_eq!(a.total(), 10);
        assert_eq!(b.total(), 10);
    }

    #[test]
    fn nothing_due_before_start_and_zero_rate() {
        let mut s = Schedule::new(5 * S, 6 * S, 100.0, 0.0);
        assert_eq!(s.pop_due(5 * S - 1), None);
        assert_eq!(s.pop_due(5 * S), Some((1, 5 * S)));
        let z = Schedule::new(0, S, 0.0, 0.0);
        assert_eq!(z.next_due(), None);
        assert_eq!(z.total(), 0);
    }
}
