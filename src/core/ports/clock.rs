//! The clock port: where the core's time-based rules read "now", so tests can move time instead of
//! waiting for it. [`SystemClock`] is the real one; [`ManualClock`] is moved by hand (tests).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use crate::core::domain::{Millis, now_millis};

pub trait Clock: Send + Sync + 'static {
    /// Wall-clock time, in milliseconds since the Unix epoch.
    fn now_millis(&self) -> Millis;
}

pub type DynClock = Arc<dyn Clock>;

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_millis(&self) -> Millis {
        now_millis()
    }
}

/// A clock that moves only when told: starts at the system time, then [`ManualClock::advance`].
#[derive(Debug)]
pub struct ManualClock {
    now: AtomicI64,
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock { now: AtomicI64::new(now_millis()) }
    }
}

impl ManualClock {
    pub fn at(now: Millis) -> Self {
        ManualClock { now: AtomicI64::new(now) }
    }

    /// Moves time forward by `ms`.
    pub fn advance(&self, ms: i64) {
        self.now.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_millis(&self) -> Millis {
        self.now.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let c = ManualClock::at(1_000);
        assert_eq!(c.now_millis(), 1_000);
        c.advance(250);
        assert_eq!(c.now_millis(), 1_250);
        assert!(SystemClock.now_millis() > 1_600_000_000_000);
    }
}
